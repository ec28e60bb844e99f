"""Subscribe groups: one OPC UA subscription per publishing interval, raw notifications.

Notifications are handled in the session's publish loop itself: each PublishResponse
becomes one batch of samples, with no asyncio task or queue item per notification
(asyncua's handler mode costs a task per value; see the field notes).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime

from asyncua import ua

from edge_agent.config.models import SubscribeSampling
from edge_agent.samples import ConnectionChange, Sample
from edge_agent.sources.opcua.points import TagPoint
from edge_agent.sources.opcua.session import OpcUaSession
from edge_agent.sources.opcua.values import (
    FILTER_REFUSED_STATUSES,
    is_quarantine_status,
    sample_of,
    status_name,
)

log = logging.getLogger("lineside.agent.opcua")

Emit = Callable[[list[Sample | ConnectionChange]], None]
OnQuarantine = Callable[[TagPoint, str], None]

_KEEPALIVE_S = 5.0  # the server sends a keep-alive at least this often
_LIFETIME_S = 60.0  # the server drops the subscription after this long without publish


class SubscribeGroup:
    """The monitored items of tags sharing one publishing interval."""

    def __init__(
        self,
        publishing_interval_s: float,
        session: OpcUaSession,
        emit: Emit,
        on_quarantine: OnQuarantine,
        filter_refusals_logged: set[str],
    ) -> None:
        self.publishing_interval_s = publishing_interval_s
        self._session = session
        self._emit = emit
        self._on_quarantine = on_quarantine
        self._filter_refusals_logged = filter_refusals_logged
        self._subscription_id: int | None = None
        self._by_handle: dict[int, TagPoint] = {}
        self._server_ids: dict[str, int] = {}  # tag key -> MonitoredItemId
        self._orphans: list[int] = []  # MonitoredItemIds of quarantined tags, to delete
        self._next_handle = 1

    def __len__(self) -> int:
        return len(self._server_ids)

    async def create(self) -> None:
        """Create the subscription on the server; notifications start flowing."""
        interval_ms = self.publishing_interval_s * 1000
        keepalive = max(1, math.ceil(_KEEPALIVE_S / self.publishing_interval_s))
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=interval_ms,
            RequestedLifetimeCount=max(
                3 * keepalive, math.ceil(_LIFETIME_S / self.publishing_interval_s)
            ),
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=0,  # no limit
            PublishingEnabled=True,
            Priority=0,
        )
        result = await self._session.client.uaclient.create_subscription(params, self._on_publish)
        self._subscription_id = result.SubscriptionId

    async def add(self, points: list[TagPoint]) -> None:
        """Create monitored items for ``points`` (in chunks the server accepts).

        A refused deadband filter is retried without a server-side deadband; a node
        answering with a quarantine status goes to ``on_quarantine``.
        """
        size = self._session.max_items_per_call
        for start in range(0, len(points), size):
            refused = await self._create_items(points[start : start + size], with_filter=True)
            if refused:
                await self._create_items(refused, with_filter=False)

    async def delete_orphans(self) -> None:
        """Delete monitored items whose node turned bad while subscribed."""
        orphans, self._orphans = self._orphans, []
        if orphans:
            await self._delete(orphans)

    async def _delete(self, server_ids: list[int]) -> None:
        params = ua.DeleteMonitoredItemsParameters(
            SubscriptionId=self._subscription_id, MonitoredItemIds=server_ids
        )
        await self._session.client.uaclient.delete_monitored_items(params)

    async def _create_items(self, points: list[TagPoint], *, with_filter: bool) -> list[TagPoint]:
        """Create items; return the points whose deadband filter the server refused."""
        requests = []
        handles = []
        for point in points:
            handle = self._next_handle
            self._next_handle += 1
            handles.append(handle)
            # Mapped before the request: notifications can beat the response.
            self._by_handle[handle] = point
            requests.append(_item_request(point, handle, with_filter))
        params = ua.CreateMonitoredItemsParameters(
            SubscriptionId=self._subscription_id,
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            ItemsToCreate=requests,
        )
        try:
            results = await self._session.client.uaclient.create_monitored_items(params)
        except BaseException:
            for handle in handles:
                self._by_handle.pop(handle, None)
            raise
        refused: list[TagPoint] = []
        for point, handle, result in zip(points, handles, results, strict=True):
            code = result.StatusCode.value
            if result.StatusCode.is_good():
                self._server_ids[point.key] = result.MonitoredItemId
                continue
            del self._by_handle[handle]
            if with_filter and (code & 0xFFFF0000) in FILTER_REFUSED_STATUSES:
                self._log_filter_refused(point, status_name(code))
                refused.append(point)
            elif is_quarantine_status(code):
                self._on_quarantine(point, status_name(code))
            else:
                log.warning(
                    "event=opcua_monitored_item_refused connection=%s tag=%s node=%s status=%s",
                    self._session.connection_id,
                    point.key,
                    point.ref.text,
                    status_name(code),
                )
        return refused

    def _log_filter_refused(self, point: TagPoint, status: str) -> None:
        if point.key in self._filter_refusals_logged:
            return
        self._filter_refusals_logged.add(point.key)
        log.warning(
            "event=opcua_deadband_refused connection=%s tag=%s node=%s status=%s "
            "action=subscribed_without_server_deadband",
            self._session.connection_id,
            point.key,
            point.ref.text,
            status,
        )

    def _on_publish(self, result: ua.PublishResult) -> None:
        """Called by asyncua's publish loop with each PublishResponse (sync, cheap)."""
        notifications = result.NotificationMessage.NotificationData
        if not notifications:
            return  # keep-alive
        received = datetime.now(UTC)
        batch: list[Sample | ConnectionChange] = []
        for notification in notifications:
            if isinstance(notification, ua.DataChangeNotification):
                for item in notification.MonitoredItems:
                    point = self._by_handle.get(item.ClientHandle)
                    if point is None:
                        continue  # removed meanwhile
                    code = item.Value.StatusCode.value if item.Value.StatusCode else 0
                    if code and is_quarantine_status(code):
                        self._quarantine_subscribed(item.ClientHandle, point, status_name(code))
                        continue
                    batch.append(sample_of(point.key, item.Value, received))
            elif isinstance(notification, ua.StatusChangeNotification):
                status = notification.Status
                if not status.is_good():
                    self._session.mark_lost(f"subscription status {status.name}")
        if batch:
            self._emit(batch)

    def _quarantine_subscribed(self, handle: int, point: TagPoint, status: str) -> None:
        del self._by_handle[handle]
        server_id = self._server_ids.pop(point.key, None)
        if server_id is not None:
            self._orphans.append(server_id)
        self._on_quarantine(point, status)


def _item_request(point: TagPoint, handle: int, with_filter: bool) -> ua.MonitoredItemCreateRequest:
    sampling = point.tag.sampling
    assert isinstance(sampling, SubscribeSampling)
    params = ua.MonitoringParameters(
        ClientHandle=handle,
        SamplingInterval=sampling.sampling_interval_s * 1000,
        QueueSize=max(1, sampling.queue_size),  # 0 would give a server default (10,000)
        DiscardOldest=True,
    )
    if with_filter and sampling.deadband is not None:
        params.Filter = ua.DataChangeFilter(
            Trigger=ua.DataChangeTrigger.StatusValue,
            DeadbandType=(
                ua.DeadbandType.Absolute
                if sampling.deadband.type == "absolute"
                else ua.DeadbandType.Percent
            ),
            DeadbandValue=sampling.deadband.value,
        )
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(NodeId=point.node_id, AttributeId=ua.AttributeIds.Value),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=params,
    )
