"""Reading YAML documents at the edge: one-line errors, duplicate keys refused, depth bounded.

`read_yaml(path)` parses with YAML's safe loader (no `!!python` tags) and turns every problem into a
`ConfigError` naming the file: a missing file, malformed YAML (with line and column), a key given
twice in one mapping (YAML says last-wins; a silently dropped setting is a bug in the user's file),
nesting deeper than `MAX_DEPTH` levels, or a file that is not UTF-8 text.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from netsim.errors import ConfigError

MAX_DEPTH = 64  # scenario, topology and training documents nest a few levels; 64 leaves ample room
MAX_BYTES = 16 * 2**20
MAX_ALIASES = 1000  # aliases per document
MAX_VALUES = 1_000_000  # values after aliases are expanded  # a configuration file larger than this is not a configuration file


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing a key that appears twice in one mapping and documents whose aliases
    would expand beyond `MAX_ALIASES` (an alias "bomb": a few lines that expand to billions of values)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases = getattr(self, "aliases", 0) + 1
            if self.aliases > MAX_ALIASES:
                raise _DuplicateKey(problem=f"more than {MAX_ALIASES} aliases (*name); not a configuration file",
                                    problem_mark=self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges keys that the mapping's own keys may override
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports unhashable keys
            if key in seen:
                raise _DuplicateKey(problem=f"key {key!r} given twice (first on line {seen[key] + 1})",
                                    problem_mark=key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def nesting_depth(data: object, max_values: int | None = MAX_VALUES) -> int:
    """Nesting depth of lists and mappings, computed without recursion (stopping past MAX_DEPTH), and given
    up past `max_values` values, the size aliases can blow a short document up to (None: no such limit, for
    documents without aliases, such as JSON)."""
    deepest, stack, seen = 0, [(data, 1)], 0
    while stack:
        value, level = stack.pop()
        seen += 1
        if max_values is not None and seen > max_values:
            raise ConfigError(f"expands to more than {max_values:,} values (through YAML aliases?)")
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((c, level + 1) for c in children)
    return deepest


def parse_yaml(text: str, source: str) -> object:
    """Parse YAML text; problems become one-line `ConfigError`s naming `source`."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        kind = "" if isinstance(exc, _DuplicateKey) else "malformed YAML: "
        if isinstance(exc, _DuplicateKey) and "aliases" in str(problem):
            where = ""
        raise ConfigError(f"{where}{kind}{problem}", source=source) from None
    except RecursionError:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", source=source) from None
    try:
        depth = nesting_depth(data)
    except ConfigError as exc:
        raise ConfigError(exc.detail, source=source) from None
    if depth > MAX_DEPTH:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", source=source)
    return data


EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"  # shipped with the package


def shipped_examples() -> dict[str, Path]:
    """The example inputs that come with netsim (scenarios, fault studies, attention): name -> file."""
    return {f.stem: f for f in sorted(EXAMPLES.glob("*.yaml"))}


def leading_comment(path: Path) -> str:
    """A YAML file's leading comment as one line, up to its first empty comment line (command lines quoted in
    it left out): how shipped topologies and examples describe themselves; the paragraphs below it (where the
    numbers come from) stay in the file."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("# ").strip()
        if not text:
            break
        if not text.startswith((".venv/", "netsim ")):
            lines.append(text)
    return " ".join(lines)


def read_yaml(path: str | Path) -> object:
    """Parse a YAML file — or a shipped example, by its bare name (``jobs``) where no such file exists;
    every problem is a one-line `ConfigError` naming the file."""
    p = Path(path)
    if not p.exists() and "/" not in str(path) and str(path).removesuffix(".yaml") in shipped_examples():
        p = shipped_examples()[str(path).removesuffix(".yaml")]
    if not p.is_file():
        raise ConfigError("file not found" if not p.exists() else "not a regular file", source=str(path))
    try:
        if p.stat().st_size > MAX_BYTES:
            raise ConfigError(f"larger than {MAX_BYTES // 2**20} MiB; not a configuration file", source=str(path))
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not a UTF-8 text file", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror or exc}", source=str(path)) from None
    return parse_yaml(text, str(path))
