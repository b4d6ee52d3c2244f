"""The outbox: the state machine queues each send (SQS, `.waitForTaskToken`); a paced consumer sends it and tells
the waiting execution how it went. While a send waits in the queue it costs no state transitions.

One queued send, one of three endings:
- put back (`Requeue`): no send token yet (the provider's pace), the provider throttled (the shared rate goes
  down), or every provider of the channel is down and the outage budget is not spent. Nothing is failed over,
  no channel is skipped, no retry of the notice is spent;
- told: the message went out (success, with its message id: the execution then waits for the receipt), or it
  cannot (failure with the error class the state machine catches: the next channel, a person, or an end);
- raised: anything unexpected. The message returns to the queue by its visibility timeout and the send is
  retried; the pending-attempt record makes that retry safe (no blind second message).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loan_notify.errors import (
    BorrowerNotFound,
    NoticeAlreadySettled,
    NoticeSuperseded,
    PaceWait,
    PermanentChannelError,
    ProviderThrottled,
    SendOutcomeUnknown,
    SendWindowClosed,
    TransientChannelError,
)
from loan_notify.models import SendRequest
from loan_notify.notify import outage_tries
from loan_notify.policy import POLICIES
from loan_notify.receipts import Callbacks

OUTAGE_TRIES_PER_PROVIDER = 5  # 1 try + 4 retries, spread by backoff, before the channel counts as failed
THROTTLE_BACKOFF_S = 1.0
OUTAGE_BACKOFF_S = (2, 4, 8, 16, 32, 60)


@dataclass(frozen=True)
class Requeue:
    seconds: float
    why: str  # paced | throttled | provider_down


def deliver(request: SendRequest, *, send: Callable[..., dict[str, Any]], callbacks: Callbacks,
            ledger: Any, providers_per_channel: int, wait: Callable[[float], bool] | None = None
            ) -> Requeue | dict[str, Any]:
    """Send one queued notice and answer its execution, or say how long to put it back for.

    `wait(seconds)` lets the consumer wait for its next send token in place (True: it waited) rather than put the
    message back: a paced consumer then pulls messages only as fast as it sends them, so a backlog of N costs about
    N/10 receives instead of one per message per second of backlog.
    """
    token = request.task_token
    assert token, "an outbox message always carries the waiting execution's token"
    budget = OUTAGE_TRIES_PER_PROVIDER * max(1, providers_per_channel)
    while True:
        try:
            result = send(request, request.channel, outage_budget=budget, pause=wait)
            break
        except PaceWait as paced:
            if wait is None or not wait(paced.seconds):
                return Requeue(paced.seconds, "paced")
        except (ProviderThrottled, TransientChannelError, *_TOLD) as err:
            return _settle_failure(err, request, token, callbacks, ledger, budget, providers_per_channel)
    return _settle_sent(result, request, token, callbacks)


def _settle_failure(err: Exception, request: SendRequest, token: str, callbacks: Callbacks, ledger: Any,
                    budget: int, providers_per_channel: int) -> Requeue | dict[str, Any]:
    if isinstance(err, ProviderThrottled):
        return Requeue(THROTTLE_BACKOFF_S, "throttled")
    if isinstance(err, TransientChannelError):
        tries = outage_tries(ledger.get(request.notification_id) or {}, request.channel)
        if tries < budget and err.reason != "outage_budget_spent":
            step = min(tries // max(1, providers_per_channel), len(OUTAGE_BACKOFF_S) - 1)
            return Requeue(float(OUTAGE_BACKOFF_S[step]), "provider_down")
        callbacks.failure(token, "TransientChannelError", err.reason)
        return {"told": "TransientChannelError"}
    if isinstance(err, _TOLD):
        callbacks.failure(token, type(err).__name__, f"{err.reason}: {err}"[:250])
        return {"told": type(err).__name__}
    raise err  # unexpected: the message returns by its visibility timeout and the send is retried safely


# Failures the execution is told about, by class name (its Catch routes them).
_TOLD = (PermanentChannelError, SendOutcomeUnknown, NoticeSuperseded, NoticeAlreadySettled, SendWindowClosed,
         BorrowerNotFound)  # the borrower's row vanished or broke after Prepare: a person, now, not after retries


def _settle_sent(result: dict[str, Any], request: SendRequest, token: str, callbacks: Callbacks) -> dict[str, Any]:
    if not result["confirms"]:
        # No receipt will ever come from this provider: a critical notice moves on, another one ends unconfirmed.
        error = "UnconfirmableChannel" if POLICIES[request.status].critical else "SentUnconfirmed"
        callbacks.failure(token, error, f"{result['provider']} cannot confirm delivery")
        return {"told": error, **result}
    callbacks.success(token, {k: result[k] for k in ("message_id", "channel", "provider", "attempt")})
    return {"told": "sent", **result}
