"""The physics simulator and the scenario runner. As ``controller``, its import first puts the
opt-in compiled modules in place (controller/core/fastload.py)."""

from controller.core import fastload

fastload.install()
