"""Human durations in scenario files: ``90``, ``"90s"``, ``"7m"``, ``"1h30m"``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|min|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(text: str | float | int) -> float:
    """Seconds in ``text``; raises ValueError with the accepted forms."""
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 90, '90s', '7m' or '1h30m'")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        compact = text.strip().replace(" ", "")
        pos = 0
        seconds = 0.0
        for match in _PART.finditer(compact):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_S[match.group(2)]
            pos = match.end()
        if pos != len(compact) or not compact:
            try:
                seconds = float(compact)
            except ValueError:
                raise ValueError(
                    f"{text!r} is not a duration; use seconds (90) or units ms/s/m/h/d "
                    "('90s', '7m', '1h30m')"
                ) from None
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


DurationS = Annotated[float, BeforeValidator(parse_duration_s)]
