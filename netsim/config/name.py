"""`Name`: the type of user-chosen names in configuration files (scenarios, jobs, datacenters).

A name may hold letters of any script, digits, '_', '.' and '-' — no spaces, slashes or other
punctuation, so it can stand in file names, tags ('job/label') and reports as written.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_NAME = re.compile(r"[\w.-]+")


def _check(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"expected a name of letters, digits, '_', '.' or '-' (no spaces), got {value!r}")
    return value


Name = Annotated[str, AfterValidator(_check)]
