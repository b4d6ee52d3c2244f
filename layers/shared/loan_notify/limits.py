"""Abuse limits of the borrower API, kept in DynamoDB with atomic conditional writes.

Every limit is a counter per key and fixed window (the clock hour, the 10-minute slot, the UTC day), taken with a
conditional update that only succeeds under the limit: concurrent requests can never take more than the limit,
whichever instance serves them. Counters expire by TTL a minute after their window ends. The limits of one action
are taken together in one transaction: either all of them count the action, or none does and nothing is sent.

Destinations (a phone number, an email address) are keyed by an HMAC of the value, never stored in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from loan_notify.clock import utc_now


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window_s: int
    distinct: bool = False  # counts distinct values (destinations) instead of events

    def describe(self) -> str:
        unit = {600: "10 minutes", 3600: "hour", 86400: "day"}.get(self.window_s, f"{self.window_s} s")
        return f"{self.count} {self.name.replace('_', ' ')} per {unit}"


# The documented defaults (README, "Security"); tests/unit/test_limits.py pins them.
SENDS_PER_BORROWER = Limit("codes_or_links_per_borrower", 5, 3600)
SENDS_PER_DESTINATION = Limit("codes_or_links_per_destination", 3, 600)
DESTINATIONS_PER_BORROWER = Limit("destinations_per_borrower", 5, 86400, distinct=True)
CODE_CHECKS_PER_BORROWER = Limit("code_checks_per_borrower", 10, 3600)
# A report counts the case it opens (distinct case ids): concurrent repeats of one report, which all find no case yet
# and race to open the same one, count once instead of spending the borrower's day on one case.
REPORTS_PER_BORROWER = Limit("reports_per_borrower", 5, 86400, distinct=True)
ALL = (SENDS_PER_BORROWER, SENDS_PER_DESTINATION, DESTINATIONS_PER_BORROWER, CODE_CHECKS_PER_BORROWER,
       REPORTS_PER_BORROWER)


CONFLICT_TRIES = 3  # concurrent transactions on one counter conflict in DynamoDB: tried again at once


class LimitExceeded(Exception):
    """Over a limit: nothing was done. `retry_after_s` is when the fullest window ends (1 s when the counters were
    too busy to take, with no limit named)."""

    def __init__(self, limits: list[Limit], retry_after_s: int) -> None:
        super().__init__("too many requests: " + ("; ".join(limit.describe() for limit in limits)
                                                  or "too many at once, try again"))
        self.limits = limits
        self.retry_after_s = retry_after_s


class Limits:
    """The limits table (a boto3 Table resource) and the key that hashes destinations."""

    def __init__(self, table: Any, pepper: bytes, clock=utc_now) -> None:
        if not pepper:
            raise ValueError("a limits key is required (destinations are never stored in clear)")
        self._table = table
        self._pepper = pepper
        self._clock = clock

    def destination(self, kind: str, value: str) -> str:
        return hmac.new(self._pepper, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def take_send(self, borrower_id: str, kind: str, value: str) -> None:
        """One code or link to `value` (a normalised phone or address) for this borrower, or LimitExceeded."""
        dest = self.destination(kind, value)
        self.take([(SENDS_PER_BORROWER, borrower_id, None), (SENDS_PER_DESTINATION, dest, None),
                   (DESTINATIONS_PER_BORROWER, borrower_id, dest)])

    def take_check(self, borrower_id: str) -> None:
        self.take([(CODE_CHECKS_PER_BORROWER, borrower_id, None)])

    def take_report(self, borrower_id: str, case_id: str) -> None:
        """One new case for this borrower today; the same case again counts nothing. The case is kept hashed, as
        destinations are: the limits table names no loan."""
        self.take([(REPORTS_PER_BORROWER, borrower_id, self.destination("report", case_id))])

    def take(self, takes: list[tuple[Limit, str, str | None]]) -> None:
        """Count one event against each (limit, key, distinct value), all or none (one transaction)."""
        now = self._clock().timestamp()
        items = []
        for limit, key, member in takes:
            window = int(now // limit.window_s)
            expires = (window + 1) * limit.window_s + 60
            pk = f"{limit.name}#{key}#{window}"
            if limit.distinct:
                # `n < :max` too: a window's counter written while the limit counted events (reports did, before
                # they counted cases) still caps it
                update = {"UpdateExpression": "ADD members :m SET expires_at = :x",
                          "ConditionExpression": "(attribute_not_exists(members) OR contains(members, :v) "
                                                 "OR size(members) < :max) AND (attribute_not_exists(n) OR n < :max)",
                          "ExpressionAttributeValues": {":m": {member}, ":v": member, ":max": limit.count,
                                                        ":x": expires}}
            else:
                update = {"UpdateExpression": "SET n = if_not_exists(n, :zero) + :one, expires_at = :x",
                          "ConditionExpression": "attribute_not_exists(n) OR n < :max",
                          "ExpressionAttributeValues": {":zero": 0, ":one": 1, ":max": limit.count,
                                                        ":x": expires}}
            items.append({"Update": {"TableName": self._table.name, "Key": {"pk": pk}, **update}})
        for attempt in range(CONFLICT_TRIES):
            try:
                self._write(items)
                return
            except ClientError as err:
                failed = self._over(err, takes)
                if failed is None:  # another request's transaction held an item: try again at once
                    if attempt + 1 < CONFLICT_TRIES:
                        continue
                    raise LimitExceeded([], 1) from err  # busy: a "not now", never a 5xx
                retry = max(math.ceil((int(now // limit.window_s) + 1) * limit.window_s - now) for limit in failed)
                raise LimitExceeded(failed, max(1, retry)) from err

    def _write(self, items: list[dict[str, Any]]) -> None:
        if len(items) == 1:
            update = items[0]["Update"]
            self._table.update_item(**{k: v for k, v in update.items() if k != "TableName"})
        else:
            self._table.meta.client.transact_write_items(TransactItems=items)

    @staticmethod
    def _over(err: ClientError, takes: list[tuple[Limit, str, str | None]]) -> list[Limit] | None:
        """The limits a refused write was over; None for a transaction conflict (nothing was over). Any other
        error is raised as it is."""
        code = err.response.get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException":
            return [takes[0][0]]
        if code == "TransactionCanceledException":
            reasons = err.response.get("CancellationReasons") or []
            failed = [takes[i][0] for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
            if failed:
                return failed
            if any(r.get("Code") == "TransactionConflict" for r in reasons):
                return None
        raise err
