"""The asyncua speed-up returns exactly what asyncua's own function returns."""

from __future__ import annotations

import pytest
from asyncua import ua
from asyncua.ua import ua_binary
from asyncua.ua.uatypes import VariantTypeCustom

import edge_agent.sources.opcua  # noqa: F401  (installs the speed-up)
from edge_agent.sources.opcua import _speedups


@pytest.mark.parametrize("number", range(64))
def test_same_variant_type_as_asyncua(number: int) -> None:
    expected = _speedups._original(number)
    got = ua.datatype_to_varianttype(number)
    assert got == expected
    assert type(got) is type(expected)
    if not isinstance(expected, VariantTypeCustom):
        assert got is expected  # the very same enum member


def test_node_ids_and_bad_input_still_go_to_asyncua() -> None:
    assert ua.datatype_to_varianttype(ua.NodeId(11)) is ua.VariantType.Double
    with pytest.raises(ua.UaError):
        ua.datatype_to_varianttype("Double")  # type: ignore[arg-type]


def test_decoding_uses_it_and_round_trips_every_builtin_scalar() -> None:
    assert ua.datatype_to_varianttype is _speedups.datatype_to_varianttype
    for value, vtype in [
        (True, ua.VariantType.Boolean),
        (-5, ua.VariantType.Int16),
        (70000, ua.VariantType.UInt32),
        (2.5, ua.VariantType.Double),
        ("text", ua.VariantType.String),
    ]:
        variant = ua.Variant(value, vtype)
        decoded = ua_binary.variant_from_binary(
            ua.utils.Buffer(ua_binary.variant_to_binary(variant))
        )
        assert (decoded.Value, decoded.VariantType) == (value, vtype)
