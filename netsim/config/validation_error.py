"""pydantic validation errors as one-line `ConfigError`s that name the user's field, not pydantic's.

pydantic locates an error by a path that mixes the user's keys with the names of union members
(`topology.str`, `ranks.literal['all']`, `gpus.constrained-int`, a discriminator's tag). Walking
that path through the document the user wrote keeps exactly the keys and list indices that exist in
it, so the field shown is the one the user can find in their file. Of several errors (one per union
member), the one reaching deepest into the document is reported: it is the most specific.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from netsim.errors import ConfigError


def _user_path(loc: tuple, data: object, missing: bool) -> list[str]:
    """The parts of pydantic's `loc` that are keys or indices of `data` (union member names dropped);
    for a `missing` error, also the absent key it names (the last part)."""
    path, node = [], data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            path.append(str(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(str(part))
            node = node[part]
        elif missing and i == len(loc) - 1:
            path.append(str(part))
    return path


def _message(err: dict) -> str:
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown kind {ctx.get('tag')!r} (known: {ctx.get('expected_tags')})"
    if err["type"] == "union_tag_not_found":
        return "required key 'kind' is missing"
    if message.startswith("Value error, "):
        return message[len("Value error, "):]
    if "input" in err and not isinstance(err["input"], (dict, list)):
        return message + f" (got {err['input']!r})"
    return message


def pydantic_error(exc: ValidationError, source: str | None, data: object, *, prefix: str = "",
                   skip: int = 0) -> ConfigError:
    """The most specific pydantic error as a one-line `ConfigError` naming the user's field.

    `data` is the validated input; `skip` leading path parts are dropped (a wrapper model's field);
    `prefix` is prepended (the document's place inside a larger one).
    """
    best: list[tuple[list[str], dict]] = []
    for err in exc.errors():
        path = _user_path(tuple(err["loc"]), data, err["type"] == "missing")[skip:]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found") and "kind" not in path:
            path = path + ["kind"]
        if not best or len(path) > len(best[0][0]):
            best = [(path, err)]
        elif len(path) == len(best[0][0]) and path == best[0][0]:
            best.append((path, err))
    path, first = best[0]
    messages = [_message(first)]
    for _, err in best[1:]:  # several union members failed at the same place: say what each wanted
        text = _message(err)
        if text.startswith("Input should be "):
            text = text[len("Input should be "):]
        if text not in messages:
            messages.append(text)
    if len(messages) > 1:
        got = f" (got {first['input']!r})" if "input" in first and not isinstance(first["input"], (dict, list)) else ""
        messages = [m.removesuffix(got) for m in messages]
        message = ", or ".join(messages) + got
    else:
        message = messages[0]
    field = ".".join(([prefix] if prefix else []) + path) or None
    return ConfigError(message, source=source, field=field)


def validated(model: type[BaseModel], data: object, source: str | None):
    """`data` (as read from YAML) validated as the pydantic `model`; errors as one-line ConfigErrors."""
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", source=source)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, source, data) from None
