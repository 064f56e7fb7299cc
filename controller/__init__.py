"""The inversion table's controller. Importing it first puts the opt-in compiled modules
(``make fast``) in place if a build of exactly these sources exists (core/fastload.py)."""

from controller.core import fastload

fastload.install()
