"""Hardware abstraction layer: what the controller reads and writes each tick. No policy."""

from hal.interfaces import BUTTONS, SAFE_OUTPUTS, Inputs, Outputs, TableHardware

__all__ = ["BUTTONS", "Inputs", "Outputs", "SAFE_OUTPUTS", "TableHardware"]
