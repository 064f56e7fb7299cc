"""The serial motion-board backend (pyserial). See ``hal.serial.backend``."""
