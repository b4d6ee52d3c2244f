"""`local` commands: what the local cloud's simulated providers sent (there is no such thing in AWS)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from loan_notify_ops.stack import OpsError, Stack


def outbox(stack: Stack, to: str | None = None) -> list[dict[str, Any]]:
    """Every SMS and email the local cloud's providers accepted, oldest first, from the local API's outbox page."""
    base = stack.output("BorrowerApiUrl")
    if not base.startswith(("http://127.0.0.1", "http://localhost")):
        raise OpsError(f"stack {stack.target.stack_name} is not the local cloud: the outbox exists only there")
    url = f"{base}/_local/outbox" + (f"?{urlencode({'to': to})}" if to else "")
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - the local API, 127.0.0.1 only
            return list(json.loads(response.read())["messages"])
    except (urllib.error.URLError, OSError, ValueError, KeyError) as err:
        raise OpsError(f"cannot read the local outbox at {url}: {err}") from err


def format_outbox(messages: list[dict[str, Any]]) -> str:
    if not messages:
        return "the local outbox is empty"
    blocks = []
    for message in messages:
        head = f"{message['channel']} to {message['to']}  ({message['region']}, message {message['message_id']})"
        subject = f"\n  subject: {message['subject']}" if message.get("subject") else ""
        text = "\n".join(f"  {line}" for line in str(message.get("text") or "").splitlines())
        blocks.append(f"{head}{subject}\n{text}")
    return "\n\n".join(blocks)
