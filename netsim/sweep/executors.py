"""Where a sweep's runs execute, behind one small interface.

`Executor.run(tasks)` takes (key, kind, scenario, folder) tuples and yields (key, rows, error, on_input)
as each finishes, in whatever order they finish (`on_input`: the error is a mistake in the point, a
`NetsimError`, rather than a crash); the sweep writes each result at once, so an interrupted sweep
loses only the runs in flight. Implementations:

- ``local`` (default): a process pool of `workers` processes (`concurrent.futures`, the standard library);
- ``dask``: `dask.distributed` — an existing cluster (`scheduler="tcp://host:port"`) or a LocalCluster of
  `workers` single-threaded processes when no address is given. dask is an optional extra
  (``pip install netsim[dask]``). The address is checked before dask sees it (`check_scheduler`), and
  anything but a dask scheduler answering there within `CONNECT_TIMEOUT` seconds — nothing, a refused
  connection, another protocol — is a one-line `ConfigError` naming ``--scheduler``.
"""

from __future__ import annotations

import multiprocessing
import re
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Iterator

from netsim.errors import ConfigError, NetsimError

Task = tuple[str, str, dict, str]  # key, kind, scenario, folder
Result = tuple[str, list[dict] | None, str | None, bool]  # key, rows, error, whether the error is on the input
CONNECT_TIMEOUT = 10.0  # seconds to reach a dask scheduler
ADDRESS = re.compile(r"(?:(?:tcp|tls)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
                     r":(?P<port>[0-9]{1,5})/?")


def one_line(exc: BaseException, limit: int = 120) -> str:
    """An exception's message on one line, cut short: for messages that quote it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _crash(exc: BaseException) -> str:
    """A crash as the last line of its traceback: `ZeroDivisionError: division by zero`."""
    return " ".join(traceback.format_exception_only(type(exc), exc)[-1].split())


def run_point(kind: str, document: dict, folder: str) -> tuple[list[dict] | None, str | None, bool]:
    """One point, in whatever process runs it: (rows, None, False), or (None, the error in one line, whether
    it is a mistake in the point rather than a crash)."""
    from netsim.sweep.kinds import KINDS

    try:
        return KINDS[kind].run(document, Path(folder)), None, False
    except NetsimError as exc:
        return None, " ".join(str(exc).split()), True
    except Exception as exc:  # a failed run is recorded and the sweep goes on
        return None, _crash(exc), False


def check_scheduler(address: str) -> str:
    """A dask scheduler address, `tcp://HOST:PORT` (or tls://, or HOST:PORT), or a ConfigError naming
    --scheduler; checked before dask sees it (dask's own parsing fails with tracebacks)."""
    m = ADDRESS.fullmatch(address)
    if m is None or not 0 < int(m["port"]) < 65536:
        raise ConfigError(f"expected a dask scheduler address of the form tcp://HOST:PORT, got {address!r}",
                          field="--scheduler")
    return address


class Executor:
    name = "base"

    def run(self, tasks: list[Task]) -> Iterator[Result]:
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
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001  a worker that died (out of memory, killed)
                    result = (None, _crash(exc), False)
                yield (futures[future], *result)


class DaskExecutor(Executor):
    name = "dask"

    def __init__(self, workers: int = 1, scheduler: str | None = None):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("needs dask: pip install 'netsim[dask]'", field="--executor") from None
        if scheduler:
            check_scheduler(scheduler)
            try:
                self.client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s")
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"no dask scheduler answered at {scheduler!r} within {CONNECT_TIMEOUT:g} s "
                                  f"({one_line(exc)}); expected a running scheduler, tcp://HOST:PORT",
                                  field="--scheduler") from None
            except Exception as exc:  # noqa: BLE001  something else answered (dask reads its bytes as frames)
                raise ConfigError(f"what answers at {scheduler!r} is not a dask scheduler ({one_line(exc)}); "
                                  "expected a running scheduler, tcp://HOST:PORT", field="--scheduler") from None
            self.cluster = None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            self.client = Client(self.cluster)

    def run(self, tasks):
        from dask.distributed import as_completed as dask_completed

        futures = {self.client.submit(run_point, kind, doc, folder, key=f"netsim-{key}", pure=False): key
                   for key, kind, doc, folder in tasks}
        for future in dask_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001  a worker lost (KilledWorker) or the scheduler gone
                result = (None, _crash(exc), False)
            yield (futures[future], *result)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


EXECUTORS = {"local": "a process pool on this machine (--processes N)",
             "dask": "dask.distributed: --scheduler tcp://HOST:PORT, or a local cluster of --processes processes"}


def make_executor(name: str, workers: int = 1, scheduler: str | None = None) -> Executor:
    if name == "local":
        if scheduler:
            raise ConfigError("a scheduler address goes with --executor dask", field="--scheduler")
        return LocalExecutor(workers)
    if name == "dask":
        return DaskExecutor(workers, scheduler)
    raise ConfigError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})", field="--executor")
