"""Supervision (issue 15): the supervisor page (``--web``) and the MQTT bridge (``--mqtt``).

Both run beside the control loop, never in it. The control thread publishes an immutable
``Status`` every 0.1 s (``status.StatusBoard``) and takes remote presses from a bounded queue
(``remote.RemotePendant``), exactly where it takes the pendant's; the servers only read the
one and offer to the other. Remote presses are RETURN and STOP, nothing else: nothing on the
network can start a session, jog, or move the table toward inversion. docs/supervision.md.
"""
