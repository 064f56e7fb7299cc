"""``python -m controller`` is the same as the ``invtable`` command."""

import sys

from controller.app.cli import main

sys.exit(main())
