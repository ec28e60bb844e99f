"""One asyncua hot spot replaced by an equivalent lookup (installed by this package).

asyncua 2.1 maps the type byte of every decoded Variant to a ``VariantType`` with an
Enum call (``VariantType(n)``, about 1.5 us). With 10,000 subscribed values that was
13% of the agent's CPU. The replacement returns the very same enum members from a
table and defers to asyncua for anything else, so results are identical (see
tests/unit/test_opcua_speedups.py). asyncua is pinned below 2.2; recheck on upgrade.
"""

from __future__ import annotations

from asyncua import ua
from asyncua.ua import uatypes

_original = uatypes.datatype_to_varianttype
_BUILTIN = tuple(ua.VariantType(number) for number in range(26))


def datatype_to_varianttype(int_type: int | ua.NodeId) -> ua.VariantType | ua.VariantTypeCustom:
    if type(int_type) is int and 0 <= int_type <= 25:
        return _BUILTIN[int_type]
    return _original(int_type)


def install() -> None:
    """Make asyncua's decoder use the table (idempotent)."""
    ua.datatype_to_varianttype = datatype_to_varianttype
    uatypes.datatype_to_varianttype = datatype_to_varianttype
