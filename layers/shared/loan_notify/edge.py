"""Checks on a raw request body before anything parses it: size in bytes, and how deep its JSON nests."""

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
