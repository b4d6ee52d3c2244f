"""Stream router domain: one Loans stream record in, one started notice (or one recorded rejection) out."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from pydantic import ValidationError

from loan_notify.ledger import Ledger
from loan_notify.models import LoanImage, NoticeRef, execution_name


class RouteOutcome(StrEnum):
    STARTED = "started"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    IGNORED = "ignored"  # not a status change (the trigger's filter should already have dropped it)


@dataclass(frozen=True)
class Routed:
    outcome: RouteOutcome
    notification_id: str | None = None
    reason: str | None = None


# start(name, input_json) -> True if started, False if an execution of that name already exists.
Starter = Callable[[str, str], bool]


def _validation_reason(err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "image"
    return f"invalid_{field}" if first.get("type") != "missing" else f"missing_{field}"


_deserializer = TypeDeserializer()


def _deserialise(image: Any) -> dict[str, Any] | None:
    if image is None:
        return None
    if not isinstance(image, dict):
        raise TypeError("image is not a map")
    return {key: _deserializer.deserialize(value) for key, value in image.items()}


def route(event_id: str, event_name: str, raw_new: Any, raw_old: Any, *, ledger: Ledger, start: Starter) -> Routed:
    """Turn one stream record (images in DynamoDB JSON) into a notice.

    Bad input never raises: it is recorded in the ledger with its reason and reported as REJECTED.
    Infrastructure errors do raise, so the batch reports this record as failed and it is retried.
    The borrower row is not checked here: the platform may write it a moment after the loan, so the execution
    starts anyway and Prepare waits for the row (bounded) without holding up the shard.
    """
    if event_name == "REMOVE" or raw_new is None:
        return Routed(RouteOutcome.IGNORED, reason="no_new_image")
    try:
        new_image = _deserialise(raw_new) or {}
        old_image = _deserialise(raw_old)
    except (TypeError, ValueError, ArithmeticError, AttributeError, KeyError) as err:
        rejected_id = f"rejected-{event_id}"
        ledger.reject(rejected_id, "malformed_image", f"{type(err).__name__}: {err}", {"event_id": event_id})
        return Routed(RouteOutcome.REJECTED, rejected_id, "malformed_image")
    if old_image is not None and old_image.get("status") == new_image.get("status"):
        return Routed(RouteOutcome.IGNORED, reason="status_unchanged")

    context = {k: new_image.get(k) for k in ("loan_id", "borrower_id", "status", "version")
               if isinstance(new_image.get(k), (str, int))}
    try:
        loan = LoanImage.model_validate(new_image)
    except ValidationError as err:
        reason = _validation_reason(err)
        rejected_id = f"rejected-{event_id}"
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors(include_input=False))
        ledger.reject(rejected_id, reason, detail, {**context, "event_id": event_id})
        return Routed(RouteOutcome.REJECTED, rejected_id, reason)

    name = execution_name(loan.notification_id)  # at most 80 characters, the same on every redelivery
    first_delivery = ledger.open_notice(loan, execution_name=name)
    ref = NoticeRef(notification_id=loan.notification_id, loan_id=loan.loan_id, borrower_id=loan.borrower_id,
                    status=loan.status, version=loan.version)
    # Start even when the ledger item existed: a crash between the two writes must not lose the notice.
    # StartExecution is idempotent by name, so the duplicate never becomes a second execution.
    started = start(name, json.dumps(ref.model_dump(mode="json"), separators=(",", ":")))
    if first_delivery and started:
        return Routed(RouteOutcome.STARTED, loan.notification_id)
    return Routed(RouteOutcome.DUPLICATE, loan.notification_id)
