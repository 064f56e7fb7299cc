"""The campaign on a Dask ``distributed`` cluster (the optional ``cluster`` extra).

Why Dask distributed and not Ray: it is pure Python (a few MB, installs in seconds on a
laptop or a Pi, no native object store or GCS server), its scheduler and workers are two
commands (``dask scheduler``, ``dask worker tcp://HOST:8786``) or any of its deployments
(SSH, Kubernetes, HPC batch systems, cloud VMs), and its ``LocalCluster`` runs the same code
here for the tests. The campaign needs nothing Ray adds (actors, a shared-memory object
store, GPUs): each task is a batch of indices in, small records out.

``address``: ``None`` or ``"local"`` starts a ``LocalCluster`` of ``jobs`` worker processes
on this machine; anything else (``tcp://scheduler:8786``) connects to a running scheduler
whose workers have the same ``invtable`` installed (docs/campaigns.md).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterator

from sim.campaign.engine import Record

BATCH = 16  # indices per task: a task is ~1-10 s of simulation, well above Dask's overhead


def available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _batch(fn: Callable[[Any], Record], jobs: list[Any]) -> list[Record]:
    return [fn(job) for job in jobs]


class DaskCluster:
    """``map_unordered`` on a Dask cluster: batches of jobs as tasks, records as they finish."""

    def __init__(self, address: str | None, workers: int) -> None:
        self.address = address
        self.workers = workers

    def __enter__(self) -> DaskCluster:
        from distributed import Client, LocalCluster

        self.cluster = None
        if self.address in (None, "local"):
            self.cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        else:
            self.client = Client(self.address, timeout=30)
            self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def map_unordered(self, fn: Callable[[Any], Record], jobs: list[Any]) -> Iterator[Record]:
        from distributed import as_completed

        batches = [jobs[i : i + BATCH] for i in range(0, len(jobs), BATCH)]
        futures = [self.client.submit(_batch, fn, b, pure=False) for b in batches]
        for future in as_completed(futures):
            yield from future.result()
            future.release()
