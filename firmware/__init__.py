"""The motion board's MicroPython firmware. On the host this is a package (the protocol
codec is shared with hal.serial); on the board the files sit flat in its filesystem."""
