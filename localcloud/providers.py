"""Provider simulator: what SNS SMS and SES do after a send, and knobs to make them misbehave.

Faults are raised inside moto's own SNS and SES backends (see `localcloud.patches`), so handlers see exactly
what botocore hands them from the real service: SNS `InternalError` (HTTP 500) or `Throttled`, SES v2
`InternalServiceErrorException` or `TooManyRequestsException` (429).

Receipts follow the AWS conventions, so a test means the same against a real sandbox:
- SES mailbox simulator addresses (success@, bounce@, ooto@, complaint@, suppressionlist@
  simulator.amazonses.com, with an optional +label) produce the events SES would publish through the
  configuration set to the email-events SNS topic; any other address is delivered.
- End User Messaging SMS destination simulator numbers (AWS docs, "Simulator phone numbers") succeed or fail
  by number; any other number is delivered. The receipt is an SNS SMS delivery-status record, handed to the
  receipts function in the shape a CloudWatch Logs subscription delivers it.
- Receipts arrive after a simulated delay (scaled by the cloud's time scale), in a background thread.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parseaddr
from typing import Any

from moto.core.exceptions import ServiceException

# service -> (error code for "down", error code for "throttled"), as the real service names them
_CODES = {
    "sns": ("InternalError", "Throttled"),
    "ses": ("InternalServiceErrorException", "TooManyRequestsException"),
    "states": ("ServiceUnavailable", "ThrottlingException"),  # StartExecution (the router's call)
}

# (success, failure) destination simulator numbers, from the AWS End User Messaging SMS documentation
SMS_SIMULATOR_NUMBERS = {
    "AU": ("+61455944038", "+61455944039"),
    "AT": ("+43676800442031", "+43676800442032"),
    "BE": ("+32460213922", "+32460213923"),
    "CL": ("+56229140630", "+56229140631"),
    "CZ": ("+420790542286", "+420790542287"),
    "DK": ("+4525919410", "+4525919215"),
    "EE": ("+37282720792", "+37282720793"),
    "FI": ("+3584573979110", "+3584573979111"),
    "FR": ("+33755512501", "+33755512502"),
    "HK": ("+85257048426", "+85257048854"),
}
_SMS_FAILURE_NUMBERS = {failure for _, failure in SMS_SIMULATOR_NUMBERS.values()}

SMS_RECEIPT_DELAY_S = 4.0
EMAIL_RECEIPT_DELAY_S = 2.0



def recipients(message: Any) -> list[str]:
    """The To addresses of a message moto's SES kept: a simple send holds a Destination dict, a raw send a list of
    addresses (the call's Destination and the MIME To header, so an address may appear twice)."""
    destinations = message.destinations
    if isinstance(destinations, dict):
        return list(destinations.get("ToAddresses", []))
    return list(dict.fromkeys(parseaddr(d)[1] for d in destinations))

class ProviderDown(ServiceException):
    code = "InternalError"
    message = "The provider is unavailable (local simulator)"


class ProviderThrottled(ServiceException):
    code = "Throttled"
    message = "Rate exceeded (local simulator)"


def simulated_now() -> float:
    """Epoch seconds on the local cloud's time scale: the clock the pacer runs on."""
    from loan_notify import clock

    return clock.epoch_seconds()


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class _Fault:
    mode: str  # "down" | "throttle"
    remaining: int | None  # None: until cleared


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ProviderSimulator:
    def __init__(self, time_scale: float = 0.0) -> None:
        self.time_scale = time_scale
        self._faults: dict[tuple[str, str], _Fault] = {}
        self._silent: set[tuple[str, str]] = set()
        self._answers_lost: dict[tuple[str, str], int] = {}
        self._receipt_first: set[tuple[str, str]] = set()
        self._callbacks_throttled = 0
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.throttled: dict[tuple[str, str], int] = {}
        self.sent_at: dict[str, float] = {}  # phone -> simulated second the provider accepted its first SMS
        self._sms_outcomes: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self.calls: dict[tuple[str, str], int] = {}
        self.receipts_emitted: list[dict[str, Any]] = []
        # set by LocalCloud once the stack exists
        self.deliver_sms_receipt: Callable[[dict[str, Any]], None] | None = None
        self.deliver_email_event: Callable[[dict[str, Any]], None] | None = None
        self.email_events_region: str | None = None

    # ------------------------------------------------------------ knobs
    def down(self, service: str, region: str, times: int | None = None) -> None:
        """Every call to `service` in `region` fails with a 5xx (for `times` calls, or until `reset`)."""
        self._set(service, region, _Fault("down", times))

    def rate_limit(self, service: str, region: str, per_second: float, burst: float | None = None) -> None:
        """The provider's real quota: a token bucket in simulated seconds (the local cloud's time scale). A call
        with no token left is throttled, as the real service answers past its sending rate."""
        with self._lock:
            self._buckets[(service, region)] = _Bucket(per_second, burst if burst is not None else per_second)

    def throttle(self, service: str, region: str, times: int | None = 1) -> None:
        self._set(service, region, _Fault("throttle", times))

    def silence(self, service: str, region: str) -> None:
        """Sends succeed but no receipt ever comes (until `reset`)."""
        with self._lock:
            self._silent.add((service, region))

    def lose_answer(self, service: str, region: str, times: int = 1) -> None:
        """The provider accepts the next `times` messages, but the caller's connection times out before the
        answer arrives (botocore ReadTimeoutError): the message goes out and the sender cannot know it."""
        with self._lock:
            self._answers_lost[(service, region)] = times

    def receipt_first(self, service: str, region: str) -> None:
        """Receipts are delivered inside the provider call, before the sender has the message id (until `reset`):
        the race where a receipt beats the send's own record."""
        with self._lock:
            self._receipt_first.add((service, region))

    def throttle_callbacks(self, times: int = 1) -> None:
        """The next `times` SendTaskSuccess/SendTaskFailure calls fail with ThrottlingException (as Step Functions
        answers when its API rate is exceeded)."""
        with self._lock:
            self._callbacks_throttled = times

    def callback(self) -> None:
        with self._lock:
            if self._callbacks_throttled <= 0:
                return
            self._callbacks_throttled -= 1
        raise ProviderThrottled("ThrottlingException", "Rate exceeded (local simulator)")

    def accepted(self, service: str, region: str) -> None:
        with self._lock:
            left = self._answers_lost.get((service, region), 0)
            if left <= 0:
                return
            self._answers_lost[(service, region)] = left - 1
        from botocore.exceptions import ReadTimeoutError

        raise ReadTimeoutError(endpoint_url=f"https://{service}.{region}.amazonaws.com/")

    def sms_outcome(self, phone: str, status: str, provider_response: str) -> None:
        """Force the delivery-status record for one number (e.g. FAILURE, 'Phone has opted out')."""
        with self._lock:
            self._sms_outcomes[phone] = (status, provider_response)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._silent.clear()
            self._answers_lost.clear()
            self._receipt_first.clear()
            self._callbacks_throttled = 0
            self._buckets.clear()
            self._sms_outcomes.clear()

    def _set(self, service: str, region: str, fault: _Fault) -> None:
        if service not in _CODES:
            raise ValueError(f"unknown provider service {service!r}; one of {sorted(_CODES)}")
        with self._lock:
            self._faults[(service, region)] = fault

    # ------------------------------------------------------------ called by the patched backends
    def check(self, service: str, region: str) -> None:
        with self._lock:
            self.calls[(service, region)] = self.calls.get((service, region), 0) + 1
            bucket = self._buckets.get((service, region))
            if bucket is not None and not bucket.take(simulated_now()):
                self.throttled[(service, region)] = self.throttled.get((service, region), 0) + 1
                fault: _Fault | None = _Fault("throttle", None)
            else:
                fault = self._faults.get((service, region))
            if fault is None:
                return
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[(service, region)]
        down_code, throttle_code = _CODES[service]
        if fault.mode == "down":
            raise ProviderDown(down_code, f"{service} in {region} is unavailable (local simulator)")
        raise ProviderThrottled(throttle_code, f"{service} in {region}: rate exceeded (local simulator)")

    def sms_sent(self, region: str, message_id: str, phone: str) -> None:
        with self._lock:
            self.sent_at.setdefault(phone, simulated_now())
            if ("sns", region) in self._silent or self.deliver_sms_receipt is None:
                return
            status, response = self._sms_outcomes.get(phone) or (
                ("FAILURE", "Unknown error attempting to reach phone") if phone in _SMS_FAILURE_NUMBERS
                else ("SUCCESS", "Message has been accepted by phone carrier"))
        event = self.sms_status_event(region, message_id, phone, status, response)
        if ("sns", region) in self._receipt_first:
            self.deliver_sms_receipt(event)
            return
        self._later(SMS_RECEIPT_DELAY_S, self.deliver_sms_receipt, event, {"kind": "sms", "status": status,
                                                                            "message_id": message_id})

    @staticmethod
    def sms_status_event(region: str, message_id: str, phone: str, status: str, response: str) -> dict[str, Any]:
        """An SNS SMS delivery-status record, as a CloudWatch Logs subscription hands it to Lambda."""
        record = {
            "notification": {"messageId": message_id, "timestamp": _now()},
            "delivery": {"numberOfMessageParts": 1, "destination": phone, "smsType": "Transactional",
                         "providerResponse": response, "dwellTimeMs": 250, "priceInUSD": 0.00645},
            "status": status,
        }
        log_group = f"sns/{region}/123456789012/DirectPublishToPhoneNumber" + ("" if status == "SUCCESS"
                                                                              else "/Failure")
        return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps({
            "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": log_group,
            "logStream": str(uuid.uuid4()), "subscriptionFilters": ["loan-notify-sms-status"],
            "logEvents": [{"id": str(uuid.uuid4().int)[:56], "timestamp": int(time.time() * 1000),
                           "message": json.dumps(record)}]}).encode())).decode()}}

    def email_sent(self, region: str, message: Any) -> None:
        with self._lock:
            if (("ses", region) in self._silent or self.deliver_email_event is None
                    or region != self.email_events_region):  # only the configuration set's region publishes
                return
        address = recipients(message)[0] if recipients(message) else ""
        local, _, domain = address.partition("@")
        scenario = local.split("+")[0] if domain == "simulator.amazonses.com" else "success"
        mail = {"timestamp": _now(), "messageId": message.id, "source": message.source, "destination": [address]}
        events: list[dict[str, Any]] = []
        if scenario in ("bounce", "suppressionlist"):
            sub_type = "OnAccountSuppressionList" if scenario == "suppressionlist" else "General"
            events.append({"eventType": "Bounce", "mail": mail, "bounce": {
                "bounceType": "Permanent", "bounceSubType": sub_type, "timestamp": _now(),
                "bouncedRecipients": [{"emailAddress": address, "action": "failed", "status": "5.1.1"}]}})
        else:  # success, ooto (delivered, then an auto-reply), complaint (delivered, then a complaint)
            events.append({"eventType": "Delivery", "mail": mail, "delivery": {
                "timestamp": _now(), "recipients": [address], "processingTimeMillis": 420,
                "smtpResponse": "250 2.6.0 Message received"}})
            if scenario == "complaint":
                events.append({"eventType": "Complaint", "mail": mail, "complaint": {
                    "timestamp": _now(), "complainedRecipients": [{"emailAddress": address}],
                    "complaintFeedbackType": "abuse"}})
        for n, event in enumerate(events, start=1):
            self._later(EMAIL_RECEIPT_DELAY_S * n, self.deliver_email_event, event,
                        {"kind": "email", "status": event["eventType"], "message_id": message.id})

    # ------------------------------------------------------------ delivery of receipts
    def _later(self, delay_s: float, deliver: Callable[[dict[str, Any]], None] | None, event: dict[str, Any],
               summary: dict[str, Any]) -> None:
        if deliver is None:
            return
        with self._lock:
            self._pending += 1

        def run() -> None:
            try:
                if self.time_scale:
                    time.sleep(delay_s * self.time_scale)
                deliver(event)
                self.receipts_emitted.append(summary)
            finally:
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

        threading.Thread(target=run, name="provider-receipt", daemon=True).start()

    def wait_idle(self, timeout: float) -> bool:
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    @property
    def pending(self) -> int:
        return self._pending
