"""The Raspberry Pi GPIO backend (gpiozero). See ``hal.gpio.backend``."""
