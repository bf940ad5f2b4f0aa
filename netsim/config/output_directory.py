"""Output directories that belong to the user: netsim writes only where it may, and only its own files.

The rule: netsim writes into a directory that does not exist, is empty, or holds an earlier output of
the same command (recognised by the manifest file `.netsim-manifest.json` that netsim writes there,
naming the command and each file with its size and SHA-256). It replaces or removes only files the
manifest lists *and* that are still exactly as netsim wrote them, each atomically (`os.replace`), and
never touches anything else: a user's notes beside the outputs survive every re-run, a file the user
edited since is refused rather than overwritten, and a forged or foreign manifest grants nothing.
Another command's output is refused too (a `bench` never replaces a `run`'s results).

The target is checked when the `OutputDirectory` is made — before any simulation runs — so a bad
`-o` fails at once with a one-line error. Files are staged in a hidden folder inside the target and
moved into place only when the whole command succeeded; on an error or Ctrl-C the staging folder and
any directory this command created are removed again. Directories are created with the process's
umask, as `mkdir` would.

Example::

    out = OutputDirectory("out/run1", command="run", outputs={"report.html"})  # checked now
    ...                                        # the long run
    with out.writing() as staging:             # staging: a Path to write files into
        (staging / "report.html").write_text(page)
    # now out/run1/report.html, out/run1/meta.json (provenance) and out/run1/.netsim-manifest.json exist
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from netsim.errors import ConfigError

MANIFEST = ".netsim-manifest.json"
_STAGING = ".netsim-staging-"
META = "meta.json"  # provenance, in every output: netsim's version, the command line, its inputs, when
COMMAND_LINE: list[str] | None = None  # set by the command line (`netsim.cli.main`) to the arguments it got


def provenance(command: str, started: float) -> dict:
    """What wrote an output: netsim's version, the command and its arguments, the SHA-256 of each input
    file the arguments name, one hash of all that (the resolved configuration), and the start time (UTC)."""
    import datetime
    import sys
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("netsim")
    except PackageNotFoundError:
        ours = "unknown"
    argv = list(COMMAND_LINE if COMMAND_LINE is not None else sys.argv[1:])
    inputs = {}
    for arg in argv:
        path = Path(arg)
        try:
            if path.is_file() and path.stat().st_size < 64 * 2**20:
                inputs[arg] = _digest(path)
        except (OSError, ValueError):
            continue
    whole = hashlib.sha256(json.dumps([ours, command, argv, sorted(inputs.items())]).encode()).hexdigest()
    return {"netsim": ours, "command": command, "argv": argv, "inputs_sha256": inputs, "configuration_sha256": whole,
            "started_utc": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds")}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest(directory: Path) -> tuple[str, dict[str, dict]] | None:
    """(command, {file: {size, sha256}}) from a netsim manifest in `directory`; None if there is none
    or it is not one netsim could have written."""
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files, command = data["files"], data["command"]
        if not isinstance(files, dict) or not isinstance(command, str):
            return None
        for name, record in files.items():
            if "/" in name or name in (".", "..") or not isinstance(record, dict):
                return None
            if not isinstance(record.get("size"), int) or not isinstance(record.get("sha256"), str):
                return None
        return command, files
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _unchanged(path: Path, record: dict) -> bool:
    """The file is a plain file exactly as netsim recorded it."""
    try:
        return (path.is_file() and not path.is_symlink() and path.stat().st_size == record["size"]
                and _digest(path) == record["sha256"])
    except OSError:
        return False


def _listing(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class OutputDirectory:
    """A checked output directory. `writing()` stages files and commits them atomically on success."""

    def __init__(self, path: str | os.PathLike, *, command: str, outputs: set[str] = frozenset(),
                 field: str = "--output"):
        """`command` owns the output; `outputs` are the file names it will write (checked now; any other
        name it writes is checked when it is written)."""
        text = os.fspath(path)
        self.field, self.command = field, command
        if not text.strip():
            raise ConfigError(f"expected a directory path, got {text!r}", field=field)
        if "\0" in text:
            raise ConfigError("a path cannot contain a NUL character", field=field)
        self.shown = text
        self.path = Path(text)
        import time

        self.started = time.time()
        self.previous: set[str] = set()  # netsim's own files here, unchanged since it wrote them
        self._check()
        self._check_names(outputs)

    def _error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.shown!r} {message}", field=self.field)

    def _check(self) -> None:
        p = self.path
        if p.is_symlink() and not p.exists():
            raise self._error("is a symbolic link to nothing; give a directory")
        if p.exists():
            if not p.is_dir():
                raise self._error("exists and is not a directory")
            if not os.access(p, os.W_OK | os.X_OK):
                raise self._error("is not writable")
            manifest = _manifest(p)
            entries = [e.name for e in p.iterdir()]
            if manifest is None and entries:
                raise self._error(f"holds files netsim did not write ({_listing(entries)}); give a new or "
                                  "empty directory, or one holding an earlier netsim output")
            if manifest is not None:
                command, files = manifest
                if command != self.command:
                    raise self._error(f"holds the output of `netsim {command}`; give another directory for "
                                      f"`netsim {self.command}`")
                self.previous = {name for name, record in files.items() if _unchanged(p / name, record)}
            self._probe(p)
            return
        ancestor = p.absolute().parent
        while not ancestor.exists() and not ancestor.is_symlink():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise self._error(f"cannot be created: {str(ancestor)!r} is not a directory")
        self._probe(ancestor)

    def _check_names(self, names) -> None:
        """Refuse names that would replace something that is not netsim's own unchanged file."""
        clashes = [n for n in sorted(names) if n == MANIFEST or (n not in self.previous
                                                                 and os.path.lexists(self.path / n))]
        if clashes:
            raise self._error(f"already holds {_listing(clashes)}, which netsim did not write (or which was "
                              "changed since); move it away or give another directory")

    def _probe(self, directory: Path) -> None:
        """Prove that `directory` takes a new entry (permissions, read-only mounts, /proc) by making one."""
        probe = directory / f"{_STAGING}probe-{os.getpid()}"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError as exc:
            raise self._error(f"cannot be written: {exc.strerror or exc}") from None

    @contextmanager
    def writing(self) -> Iterator[Path]:
        """Yield a staging directory; on success move its files into place and update the manifest."""
        created = self._create()
        staging: Path | None = None
        try:
            staging = Path(self.path / f"{_STAGING}{os.getpid()}")
            if staging.exists():
                shutil.rmtree(staging)
            staging.mkdir()
            yield staging
            self._commit(staging)
        except BaseException:
            if staging is not None and staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
            for d in reversed(created):  # only directories this command made, and only while empty
                try:
                    d.rmdir()
                except OSError:
                    break
            raise
        finally:
            if staging is not None and staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _create(self) -> list[Path]:
        missing = []
        d = self.path.absolute()
        while not d.exists():
            missing.append(d)
            d = d.parent
        created = []
        for d in reversed(missing):
            try:
                d.mkdir()  # mode 0o777 minus the umask, as mkdir(1)
            except OSError as exc:
                for c in reversed(created):
                    c.rmdir()
                raise self._error(f"cannot be created: {exc.strerror or exc}") from None
            created.append(d)
        return created

    def _commit(self, staging: Path) -> None:
        meta = staging / META  # provenance in every output (beside what a command puts in its own meta.json)
        data = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
        data["provenance"] = provenance(self.command, self.started)
        meta.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        names = sorted(e.name for e in staging.iterdir())
        if any(not (staging / n).is_file() for n in names):
            raise RuntimeError("netsim outputs are plain files")  # a bug, not a user mistake
        self._check_names(names)  # again: the directory may have changed during the run
        records = {n: {"size": (staging / n).stat().st_size, "sha256": _digest(staging / n)} for n in names}
        try:
            for n in names:
                os.replace(staging / n, self.path / n)
            for stale in sorted(self.previous - set(names)):
                (self.path / stale).unlink()
            manifest = staging / MANIFEST
            manifest.write_text(json.dumps({"written_by": "netsim", "command": self.command, "files": records},
                                           indent=1) + "\n", encoding="utf-8")
            os.replace(manifest, self.path / MANIFEST)
        except OSError as exc:
            raise self._error(f"could not be written: {exc.strerror or exc}") from None
        self.previous = set(names)
