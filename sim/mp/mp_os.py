"""``os`` for the firmware in the simulator (MicroPython code): ``urandom`` gives the boot id
the simulator seeded, so the same scenario issues the same session tokens on every run."""

BOOT_ID = 0


def urandom(n):
    b = bytearray(n)
    if n >= 2:
        b[0] = (BOOT_ID >> 8) & 0xFF
        b[1] = BOOT_ID & 0xFF
    return bytes(b)
