"""Channel adapters: SMS through AWS End User Messaging SMS, email through SES v2 (raw MIME, for the
List-Unsubscribe headers), push through SNS platform endpoints, the in-app inbox. Provider errors become our error
classes."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from loan_notify.clock import iso, utc_now
from loan_notify.errors import PermanentChannelError, ProviderThrottled, SendOutcomeUnknown, TransientChannelError
from loan_notify.masking import mask_email, mask_endpoint, mask_phone
from loan_notify.reach import SERVED_COUNTRIES_DEFAULT, sms_destination
from loan_notify.templates import RenderedMessage, SmsMessage, mime

# The provider refused for rate: nothing was sent; wait and try the same provider again.
_THROTTLE_CODES = {
    "Throttling", "Throttled", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "LimitExceededException", "KMSThrottling", "RequestLimitExceeded",
}
# The provider is down: nothing was sent; the backup provider may take it at once.
_OUTAGE_CODES = {
    "InternalError", "InternalFailure", "InternalServiceErrorException", "ServiceUnavailable",
    "ServiceUnavailableException", "RequestTimeout", "InternalServerException",
}

# Refusals of the destination itself (not of the request): recorded under their own reason.
_REFUSED_DESTINATIONS = {
    "DESTINATION_COUNTRY_BLOCKED": "country_not_served",  # the protect configuration blocks that country
    "DESTINATION_PHONE_NUMBER_OPTED_OUT": "opted_out",
}


@dataclass(frozen=True)
class Delivery:
    provider: str
    message_id: str
    destination: str  # masked


def _classify(err: Exception, provider: str) -> Exception:
    """Three kinds of "not now", kept apart: a throttle (wait), an outage before anything was accepted (fail over),
    and a result nobody knows (the request went out and no answer came back: never resend blindly)."""
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "Unknown")
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _THROTTLE_CODES or status == 429:
            return ProviderThrottled(f"{provider}: {code}", reason=f"provider_{code}")
        if code in _OUTAGE_CODES or status >= 500:
            return TransientChannelError(f"{provider}: {code}", reason=f"provider_{code}")
        if err.response.get("Reason") in _REFUSED_DESTINATIONS:  # End User Messaging SMS says why, in a field
            return PermanentChannelError(f"{provider}: {code} {err.response['Reason']}",
                                         reason=_REFUSED_DESTINATIONS[err.response["Reason"]])
        return PermanentChannelError(f"{provider}: {code}", reason=f"provider_{code}")
    if isinstance(err, (EndpointConnectionError, ConnectTimeoutError)):  # never reached the provider
        return TransientChannelError(f"{provider}: {type(err).__name__}", reason="provider_unreachable")
    if isinstance(err, (ReadTimeoutError, ConnectionClosedError)):  # sent; the answer was lost
        return SendOutcomeUnknown(f"{provider}: {type(err).__name__}", reason="provider_answer_lost")
    if isinstance(err, BotoCoreError):
        return SendOutcomeUnknown(f"{provider}: {type(err).__name__}", reason="provider_answer_lost")
    return err


def normalise_phone(phone: str | None) -> str:
    """E.164 or a PermanentChannelError: an invalid number can never be delivered to."""
    if not phone:
        raise PermanentChannelError("no phone number on file", reason="no_contact")
    # Imported on the first number, not at import: a cold start pays for it only when it sends an SMS.
    import phonenumbers

    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException as err:
        raise PermanentChannelError("phone number cannot be parsed", reason="invalid_phone") from err
    if not phonenumbers.is_valid_number(parsed):
        raise PermanentChannelError("phone number is not a valid number", reason="invalid_phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(email: str | None) -> str:
    if not email:
        raise PermanentChannelError("no email address on file", reason="no_contact")
    # Imported on the first email, not at import: a consumer that only sends SMS never loads it (cold start).
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as err:
        raise PermanentChannelError("email address is not valid", reason="invalid_email") from err


# Provider calls make one try each: retries are explicit in the state machine (visible in the execution
# history), and an unhealthy provider fails over to the next one at once instead of sleeping in the SDK.
PROVIDER_CLIENT_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=3,
                                read_timeout=5)


def _region(client: Any) -> str:
    return getattr(getattr(client, "meta", None), "region_name", "") or "default"


# Country registration ids a rendered SMS may carry (India's DLT registration: the principal entity and the
# registered template, from carriers.yaml), mapped to SendTextMessage's DestinationCountryParameters. SmsMessage
# fields by name: a message without them (no registration needed for the countries served) sends none.
REGISTRATION_PARAMETERS = {"IN_ENTITY_ID": "entity_id", "IN_TEMPLATE_ID": "template_id"}


def destination_country_parameters(message: Any) -> dict[str, str]:
    """DestinationCountryParameters for a rendered SMS: each registration id it carries, under its API key."""
    return {key: str(value) for key, field_name in REGISTRATION_PARAMETERS.items()
            if (value := getattr(message, field_name, None))}


class SmsVoiceSms:
    """SMS through AWS End User Messaging SMS (pinpoint-sms-voice-v2 SendTextMessage).

    The configuration set's event destination publishes every delivery event to an SNS topic the receipts
    function subscribes to: each SMS gets a receipt. The protect configuration allows only the countries served;
    a number elsewhere is refused by the provider (ValidationException DESTINATION_COUNTRY_BLOCKED: permanent).
    """

    def __init__(self, client: Any, *, configuration_set: str, protect_configuration_id: str = "",
                 origination_identity: str = "", served: frozenset[str] = SERVED_COUNTRIES_DEFAULT) -> None:
        self._client = client
        self._served = served  # countries served: a number elsewhere is a bad contact (loan_notify.reach)
        self._configuration_set = configuration_set
        self._protect_configuration_id = protect_configuration_id
        self._origination_identity = origination_identity
        self.provider = f"sms-voice@{_region(client)}"
        self.confirms = bool(configuration_set)  # its event destination is the receipt

    def send(self, phone: str | None, message: SmsMessage) -> Delivery:
        number = sms_destination(phone, self._served)
        kwargs: dict[str, Any] = {"DestinationPhoneNumber": number, "MessageBody": message.text,
                                  "MessageType": "TRANSACTIONAL"}
        if self._configuration_set:
            kwargs["ConfigurationSetName"] = self._configuration_set
        if self._protect_configuration_id:
            kwargs["ProtectConfigurationId"] = self._protect_configuration_id
        if self._origination_identity:
            kwargs["OriginationIdentity"] = self._origination_identity
        if parameters := destination_country_parameters(message):
            kwargs["DestinationCountryParameters"] = parameters
        try:
            response = self._client.send_text_message(**kwargs)
        except Exception as err:  # classified, then re-raised
            raise _classify(err, self.provider) from err
        return Delivery(self.provider, response["MessageId"], mask_phone(number))


class SesEmail:
    def __init__(self, client: Any, from_address: str, configuration_set: str = "") -> None:
        self._client = client
        self._from = from_address
        self._configuration_set = configuration_set
        self.provider = f"ses-v2@{_region(client)}"
        self.confirms = bool(configuration_set)  # SES events are published through the configuration set

    def send(self, email: str | None, message: RenderedMessage) -> Delivery:
        if not self._from:
            raise PermanentChannelError("no sender address configured", reason="channel_not_configured")
        address = normalise_email(email)
        # Raw content: SES v2's simple content cannot carry List-Unsubscribe / List-Unsubscribe-Post.
        kwargs: dict[str, Any] = {
            "FromEmailAddress": self._from,
            "Destination": {"ToAddresses": [address]},
            "Content": {"Raw": {"Data": mime(message, sender=self._from, recipient=address)}},
        }
        if self._configuration_set:
            kwargs["ConfigurationSetName"] = self._configuration_set
        try:
            response = self._client.send_email(**kwargs)
        except Exception as err:
            raise _classify(err, self.provider) from err
        return Delivery(self.provider, response["MessageId"], mask_email(address))


class SnsPush:
    """Mobile push through the SNS platform endpoint the app registered. Confirmed by the app's read."""

    confirms = True

    def __init__(self, client: Any) -> None:
        self._client = client
        self.provider = f"sns-push@{_region(client)}"

    def send(self, endpoint_arn: str | None, message: RenderedMessage) -> Delivery:
        if not endpoint_arn:
            raise PermanentChannelError("no push endpoint registered", reason="no_contact")
        # The lock screen shows it: the short text, without the status reason.
        alert = {"title": message.subject, "body": message.push_text}
        payload = {"default": message.push_text,
                   "GCM": json.dumps({"notification": alert, "data": {"template_id": message.template_id}}),
                   "APNS": json.dumps({"aps": {"alert": alert}, "template_id": message.template_id})}
        try:
            response = self._client.publish(TargetArn=endpoint_arn, Message=json.dumps(payload),
                                            MessageStructure="json")
        except Exception as err:
            classified = _classify(err, self.provider)
            if isinstance(classified, PermanentChannelError) and "EndpointDisabled" in str(err):
                classified = PermanentChannelError(str(err), reason="endpoint_disabled")
            raise classified from err
        return Delivery(self.provider, response["MessageId"], mask_endpoint(endpoint_arn))


class AppInbox:
    """The in-app message center: one item per notice the app shows. Confirmed when the borrower reads it."""

    provider = "app-inbox"
    confirms = True

    def __init__(self, table: Any, clock: Any = None) -> None:
        self._table = table
        self._clock = clock

    def send(self, borrower_id: str | None, message: RenderedMessage) -> Delivery:
        if not borrower_id:
            raise PermanentChannelError("the borrower does not use the app", reason="no_contact")
        message_id = f"inbox-{uuid.uuid4().hex}"
        try:
            self._table.put_item(Item={
                "message_id": message_id, "borrower_id": borrower_id, "created_at": iso((self._clock or utc_now)()),
                "locale": message.locale.value, "subject": message.subject, "text": message.text,
                "template_id": message.template_id, "template_version": message.template_version, "read_at": None})
        except Exception as err:
            raise _classify(err, self.provider) from err
        return Delivery(self.provider, message_id, "in-app")
