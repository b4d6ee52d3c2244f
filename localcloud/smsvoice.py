"""AWS End User Messaging SMS (pinpoint-sms-voice-v2) for the local cloud: the few calls the stack uses.

moto has no model of this service, so its requests never reach moto: a botocore `before-send` handler answers
them in process (registered on every botocore session by `localcloud.patches`), in the service's own JSON
protocol, so the handler's client parses answers and errors exactly as it would from AWS. Modelled:

- the CloudFormation resources `AWS::SMSVOICE::ConfigurationSet` (event destinations, protect configuration) and
  `AWS::SMSVOICE::ProtectConfiguration` (country rule set), created through `localcloud.cfn_models`;
- `SendTextMessage`: configuration set and protect configuration looked up (ResourceNotFoundException when
  missing), the destination's country checked against the effective protect configuration (the request's, else
  the configuration set's; ValidationException DESTINATION_COUNTRY_BLOCKED when its rule is BLOCK), the provider
  simulator's faults and rate asked first, and the delivery events published to every enabled SNS event
  destination of the configuration set whose matching event types include them (no configuration set: no
  events, as in AWS).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import phonenumbers
from botocore.awsrequest import AWSResponse

SERVICE = "sms-voice"
SERVICE_NAME = "pinpoint-sms-voice-v2"  # botocore's name for it
EVENT_NAME = "before-send.pinpoint-sms-voice-v2"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/sms-voice/")


@dataclass
class ConfigurationSet:
    name: str
    arn: str
    event_destinations: list[dict[str, Any]] = field(default_factory=list)
    protect_configuration_id: str = ""

    def topics_for(self, event_type: str) -> list[str]:
        """SNS topics of the enabled destinations that match this event type (ALL, TEXT_ALL or the type)."""
        return [d["SnsDestination"]["TopicArn"] for d in self.event_destinations
                if d.get("Enabled", True) and d.get("SnsDestination")
                and {"ALL", "TEXT_ALL", event_type} & set(d.get("MatchingEventTypes", []))]


@dataclass
class ProtectConfiguration:
    protect_configuration_id: str
    arn: str
    sms_rules: dict[str, str]  # ISO alpha-2 -> ALLOW | BLOCK | MONITOR | FILTER

    def allows(self, country: str) -> bool:
        return self.sms_rules.get(country, "ALLOW") != "BLOCK"


@dataclass
class SentText:
    message_id: str
    region: str
    phone: str
    text: str
    configuration_set: str
    protect_configuration_id: str
    country: str
    parameters: dict[str, str]


class SmsHooks(Protocol):
    def check(self, service: str, region: str) -> None: ...

    def accepted(self, service: str, region: str) -> None: ...

    def text_sent(self, region: str, message_id: str, phone: str, topics_for: Any) -> None: ...


class SmsVoiceError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, reason: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.reason = code, message, status, reason


class SmsVoiceBackend:
    """Every region's configuration sets, protect configurations and sent texts (one account: the local one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.configuration_sets: dict[tuple[str, str], ConfigurationSet] = {}
        self.protect_configurations: dict[tuple[str, str], ProtectConfiguration] = {}
        self.sent: list[SentText] = []
        self.hooks: SmsHooks | None = None

    def reset(self) -> None:
        with self._lock:
            self.configuration_sets.clear()
            self.protect_configurations.clear()
            self.sent.clear()
        self.hooks = None

    # ------------------------------------------------------------ resources (from CloudFormation)
    def create_configuration_set(self, account: str, region: str, name: str, event_destinations: list[dict[str, Any]],
                                 protect_configuration_id: str = "") -> ConfigurationSet:
        arn = f"arn:aws:sms-voice:{region}:{account}:configuration-set/{name}"
        created = ConfigurationSet(name, arn, list(event_destinations), protect_configuration_id)
        with self._lock:
            self.configuration_sets[(region, name)] = created
        return created

    def create_protect_configuration(self, account: str, region: str, sms_rules: list[dict[str, str]]
                                     ) -> ProtectConfiguration:
        pc_id = f"protect-{uuid.uuid4().hex}"
        created = ProtectConfiguration(pc_id, f"arn:aws:sms-voice:{region}:{account}:protect-configuration/{pc_id}",
                                       {r["CountryCode"]: r["ProtectStatus"] for r in sms_rules})
        with self._lock:
            self.protect_configurations[(region, pc_id)] = created
        return created

    # ------------------------------------------------------------ the API
    def _configuration_set(self, region: str, name_or_arn: str) -> ConfigurationSet:
        name = name_or_arn.rsplit("/", 1)[-1]
        found = self.configuration_sets.get((region, name))
        if found is None:
            raise SmsVoiceError("ResourceNotFoundException", f"configuration set {name} does not exist in {region}")
        return found

    def _protect_configuration(self, region: str, pc_id: str) -> ProtectConfiguration:
        found = self.protect_configurations.get((region, pc_id.rsplit("/", 1)[-1]))
        if found is None:
            raise SmsVoiceError("ResourceNotFoundException", f"protect configuration {pc_id} does not exist")
        return found

    def send_text_message(self, region: str, body: dict[str, Any]) -> dict[str, Any]:
        phone = body.get("DestinationPhoneNumber") or ""
        try:
            country = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None)) or ""
        except phonenumbers.NumberParseException as err:
            raise SmsVoiceError("ValidationException", "DestinationPhoneNumber is not E.164",
                                reason="INVALID_PARAMETER") from err
        configuration_set = (self._configuration_set(region, body["ConfigurationSetName"])
                             if body.get("ConfigurationSetName") else None)
        pc_id = body.get("ProtectConfigurationId") or (configuration_set.protect_configuration_id
                                                       if configuration_set else "")
        if pc_id and not self._protect_configuration(region, pc_id).allows(country):
            raise SmsVoiceError("ValidationException", f"destination country {country} is blocked by the protect "
                                "configuration", reason="DESTINATION_COUNTRY_BLOCKED")
        if self.hooks is not None:
            self.hooks.check(SERVICE, region)  # faults and the provider's rate, as the simulator sets them
        message_id = str(uuid.uuid4())
        with self._lock:
            self.sent.append(SentText(message_id, region, phone, body.get("MessageBody", ""),
                                      configuration_set.name if configuration_set else "", pc_id, country,
                                      dict(body.get("DestinationCountryParameters") or {})))
        if self.hooks is not None:
            self.hooks.text_sent(region, message_id, phone,
                                 configuration_set.topics_for if configuration_set else (lambda _event_type: []))
            self.hooks.accepted(SERVICE, region)
        return {"MessageId": message_id}

    def dispatch(self, region: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        if operation == "SendTextMessage":
            return self.send_text_message(region, body)
        raise SmsVoiceError("UnknownOperationException",
                            f"{operation} is not modelled by the local cloud (localcloud/smsvoice.py)")


backend = SmsVoiceBackend()


class Raw:
    """The body stream botocore reads an in-process answer from (also `localcloud.fastlane`'s)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_kwargs: Any) -> Any:
        yield self._body


def _response(url: str, status: int, payload: dict[str, Any]) -> AWSResponse:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": str(uuid.uuid4())}
    return AWSResponse(url, status, headers, Raw(body))


def respond(store: SmsVoiceBackend, url: str, region: str, operation: str, raw: bytes | str | None) -> AWSResponse:
    """The service's answer to one request (its JSON body), as AWS would write it: a result or an error."""
    body = json.loads((raw.decode() if isinstance(raw, bytes) else raw) or "{}")
    try:
        return _response(url, 200, store.dispatch(region, operation, body))
    except SmsVoiceError as err:
        payload = {"__type": err.code, "message": err.message}
        if err.reason:
            payload["Reason"] = err.reason
        return _response(url, err.status, payload)
    except Exception as err:  # the simulator's faults: moto ServiceExceptions carrying the service's error code
        code = getattr(err, "code", None)
        if not code:
            raise
        status = 500 if code == "InternalServerException" else 400
        return _response(url, status, {"__type": code, "message": getattr(err, "message", str(err))})


def answering(store: SmsVoiceBackend) -> Any:
    """A before-send handler answering pinpoint-sms-voice-v2 requests from `store`, as the service would. The
    local cloud's own clients are answered earlier, at before-call (`localcloud.fastlane`), from the same
    `respond`; this one answers a request that got past it (a client whose calls skip that lane)."""

    def answer(request: Any, **_kwargs: Any) -> AWSResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        target = headers.get("x-amz-target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        authorization = headers.get("authorization", b"")
        scope = _SCOPE.search(authorization.decode() if isinstance(authorization, bytes) else authorization)
        host_region = re.match(r"https?://sms-voice\.([a-z0-9-]+)\.", request.url)
        region = scope.group(1) if scope else (host_region.group(1) if host_region else "us-east-1")
        return respond(store, request.url, region, operation, request.body)

    return answer


answer = answering(backend)  # the local cloud's handler (registered by localcloud.patches)
