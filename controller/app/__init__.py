"""The application: the CLI, the service loop, the history store, sessions and programs,
the views. It may use the core, the HAL and the simulator; nothing below imports it."""
