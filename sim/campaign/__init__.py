"""Campaigns (issue 17): thousands of random sessions, judged, failures shrunk to scenarios.

- ``generate``: a session (a scenario dict) as a pure function of (seed, index);
- ``judge``: the verdict (invariants, the independent "nobody stranded" rule, no crash);
- ``shrink``: a failure down to a minimal scenario that still fails the same way;
- ``engine``: one session's record, the tally, the result files, the local executors;
- ``cluster``: the same on a Dask distributed cluster (optional extra).

Pure simulation: nothing here imports the app (``invtable campaign`` is the command).
"""
