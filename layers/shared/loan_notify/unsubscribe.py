"""One-click unsubscribe (RFC 8058) from non-critical notices, served by the borrower API without a login.

A non-critical email's `List-Unsubscribe` header points at `<borrower API>/unsubscribe?t=<token>`; its
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` tells the mailbox provider to POST `List-Unsubscribe=One-Click`
there. The token is the proof: HMAC-SHA256 over the borrower id, the notice id and an expiry (60 days), with a key
of its own derived from the signing secret of the email confirmation links (an unsubscribe token is never a valid
confirmation link or page token, nor the reverse), compared in constant time. The POST sets the same preference as
`PUT /me/preferences` (`opt_out_non_critical`); critical notices still go out. A GET changes nothing (link scanners
fetch every URL of an email).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from loan_notify.clock import Clock, iso, utc_now
from loan_notify.contacts import VerificationError, unsign
from loan_notify.contacts import sign as _sign
from loan_notify.errors import BorrowerNotFound

TOKEN_TTL = timedelta(days=60)
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"  # RFC 8058: the body a mailbox provider POSTs
PATH = "/unsubscribe"
_CLAIMS = {"b", "n", "x"}  # borrower id, notification id, expiry


def unsubscribe_key(secret: bytes) -> bytes:
    """The unsubscribe tokens' own key, derived from the borrower API's signing secret."""
    return hmac.new(secret, b"loan-notify unsubscribe token", hashlib.sha256).digest()


@dataclass(frozen=True)
class UnsubscribeClaims:
    borrower_id: str
    notification_id: str
    expires_at: datetime


def sign(borrower_id: str, notification_id: str, *, key: bytes, now: datetime, ttl: timedelta = TOKEN_TTL) -> str:
    return _sign({"b": borrower_id, "n": notification_id, "x": iso(now + ttl)}, key)


def verify(token: str, *, key: bytes, clock: Clock = utc_now) -> UnsubscribeClaims:
    """The token's claims, or VerificationError ("invalid_link": forged, tampered or malformed; "expired")."""
    try:
        claims = unsign(token, key)
    except VerificationError as err:
        raise VerificationError("invalid_link", "this unsubscribe link is not valid") from err
    if not isinstance(claims, dict) or set(claims) != _CLAIMS or not all(
            isinstance(v, str) and v for v in claims.values()):
        raise VerificationError("invalid_link", "this unsubscribe link is not valid")
    try:
        expires = datetime.fromisoformat(claims["x"].replace("Z", "+00:00"))
    except ValueError as err:
        raise VerificationError("invalid_link", "this unsubscribe link is not valid") from err
    if expires.tzinfo is None or expires <= clock():
        raise VerificationError("expired", "this unsubscribe link has expired; change your preferences in the app")
    return UnsubscribeClaims(borrower_id=claims["b"], notification_id=claims["n"], expires_at=expires)


class UnsubscribeLinks:
    """Builds the `List-Unsubscribe` URL of one notice for one borrower (the sender's side)."""

    def __init__(self, api_url: str, secret: bytes, *, clock: Clock = utc_now, ttl: timedelta = TOKEN_TTL) -> None:
        if not api_url.startswith(("https://", "http://")):
            raise ValueError(f"the borrower API URL must be an http(s) URL, got {api_url!r}")
        self._base = api_url.rstrip("/") + PATH
        self._key = unsubscribe_key(secret)
        self._clock = clock
        self._ttl = ttl

    def __call__(self, borrower_id: str, notification_id: str) -> str:
        token = sign(borrower_id, notification_id, key=self._key, now=self._clock(), ttl=self._ttl)
        return f"{self._base}?{urlencode({'t': token})}"


def _for_borrower(token: str, secret: bytes, clock: Clock, act: Any) -> UnsubscribeClaims:
    """The token's claims after `act(borrower_id)`; a borrower who is gone makes the link invalid."""
    claims = verify(token, key=unsubscribe_key(secret), clock=clock)
    try:
        act(claims.borrower_id)
    except BorrowerNotFound as err:
        raise VerificationError("invalid_link", "this unsubscribe link is no longer valid") from err
    return claims


def check(token: str, *, secret: bytes, borrowers: Any, clock: Clock = utc_now) -> UnsubscribeClaims:
    """What a GET does: says whether the link is valid and for which notice, and changes nothing."""
    return _for_borrower(token, secret, clock, borrowers.get)


def unsubscribe(token: str, *, secret: bytes, borrowers: Any, clock: Clock = utc_now) -> UnsubscribeClaims:
    """The one-click POST: the borrower opts out of non-critical notices (idempotent: a repeat is the same)."""
    return _for_borrower(token, secret, clock, borrowers.opt_out_non_critical)
