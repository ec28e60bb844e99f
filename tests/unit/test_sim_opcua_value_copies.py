"""The simulator keeps scalar monitored values by reference and still copies the rest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asyncua import ua
from asyncua.server.monitored_item_service import MonitoredItemValues

from simulators.faces.opcua import monitoring

T = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def installed() -> None:
    monitoring.keep_scalar_values_uncopied()


@pytest.mark.parametrize(
    "variant",
    [
        ua.Variant(21.5, ua.VariantType.Double),
        ua.Variant(7, ua.VariantType.UInt32),
        ua.Variant(True, ua.VariantType.Boolean),
        ua.Variant("order-1", ua.VariantType.String),
        ua.Variant(T, ua.VariantType.DateTime),
        ua.Variant(None, ua.VariantType.Null),
    ],
)
def test_a_scalar_value_is_kept_as_is(variant: ua.Variant) -> None:
    values = MonitoredItemValues()
    first = ua.DataValue(variant, ua.StatusCode(), T, T)
    second = ua.DataValue(variant, ua.StatusCode(), T, T)
    values.set_current_datavalue(first)
    values.set_current_datavalue(second)
    assert values.get_current_datavalue() is second
    assert values.get_old_datavalue() is first


def test_a_list_value_is_still_copied_so_an_edit_in_place_shows_as_a_change() -> None:
    names = ["http://opcfoundation.org/UA/"]
    value = ua.DataValue(ua.Variant(names, ua.VariantType.String), ua.StatusCode(), T, T)
    values = MonitoredItemValues()
    values.set_current_datavalue(value)
    names.append("urn:lineside:sim")  # asyncua edits NamespaceArray in place
    values.set_current_datavalue(value)
    old, current = values.get_old_datavalue(), values.get_current_datavalue()
    assert old is not value
    assert current is not value
    assert old.Value.Value == ["http://opcfoundation.org/UA/"]
    assert current.Value.Value == ["http://opcfoundation.org/UA/", "urn:lineside:sim"]


def test_a_value_without_a_variant_is_kept() -> None:
    values = MonitoredItemValues()
    bad = ua.DataValue(None, ua.StatusCode(ua.StatusCodes.BadSensorFailure), T, T)
    values.set_current_datavalue(bad)
    assert values.get_current_datavalue() is bad
