"""The borrower's message center: every notice owed to them, its delivery state, and the "read" confirmation.

Identity is the caller's borrower id (from the API's JWT). A notice of someone else is reported exactly like a
notice that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any

from loan_notify.clock import iso, utc_now
from loan_notify.contacts import VerificationError, sign, unsign
from loan_notify.models import Borrower
from loan_notify.receipts import Receipt, apply_receipt
from loan_notify.templates import render
from loan_notify.vocabulary import AttemptResult, DeliveryStatus, LoanStatus, NoticeState

_SHOWN = {NoticeState.REJECTED.value}  # invalid status changes are the platform's problem, not the borrower's


class NotFound(Exception):
    pass


_PAGE_KEY = {"notification_id", "borrower_id", "created_at"}  # the ByBorrower index's key of an item


def _token(key: dict[str, Any] | None, secret: bytes) -> str | None:
    """The page token: the index key to continue from, signed, so a client can only hand back one we gave it."""
    if not key:
        return None
    plain = {k: (int(v) if isinstance(v, Decimal) else v) for k, v in key.items()}
    return sign(plain, _page_secret(secret))


def _page_secret(secret: bytes) -> bytes:
    """A key of its own for page tokens (derived): a page token is never a valid email link, nor the reverse."""
    return hmac.new(secret, b"loan-notify page token", hashlib.sha256).digest()


def _key(token: str | None, borrower_id: str, secret: bytes) -> dict[str, Any] | None:
    """The key a page token carries: signed by us, for this borrower, of the index's shape; else ValueError."""
    if not token:
        return None
    try:
        key = unsign(token, _page_secret(secret))
    except VerificationError as err:
        raise ValueError("page: not a page token this API gave out") from err
    if (not isinstance(key, dict) or set(key) != _PAGE_KEY or not all(isinstance(v, str) for v in key.values())
            or key["borrower_id"] != borrower_id):
        raise ValueError("page: not a page token this API gave out")
    return key


def view(notice: dict[str, Any], borrower: Borrower) -> dict[str, Any]:
    message = render(LoanStatus(notice["status"]), borrower.locale, name=borrower.name, loan_id=notice["loan_id"],
                     amount=notice.get("amount"), currency=notice.get("currency"),
                     reason=notice.get("status_reason"))
    attempts = notice.get("attempts", [])
    return {
        "id": notice["notification_id"],
        "loan_id": notice["loan_id"],
        "status": notice["status"],
        "status_changed_at": notice.get("status_updated_at"),
        "created_at": notice.get("created_at"),
        "title": message.subject,
        "text": message.text,
        "state": notice.get("state"),
        "read": bool(notice.get("read_at")),
        "channels": [{"channel": a["channel"], "result": a.get("result"),
                      "delivery_status": a.get("delivery_status")} for a in attempts],
    }


def list_notices(borrower: Borrower, *, ledger: Any, secret: bytes, limit: int = 20, page_token: str | None = None
                 ) -> dict[str, Any]:
    items, last = ledger.by_borrower(borrower.borrower_id, limit=limit,
                                     start=_key(page_token, borrower.borrower_id, secret))
    shown = [view(n, borrower) for n in items if n.get("state") not in _SHOWN and n.get("status")]
    return {"notifications": shown, "next_page": _token(last, secret)}


def _visible(notice: dict[str, Any] | None, borrower: Borrower) -> bool:
    return bool(notice) and notice.get("borrower_id") == borrower.borrower_id and notice.get("state") not in _SHOWN


def get_notice(borrower: Borrower, notification_id: str, *, ledger: Any) -> dict[str, Any]:
    """The borrower's notice, or NotFound. Notice ids derive from public facts (loan, status, version), so
    another borrower's notice must answer exactly like one that does not exist, in time too: the access check
    reads only the owner and the state, and the whole notice (kilobytes of attempts and chain) is read only for
    its owner."""
    if not _visible(ledger.owner(notification_id), borrower):
        raise NotFound(notification_id)
    notice = ledger.get(notification_id)
    if not _visible(notice, borrower):
        raise NotFound(notification_id)
    return notice


def mark_read(borrower: Borrower, notification_id: str, *, ledger: Any, deliveries: Any, callbacks: Any,
              contacts: Any, clock=utc_now) -> dict[str, Any]:
    """The borrower opened the notice in the app: that confirms it, whichever channel is being waited on."""
    notice = get_notice(borrower, notification_id, ledger=ledger)
    at = iso(clock())
    ledger.mark_read(notification_id, at)
    for attempt in notice.get("attempts", []):
        if attempt.get("result") == AttemptResult.SENT.value and attempt.get("message_id"):
            apply_receipt(Receipt("app", attempt["message_id"], DeliveryStatus.READ, at, "opened in the app"),
                          deliveries=deliveries, ledger=ledger, callbacks=callbacks, contacts=contacts, clock=clock)
    return view(get_notice(borrower, notification_id, ledger=ledger), borrower)
