"""Deadband filters as OPC UA specifies them, where asyncua 2.1's server does not.

asyncua accepts a DataChangeFilter with a percent deadband and then ignores it: every
change is reported, and "DeadbandType Percent is not implemented !" is logged on each
one. OPC 10000-8 6.2 allows a percent deadband only on AnalogItems with an EURange
property and has the server refuse it otherwise with Bad_DeadbandFilterInvalid. No
variable of the simulator has an EURange, so the face refuses every percent deadband
(in CreateMonitoredItems and ModifyMonitoredItems), as a conforming PLC does; a client
may then monitor the item without a server-side deadband. Absolute deadbands are
accepted; the face decides what they report (see :mod:`.datachange` and
:mod:`.data_change_filter`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_session import InternalSession
from asyncua.server.monitored_item_service import MonitoredItemValues

from simulators.faces.opcua.standard_space import FastInitInternalServer

PERCENT_DEADBAND_REFUSED = ua.StatusCodes.BadDeadbandFilterInvalid


def deadband_refusal(item_filter: Any) -> int | None:
    """The status code refusing ``item_filter``, or None when the face accepts it."""
    # Duck-typed: requests decode to ua.uaprotocol_auto.DataChangeFilter, of which
    # ua.DataChangeFilter is a subclass, so isinstance(item_filter, ua.DataChangeFilter)
    # is False on the server side.
    percent = getattr(item_filter, "DeadbandType", None) == ua.DeadbandType.Percent
    return PERCENT_DEADBAND_REFUSED if percent else None


class DeadbandCheckingSession(InternalSession):
    """asyncua's session, refusing percent deadbands before asyncua sees them."""

    async def create_monitored_items(
        self, params: ua.CreateMonitoredItemsParameters
    ) -> list[ua.MonitoredItemCreateResult]:
        refusals = [deadband_refusal(i.RequestedParameters.Filter) for i in params.ItemsToCreate]
        if not any(refusals):
            return await super().create_monitored_items(params)
        accepted = [i for i, r in zip(params.ItemsToCreate, refusals, strict=True) if r is None]
        results = await super().create_monitored_items(
            dataclasses.replace(params, ItemsToCreate=accepted)
        )
        return _merge(refusals, results, ua.MonitoredItemCreateResult)

    async def modify_monitored_items(
        self, params: ua.ModifyMonitoredItemsParameters
    ) -> list[ua.MonitoredItemModifyResult]:
        refusals = [deadband_refusal(i.RequestedParameters.Filter) for i in params.ItemsToModify]
        if not any(refusals):
            return await super().modify_monitored_items(params)
        accepted = [i for i, r in zip(params.ItemsToModify, refusals, strict=True) if r is None]
        results = await super().modify_monitored_items(
            dataclasses.replace(params, ItemsToModify=accepted)
        )
        return _merge(refusals, results, ua.MonitoredItemModifyResult)


def _merge(refusals: Sequence[int | None], results: Sequence[Any], result_type: type) -> list[Any]:
    """Results in request order: asyncua's for accepted items, refusals for the others."""
    served = iter(results)
    return [
        next(served) if code is None else result_type(StatusCode=ua.StatusCode(code))
        for code in refusals
    ]


class SimulatorInternalServer(FastInitInternalServer):
    """The face's internal server: fast standard address space, checked deadbands."""

    def create_session(
        self, name: str, user: User = User(role=UserRole.Anonymous), external: bool = False
    ) -> InternalSession:
        return DeadbandCheckingSession(
            self, self.aspace, self.subscription_service, name, user=user, external=external
        )


_IMMUTABLE_SCALARS = (bool, int, float, str, bytes, datetime, type(None))
_deep_copying_set = MonitoredItemValues.set_current_datavalue


def _set_current_datavalue(self: MonitoredItemValues, cur_val: ua.DataValue) -> None:
    """asyncua's ``set_current_datavalue`` without the deepcopy where nothing can change.

    asyncua deep-copies every monitored value on every change, "to prevent referencing
    the inner value". Under the load scenario that was half of a simulator's CPU
    (py-spy: 49 % of its samples in the data-change callbacks, most in ``copy.deepcopy``).
    The face builds a new DataValue for every change and never edits one, so a value
    whose Variant holds an immutable scalar is kept as is; a list or structure (which
    asyncua edits in place, e.g. NamespaceArray) is still copied.
    """
    variant = cur_val.Value
    if variant is None or isinstance(variant.Value, _IMMUTABLE_SCALARS):
        self.old_dvalue = self.current_dvalue
        self.current_dvalue = cur_val
    else:
        _deep_copying_set(self, cur_val)


def keep_scalar_values_uncopied() -> None:
    """Install :func:`_set_current_datavalue` (process-wide; idempotent)."""
    MonitoredItemValues.set_current_datavalue = _set_current_datavalue  # type: ignore[method-assign]
