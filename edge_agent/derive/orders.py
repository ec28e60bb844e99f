"""Order and product tags -> ``production.ended`` / ``production.started``.

An order or product change ends the current production (if there is one) and starts
the new one (unless both are now empty). Order and product samples with the same event
time are applied together, so a simultaneous order and product change gives one
ended/started pair, with reason ``order_changed`` (``product_changed`` when only the
product changed). Empty or blank values (and NUL padding) mean "none". Non-text values
(a numeric order number) are converted with ``str``, integral floats as ints. The
first reading after start reports ``production.started`` for the current production;
after ``restore``, only a change does. ``ideal_cycle_time_s`` comes from the product
role's table (None when the product is not in it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edge_agent.derive.drafts import EventDraft, EventType
from edge_agent.derive.roles import ProductRole


def text_id(value: Any) -> str | None:
    """An order or product id from a sampled value; None for empty."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a numeric order number read as a float: "4711", not "4711.0"
    text = (value if isinstance(value, str) else str(value)).strip().strip("\x00").strip()
    return text or None


class OrderTracker:
    """The current order and product of one equipment."""

    def __init__(self, equipment: str, product_role: ProductRole | None) -> None:
        self._equipment = equipment
        self._cycle_times = dict((product_role.ideal_cycle_time_s or {}) if product_role else {})
        self.order_id: str | None = None
        self.product_id: str | None = None

    def on_change(
        self,
        order: Any,
        product: Any,
        has_order: bool,
        has_product: bool,
        at: datetime,
        received: datetime,
    ) -> list[EventDraft]:
        """Apply a group's order and/or product values; drafts when production changed."""
        new_order = text_id(order) if has_order else self.order_id
        new_product = text_id(product) if has_product else self.product_id
        old_order, old_product = self.order_id, self.product_id
        if (new_order, new_product) == (old_order, old_product):
            return []
        self.order_id, self.product_id = new_order, new_product
        drafts = []
        if (old_order, old_product) != (None, None):
            reason = "order_changed" if new_order != old_order else "product_changed"
            payload = {"order_id": old_order, "product_id": old_product, "reason": reason}
            drafts.append(self._draft(EventType.PRODUCTION_ENDED, payload, at, received, old_order))
        if (new_order, new_product) != (None, None):
            payload = {
                "order_id": new_order,
                "product_id": new_product,
                "ideal_cycle_time_s": self._cycle_times.get(new_product or ""),
            }
            drafts.append(
                self._draft(EventType.PRODUCTION_STARTED, payload, at, received, new_order)
            )
        return drafts

    def _draft(
        self,
        kind: EventType,
        payload: dict[str, Any],
        at: datetime,
        received: datetime,
        order: str | None,
    ) -> EventDraft:
        return EventDraft(kind, self._equipment, at, received, payload, order)

    def snapshot(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "product_id": self.product_id}

    def restore(self, data: dict[str, Any]) -> None:
        self.order_id = data["order_id"]
        self.product_id = data["product_id"]
