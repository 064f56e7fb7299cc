"""The safety core: the state machine, the monitor, the motion and its limits, the
configuration. No wall clock, no files but the config, no knowledge of the app above it."""
