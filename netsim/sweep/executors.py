"""Where a sweep's runs execute, behind one small interface.

`Executor.run(tasks)` takes (key, kind, scenario, folder) tuples and yields (key, rows, error) as each
finishes, in whatever order they finish; the sweep writes each result at once, so an interrupted sweep
loses only the runs in flight. Implementations:

- ``local`` (default): a process pool of `workers` processes (`concurrent.futures`, the standard library);
- ``dask``: `dask.distributed` — an existing cluster (`scheduler="tcp://host:port"`) or a LocalCluster of
  `workers` single-threaded processes when no address is given. dask is an optional extra
  (``pip install netsim[dask]``).
"""

from __future__ import annotations

import multiprocessing
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Iterator

from netsim.errors import ConfigError, NetsimError

Task = tuple[str, str, dict, str]  # key, kind, scenario, folder


def run_point(kind: str, document: dict, folder: str) -> tuple[list[dict] | None, str | None]:
    """One point, in whatever process runs it: (rows, None), or (None, the error in one line)."""
    from netsim.sweep.kinds import KINDS

    try:
        return KINDS[kind].run(document, Path(folder)), None
    except NetsimError as exc:
        return None, str(exc)
    except Exception as exc:  # a failed run is recorded and the sweep goes on
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return None, last


class Executor:
    name = "base"

    def run(self, tasks: list[Task]) -> Iterator[tuple[str, list[dict] | None, str | None]]:
        raise NotImplementedError(self)

    def close(self) -> None:
        """Release workers and connections."""


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = workers

    def run(self, tasks):
        if self.workers == 1:  # in this process: no pool to start
            for key, kind, doc, folder in tasks:
                yield (key, *run_point(kind, doc, folder))
            return
        # fresh interpreters ("spawn"): forking a process that holds threads (numba, torch) can deadlock
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_point, kind, doc, folder): key for key, kind, doc, folder in tasks}
            for future in as_completed(futures):
                yield (futures[future], *future.result())


class DaskExecutor(Executor):
    name = "dask"

    def __init__(self, workers: int = 1, scheduler: str | None = None):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("needs dask: pip install 'netsim[dask]'", field="--executor") from None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"cannot reach the dask scheduler {scheduler!r} ({exc})", field="--scheduler") from None
            self.cluster = None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            self.client = Client(self.cluster)

    def run(self, tasks):
        from dask.distributed import as_completed as dask_completed

        futures = {self.client.submit(run_point, kind, doc, folder, key=f"netsim-{key}", pure=False): key
                   for key, kind, doc, folder in tasks}
        for future in dask_completed(futures):
            yield (futures[future], *future.result())

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


EXECUTORS = {"local": "a process pool on this machine (--workers N)",
             "dask": "dask.distributed: --scheduler tcp://HOST:PORT, or a local cluster of --workers processes"}


def make_executor(name: str, workers: int = 1, scheduler: str | None = None) -> Executor:
    if name == "local":
        if scheduler:
            raise ConfigError("a scheduler address goes with --executor dask", field="--scheduler")
        return LocalExecutor(workers)
    if name == "dask":
        return DaskExecutor(workers, scheduler)
    raise ConfigError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})", field="--executor")
