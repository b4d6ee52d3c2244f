"""Provider simulator: what End User Messaging SMS, SNS SMS and SES do after a send, and knobs to make them misbehave.

Faults are raised inside the providers' backends (moto's SNS and SES, `localcloud.smsvoice` for End User
Messaging SMS; see `localcloud.patches`), so handlers see exactly what botocore hands them from the real service:
`InternalServerException` (HTTP 500) or `ThrottlingException` from End User Messaging SMS, SNS `InternalError` or
`Throttled` (SNS SMS: the borrower API's verification codes), SES v2 `InternalServiceErrorException` or
`TooManyRequestsException` (429).

Receipts follow the AWS conventions, so a test means the same against a real sandbox:
- SES mailbox simulator addresses (success@, bounce@, ooto@, complaint@, suppressionlist@
  simulator.amazonses.com, with an optional +label) produce the events SES would publish through the
  configuration set to the email-events SNS topic; any other address is delivered.
- End User Messaging SMS destination simulator numbers (AWS docs, "Simulator phone numbers") succeed or fail
  by number; any other number is delivered. The receipts are End User Messaging SMS events (TEXT_SUCCESSFUL,
  then TEXT_DELIVERED or a failure event), published to the SNS topics of the message's configuration set
  event destinations that match them: a text sent without a configuration set gets none, as in AWS.
- Receipts arrive after a simulated delay (scaled by the cloud's time scale), in a background thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parseaddr
from typing import Any

import phonenumbers
from moto.core.exceptions import ServiceException

# service -> (error code for "down", error code for "throttled"), as the real service names them
_CODES = {
    "sms-voice": ("InternalServerException", "ThrottlingException"),
    "sns": ("InternalError", "Throttled"),
    "ses": ("InternalServiceErrorException", "TooManyRequestsException"),
    "states": ("ServiceUnavailable", "ThrottlingException"),  # StartExecution (the router's call)
}

# (success, failure) destination simulator numbers, from the AWS End User Messaging SMS documentation
SMS_SIMULATOR_NUMBERS = {
    "US": ("+14254147755", "+14254147167"),
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


def _known(service: str) -> None:
    if service not in _CODES:
        raise ValueError(f"unknown provider service {service!r}; one of {sorted(_CODES)} (notices' SMS: 'sms-voice')")


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
        # every call to a rate-limited provider: (simulated second, accepted), for the burst bench's timing figures
        self.paced_calls: dict[tuple[str, str], list[tuple[float, bool]]] = {}
        self.receipts_emitted: list[dict[str, Any]] = []
        # message id -> its configuration set's event destinations: a fact of each sent text, kept across `reset`
        self._sms_routes: dict[str, Callable[[str], list[str]]] = {}
        # set by LocalCloud once the stack exists
        self.publish: Callable[[str, dict[str, Any]], None] | None = None  # (topic ARN, event) -> SNS publish
        self.email_event_topics: dict[str, str] = {}  # region -> the topic its SES configuration set publishes to

    # ------------------------------------------------------------ knobs
    def down(self, service: str, region: str, times: int | None = None) -> None:
        """Every call to `service` in `region` fails with a 5xx (for `times` calls, or until `reset`)."""
        self._set(service, region, _Fault("down", times))

    def rate_limit(self, service: str, region: str, per_second: float, burst: float | None = None) -> None:
        """The provider's real quota: a token bucket in simulated seconds (the local cloud's time scale). A call
        with no token left is throttled, as the real service answers past its sending rate."""
        _known(service)
        with self._lock:
            self._buckets[(service, region)] = _Bucket(per_second, burst if burst is not None else per_second)

    def throttle(self, service: str, region: str, times: int | None = 1) -> None:
        self._set(service, region, _Fault("throttle", times))

    def silence(self, service: str, region: str) -> None:
        """Sends succeed but no receipt ever comes (until `reset`)."""
        _known(service)
        with self._lock:
            self._silent.add((service, region))

    def lose_answer(self, service: str, region: str, times: int = 1) -> None:
        """The provider accepts the next `times` messages, but the caller's connection times out before the
        answer arrives (botocore ReadTimeoutError): the message goes out and the sender cannot know it."""
        _known(service)
        with self._lock:
            self._answers_lost[(service, region)] = times

    def receipt_first(self, service: str, region: str) -> None:
        """Receipts are delivered inside the provider call, before the sender has the message id (until `reset`):
        the race where a receipt beats the send's own record."""
        _known(service)
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

    def sms_outcome(self, phone: str, event_type: str, description: str) -> None:
        """Force the final End User Messaging SMS event for one number (e.g. TEXT_BLOCKED, 'Phone has opted out')."""
        with self._lock:
            self._sms_outcomes[phone] = (event_type, description)

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
        _known(service)
        with self._lock:
            self._faults[(service, region)] = fault

    # ------------------------------------------------------------ called by the patched backends
    def check(self, service: str, region: str) -> None:
        with self._lock:
            self.calls[(service, region)] = self.calls.get((service, region), 0) + 1
            bucket = self._buckets.get((service, region))
            now = simulated_now() if bucket is not None else 0.0
            if bucket is not None and not bucket.take(now):
                self.throttled[(service, region)] = self.throttled.get((service, region), 0) + 1
                self.paced_calls.setdefault((service, region), []).append((now, False))
                fault: _Fault | None = _Fault("throttle", None)
            else:
                if bucket is not None:
                    self.paced_calls.setdefault((service, region), []).append((now, True))
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
        """An SNS SMS (the borrower API's verification codes): sent, and no receipt (the stack subscribes to none)."""
        with self._lock:
            self.sent_at.setdefault(phone, simulated_now())

    def text_sent(self, region: str, message_id: str, phone: str, topics_for: Callable[[str], list[str]]) -> None:
        """End User Messaging SMS accepted a text: its events go to the configuration set's matching destinations."""
        with self._lock:
            self.sent_at.setdefault(phone, simulated_now())
            self._sms_routes[message_id] = topics_for
            if ("sms-voice", region) in self._silent or self.publish is None:
                return
            event_type, description = self._sms_outcomes.get(phone) or (
                ("TEXT_CARRIER_UNREACHABLE", "Unknown error attempting to reach phone")
                if phone in _SMS_FAILURE_NUMBERS else ("TEXT_DELIVERED", "Message has been accepted by phone"))
            first = ("sms-voice", region) in self._receipt_first
        events = [self.sms_event(message_id, phone, "TEXT_SUCCESSFUL", "Message has been accepted by phone carrier",
                                 final=False),
                  self.sms_event(message_id, phone, event_type, description)]
        for n, event in enumerate(events, start=1):
            if first:
                self.deliver_sms_receipt(event)
            else:
                self._later(SMS_RECEIPT_DELAY_S * n / 2, self.deliver_sms_receipt, event,
                            {"kind": "sms", "status": event["eventType"], "message_id": message_id})

    def deliver_sms_receipt(self, event: dict[str, Any]) -> None:
        """Publish an End User Messaging SMS event to the destinations its message's configuration set has for it."""
        with self._lock:
            topics_for = self._sms_routes.get(event["messageId"])
        if topics_for is None or self.publish is None:
            return
        for topic in topics_for(event["eventType"]):
            self.publish(topic, event)

    @staticmethod
    def sms_event(message_id: str, phone: str, event_type: str, description: str, final: bool = True
                  ) -> dict[str, Any]:
        """An End User Messaging SMS event, as its SNS event destination publishes it."""
        now_ms = int(time.time() * 1000)
        status = event_type.removeprefix("TEXT_")
        try:
            country = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None)) or ""
        except phonenumbers.NumberParseException:
            country = ""
        return {"eventType": event_type, "eventVersion": "1.0", "eventTimestamp": now_ms, "isFinal": final,
                "originationPhoneNumber": "+18005550100", "destinationPhoneNumber": phone,
                "isoCountryCode": country, "messageId": message_id, "messageRequestTimestamp": now_ms,
                "messageEncoding": "GSM", "messageType": "TRANSACTIONAL", "messageStatus": status,
                "messageStatusDescription": description, "totalMessageParts": 1, "totalMessagePrice": 0.00581,
                "totalCarrierFee": 0.0}

    def email_sent(self, region: str, message: Any) -> None:
        with self._lock:
            topic = self.email_event_topics.get(region)  # a region with no configuration set publishes nothing
            if ("ses", region) in self._silent or self.publish is None or topic is None:
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
        publish = self.publish
        for n, event in enumerate(events, start=1):
            self._later(EMAIL_RECEIPT_DELAY_S * n, lambda e, t=topic: publish(t, e), event,
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
