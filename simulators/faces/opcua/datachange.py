"""Queueing data changes for subscribers without a coroutine per monitored item.

For every served change asyncua 2.1 awaits ``MonitoredItemService.datachange_callback``
once per monitored item; it keeps the value, compares it with the previous one and
awaits ``InternalSubscription.enqueue_datachange_event``. Under the load scenario
(10k changes/s, each monitored) those coroutines were a third of a simulator's CPU
(py-spy), mostly spent creating and running coroutines that never suspend.

:func:`enqueue_datachange` does the same work synchronously for the common item:
an asyncua data-change item in Reporting mode, without a filter (None or the null
ExtensionObject a request without one decodes to) or with a filter
that only says "status or value changed" (Trigger StatusValue, no deadband), in a
subscription whose publishing loop runs (so queueing never publishes by itself).
It is asyncua's code path inlined, reading and writing the same state: the item's
current/previous value (through ``set_current_datavalue``, i.e. the face's
copy-avoiding version when installed), the subscription's per-item queue with its
size limit (asyncua drops the oldest queued notification whatever DiscardOldest
says; so does this).

Items with an absolute deadband are decided here too, as OPC UA specifies
(:mod:`.data_change_filter`): asyncua 2.1 compares with the previous served value
rather than the last reported one, holds back StatusCode changes, and raises TypeError
on a Bad value without a value, which lost the Bad notification. The last value
queued for such an item is kept here; before the first, the value asyncua queued when
the item was created.

Everything else (other triggers, Sampling or Disabled items, an immediately
publishing subscription, subclasses of asyncua's classes, a callback that is not
asyncua's) returns False, and the caller awaits asyncua's own callback instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from asyncua import ua
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.monitored_item_service import MonitoredItemService, MonitoredItemValues

from simulators.faces.opcua.data_change_filter import reports_change

_ASYNCUA_CALLBACK = MonitoredItemService.datachange_callback
_REPORTING = ua.MonitoringMode.Reporting
_STATUS_VALUE = ua.DataChangeTrigger.StatusValue
_NO_DEADBAND = ua.DeadbandType.None_
_ABSOLUTE = ua.DeadbandType.Absolute
_Notification = ua.MonitoredItemNotification
# the last value queued for each absolute-deadband item (gone with the item)
_last_reported: WeakKeyDictionary[MonitoredItemValues, ua.DataValue | None] = WeakKeyDictionary()


def enqueue_datachange(callback: Callable[..., Any], handle: int, value: ua.DataValue) -> bool:
    """Do what awaiting ``callback(handle, value)`` would do, if it is the common case.

    Returns True when done (queued, or found unchanged as asyncua would), False when
    the caller must await ``callback(handle, value)`` itself; nothing is changed then.
    """
    if getattr(callback, "__func__", None) is not _ASYNCUA_CALLBACK:
        return False
    service = callback.__self__  # type: ignore[attr-defined]
    if type(service) is not MonitoredItemService:
        return False
    isub = service.isub
    if type(isub) is not InternalSubscription or not (
        isub._task or isub.data.RevisedPublishingInterval > 0.0
    ):
        # asyncua publishes at once on the first queued change then: keep its path.
        return False
    mid = service._monitored_datachange.get(handle)
    mdata = service._monitored_items.get(mid) if mid is not None else None
    if mdata is None or mdata.mode != _REPORTING:
        return False
    item_filter = mdata.filter
    # Truthiness as in asyncua: a request without a filter decodes to a null
    # ExtensionObject, which is falsy, and means "no filter" there too.
    deadband = bool(item_filter) and _has_absolute_deadband(item_filter)
    if item_filter and not deadband and not _reports_any_change(item_filter):
        return False
    mvalue = mdata.mvalue
    if deadband:
        # before this item's first decision: the value asyncua queued at its creation
        last = _last_reported.setdefault(mvalue, mvalue.current_dvalue)
        mvalue.set_current_datavalue(value)
        trigger, limit = item_filter.Trigger, item_filter.DeadbandValue
        if not reports_change(last, value, trigger, _ABSOLUTE, limit):
            return True
        _last_reported[mvalue] = value
    else:
        mvalue.set_current_datavalue(value)
        if not _status_or_value_changed(mvalue.old_dvalue, mvalue.current_dvalue):
            return True
    notification = _Notification(ClientHandle=mdata.client_handle, Value=value)
    queue = isub._triggered_datachanges
    queued = queue.get(mid)
    if queued is None:
        queue[mid] = [notification]
        return True
    size = mdata.queue_size
    if size != 0 and len(queued) >= size:
        queued.pop(0)
    queued.append(notification)
    return True


def _reports_any_change(item_filter: Any) -> bool:
    """A filter under which asyncua reports exactly what it reports without one."""
    # Duck-typed like monitoring.deadband_refusal: decoded filters are
    # ua.uaprotocol_auto.DataChangeFilter, not the ua.DataChangeFilter subclass.
    return (
        type(item_filter).__name__ == "DataChangeFilter"
        and item_filter.Trigger == _STATUS_VALUE
        and item_filter.DeadbandType == _NO_DEADBAND
    )


def _has_absolute_deadband(item_filter: Any) -> bool:
    return (
        type(item_filter).__name__ == "DataChangeFilter" and item_filter.DeadbandType == _ABSOLUTE
    )


def _status_or_value_changed(old: ua.DataValue | None, current: ua.DataValue | None) -> bool:
    """asyncua's ``MonitoredItemService._is_data_changed`` for Trigger StatusValue."""
    if old is None or current is None:
        return (old is None) != (current is None)
    return old.StatusCode != current.StatusCode or old.Value != current.Value
