"""A planted bug for tests/test_campaign.py: the session time limit's detector is disabled.

On ``PYTHONPATH``, Python imports this module at start-up in every process (the campaign's
workers included), so the controller under test has the bug and nothing in the product has
a hook for it. The campaign must find it and shrink it to a scenario that ``invtable sim``
(with the same ``PYTHONPATH``) fails with a ``time_limit`` violation.
"""

import os

# Pure Python: a class compiled by `make fast` (controller/core/fastload.py) takes no patch.
os.environ["INVTABLE_PURE"] = "1"

from controller.core.machine import Controller  # noqa: E402


def _no_time_limit(self: Controller) -> None:
    self._track_session_clock()  # the clock still runs; the limit is never enforced


Controller._rule_session_limit = _no_time_limit  # type: ignore[method-assign]
