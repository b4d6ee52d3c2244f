from __future__ import annotations

from typing import Any

from loan_notify.errors import BorrowerNotFound
from loan_notify.models import Borrower, Preferences
from loan_notify.vocabulary import Channel

_HEALTH = {Channel.SMS: "phone_health", Channel.EMAIL: "email_health", Channel.PUSH: "push_health"}


class Borrowers:
    """Repository over the Borrowers table (a boto3 Table resource is passed in)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, borrower_id: str) -> Borrower:
        item = self._table.get_item(Key={"borrower_id": borrower_id}).get("Item")
        if item is None:
            raise BorrowerNotFound(f"borrower {borrower_id} does not exist")
        return Borrower.model_validate(item)

    def set_preferences(self, borrower_id: str, preferences: Preferences) -> None:
        quiet = preferences.quiet_hours
        self._table.update_item(
            Key={"borrower_id": borrower_id},
            UpdateExpression="SET preferred_channels = :c, #locale = :l, quiet_hours = :q, opt_out_non_critical = :o",
            ConditionExpression="attribute_exists(borrower_id)", ExpressionAttributeNames={"#locale": "locale"},
            ExpressionAttributeValues={
                ":c": [c.value for c in preferences.channels], ":l": preferences.language.value,
                ":q": {"start": quiet.start.strftime("%H:%M"), "end": quiet.end.strftime("%H:%M")} if quiet else None,
                ":o": preferences.opt_out_non_critical})

    def mark(self, borrower_id: str, channel: Channel, effect: str) -> None:
        """Write a receipt's verdict back (bounced, opted_out) so later notices skip the dead contact."""
        if effect not in ("bounced", "opted_out") or channel not in _HEALTH:
            return
        health = _HEALTH[channel]
        self._table.update_item(
            Key={"borrower_id": borrower_id},
            UpdateExpression="SET #h = if_not_exists(#h, :empty)",
            ConditionExpression="attribute_exists(borrower_id)",
            ExpressionAttributeNames={"#h": health}, ExpressionAttributeValues={":empty": {}},
        )
        self._table.update_item(
            Key={"borrower_id": borrower_id},
            UpdateExpression="SET #h.#e = :true",
            ExpressionAttributeNames={"#h": health, "#e": effect}, ExpressionAttributeValues={":true": True},
        )

    def reset(self, borrower_id: str, channel: Channel) -> None:
        """A reviewer corrected this contact: forget what was known about the old one."""
        self._table.update_item(
            Key={"borrower_id": borrower_id}, UpdateExpression="SET #h = :fresh",
            ConditionExpression="attribute_exists(borrower_id)",
            ExpressionAttributeNames={"#h": _HEALTH[channel]}, ExpressionAttributeValues={":fresh": {}})
