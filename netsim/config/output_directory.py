"""Output directories that belong to the user: netsim writes only where it may, and only its own files.

The rule: netsim writes into a directory that does not exist, is empty, or holds an earlier netsim
output (recognised by the manifest file `.netsim-manifest.json` that netsim writes there). It replaces
only the files that manifest lists, each atomically (`os.replace`), and never deletes anything else.
A user's notes beside the outputs survive every re-run.

The target is checked when the `OutputDirectory` is made — before any simulation runs — so a bad
`-o` fails at once with a one-line error. Files are staged in a hidden folder inside the target and
moved into place only when the whole command succeeded; on an error or Ctrl-C the staging folder and
any directory this command created are removed again. Directories are created with the process's
umask, as `mkdir` would.

Example::

    out = OutputDirectory("out/run1")          # checked now: ConfigError if it isn't usable
    ...                                        # the long run
    with out.writing() as staging:             # staging: a Path to write files into
        (staging / "report.html").write_text(page)
    # now out/run1/report.html and out/run1/.netsim-manifest.json exist
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from netsim.errors import ConfigError

MANIFEST = ".netsim-manifest.json"
_STAGING = ".netsim-staging-"


def _manifest_files(directory: Path) -> set[str] | None:
    """The file names a netsim manifest in `directory` lists; None when there is no (readable) manifest."""
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        if not isinstance(files, list) or not all(isinstance(f, str) and "/" not in f for f in files):
            return None
        return set(files)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _listing(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class OutputDirectory:
    """A checked output directory. `writing()` stages files and commits them atomically on success."""

    def __init__(self, path: str | os.PathLike, *, field: str = "--output"):
        text = os.fspath(path)
        self.field = field
        if not text.strip():
            raise ConfigError("expected a directory path, got an empty string", field=field)
        if "\0" in text:
            raise ConfigError("a path cannot contain a NUL character", field=field)
        self.shown = text
        self.path = Path(text)
        self.previous: set[str] = set()
        self._check()

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
            previous = _manifest_files(p)
            entries = [e.name for e in p.iterdir() if not e.name.startswith(_STAGING)]
            if previous is None and entries:
                raise self._error(f"holds files netsim did not write ({_listing(entries)}); give a new or "
                                  "empty directory, or one holding an earlier netsim output")
            self.previous = previous or set()
            self._probe(p)
            return
        ancestor = p.absolute().parent
        while not ancestor.exists() and not ancestor.is_symlink():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise self._error(f"cannot be created: {str(ancestor)!r} is not a directory")
        self._probe(ancestor)

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
        names = sorted(e.name for e in staging.iterdir())
        if any((staging / n).is_dir() for n in names):
            raise RuntimeError("netsim outputs are plain files")  # a bug, not a user mistake
        clashes = [n for n in names if n not in self.previous and os.path.lexists(self.path / n)]
        if clashes:
            raise self._error(f"already holds {_listing(clashes)}, which netsim did not write; move it away")
        for n in names:
            os.replace(staging / n, self.path / n)
        for stale in sorted(self.previous - set(names)):
            target = self.path / stale
            if target.is_file() and not target.is_symlink():
                target.unlink()
        manifest = staging / MANIFEST
        manifest.write_text(json.dumps({"written_by": "netsim", "files": names}, indent=1) + "\n", encoding="utf-8")
        os.replace(manifest, self.path / MANIFEST)
        self.previous = set(names)
