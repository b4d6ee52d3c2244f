"""Checks on a raw request before anything parses it: the body's size in bytes, how deep its JSON nests, and that a
body meant to be JSON says so."""

from __future__ import annotations

import base64
import binascii

MAX_BODY_BYTES = 16 * 1024  # every request body of the borrower API is a few hundred bytes
MAX_JSON_DEPTH = 8  # the deepest body the API accepts nests 3 levels (preferences.quiet_hours)


def body_bytes(body: str | None, is_base64: bool) -> bytes:
    """The body as the client sent it (API Gateway hands binary bodies over in base64)."""
    if not body:
        return b""
    if is_base64:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return body.encode("utf-8", errors="surrogatepass")
    return body.encode("utf-8", errors="surrogatepass")


def json_depth(raw: bytes, stop_at: int = MAX_JSON_DEPTH + 1) -> int:
    """How deep arrays and objects nest in `raw` (strings skipped), counting no further than `stop_at`: a cheap
    scan that never recurses, so a body nested 100,000 deep costs one pass and no stack."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest >= stop_at:
                    return deepest
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def declares_json(event: dict, *, form_paths: frozenset[str] = frozenset()) -> bool:
    """False for a request whose body would be parsed as something other than JSON: one with a body (or a PUT, which
    always needs one) whose Content-Type is not application/json. Without this, a JSON body labelled as a form is
    parsed as an empty form, and a PUT would replace every field with its default. `form_paths` are the routes that
    take a form (RFC 8058's one-click unsubscribe)."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method", "")).upper()
    if method not in ("POST", "PUT", "PATCH") or event.get("rawPath", http.get("path")) in form_paths:
        return True
    if not event.get("body") and method == "POST":
        return True  # a POST that carries nothing (marking a notice read)
    return _media_type(event) == "application/json"


def _media_type(event: dict) -> str:
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    return str(headers.get("content-type", "")).split(";", 1)[0].strip().lower()


def plain_json_content_type(event: dict) -> dict:
    """The event with a JSON Content-Type written as `application/json`: media types are case-insensitive and may
    carry parameters (`Application/JSON; charset=utf-8`), and the event handler recognises only the plain form."""
    if _media_type(event) != "application/json":
        return event
    headers = {k: v for k, v in (event.get("headers") or {}).items() if str(k).lower() != "content-type"}
    return {**event, "headers": {**headers, "content-type": "application/json"}}
