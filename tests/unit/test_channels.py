"""Channel adapters against real botocore clients with stubbed responses (botocore's Stubber: no network)."""


import boto3
import pytest
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from loan_notify.channels import SesEmail, SmsVoiceSms, destination_country_parameters, normalise_phone
from loan_notify.errors import PermanentChannelError, ProviderThrottled, SendOutcomeUnknown, TransientChannelError
from loan_notify.templates import mime, render
from loan_notify.vocabulary import LoanStatus, Locale

MESSAGE = render(LoanStatus.APPROVED, Locale.EN_US, name="Ada", loan_id="L-1", phone="+14155550123")
SMS = MESSAGE.sms


@pytest.fixture
def sms():
    return boto3.client("pinpoint-sms-voice-v2", region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x")


def sender(client, **kwargs):
    return SmsVoiceSms(client, configuration_set=kwargs.pop("configuration_set", "loan-notify-sms"), **kwargs)


@pytest.fixture
def sesv2():
    return boto3.client("sesv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_sms_is_sent_transactional_through_the_configuration_set_and_protect_configuration(sms):
    with Stubber(sms) as stub:
        stub.add_response("send_text_message", {"MessageId": "m-1"}, {
            "DestinationPhoneNumber": "+14155550123", "MessageBody": SMS.text, "MessageType": "TRANSACTIONAL",
            "ConfigurationSetName": "loan-notify-sms", "ProtectConfigurationId": "protect-1"})
        delivery = sender(sms, protect_configuration_id="protect-1").send("+1 415-555-0123", SMS)
    assert delivery.message_id == "m-1" and delivery.destination == "+14*****0123"
    assert delivery.provider == "sms-voice@us-east-1"


def test_a_sender_without_a_configuration_set_cannot_confirm(sms):
    assert sender(sms).confirms and not sender(sms, configuration_set="").confirms


def test_sms_to_a_country_that_registers_templates_carries_the_template_and_entity_ids(sms):
    # GIVEN an approval for an Indian number: its carriers need the registered template and the sender entity
    india = render(LoanStatus.APPROVED, Locale.EN_US, name="Ada", loan_id="L-1", phone="+919876543210").sms
    assert india.country == "IN" and india.template_id and india.entity_id
    assert destination_country_parameters(SMS) == {}  # the US registers none
    with Stubber(sms) as stub:
        stub.add_response("send_text_message", {"MessageId": "m-2"}, {
            "DestinationPhoneNumber": "+919876543210", "MessageBody": india.text, "MessageType": "TRANSACTIONAL",
            "ConfigurationSetName": "loan-notify-sms",
            "DestinationCountryParameters": {"IN_ENTITY_ID": india.entity_id, "IN_TEMPLATE_ID": india.template_id}})
        # WHEN it is sent THEN both go with it as DestinationCountryParameters (the stub fails on any other call)
        assert sender(sms, served=frozenset({"IN"})).send("+91 98765 43210", india).message_id == "m-2"


@pytest.mark.parametrize("phone", [None, "", "12345", "+1555", "not a phone"])
def test_invalid_numbers_fail_permanently_without_calling_the_provider(sms, phone):
    with Stubber(sms), pytest.raises(PermanentChannelError):  # no response queued: any call would fail the test
        sender(sms).send(phone, SMS)


@pytest.mark.parametrize("code, status, error", [
    ("ThrottlingException", 400, ProviderThrottled),
    ("TooManyRequestsException", 429, ProviderThrottled),
    ("InternalServerException", 500, TransientChannelError),
    ("ValidationException", 400, PermanentChannelError),  # e.g. a country the protect configuration blocks
    ("AccessDeniedException", 403, PermanentChannelError),
])
def test_provider_errors_are_classified(sms, code, status, error):
    with Stubber(sms) as stub:
        stub.add_client_error("send_text_message", service_error_code=code, http_status_code=status)
        with pytest.raises(error) as raised:
            sender(sms).send("+14155550123", SMS)
    assert raised.value.reason == f"provider_{code}"


class _Raising:
    """A provider client whose call fails below the HTTP layer, the way botocore reports it."""

    meta = type("meta", (), {"region_name": "us-east-1"})()

    def __init__(self, error: Exception) -> None:
        self.error = error

    def send_text_message(self, **_kwargs):
        raise self.error


@pytest.mark.parametrize("error, expected", [
    # the request never reached the provider: nothing was sent, the backup may take it
    (EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com"), TransientChannelError),
    (ConnectTimeoutError(endpoint_url="https://sns.us-east-1.amazonaws.com"), TransientChannelError),
    # the request went out and the answer was lost: the provider may have the message; never resend blindly
    (ReadTimeoutError(endpoint_url="https://sns.us-east-1.amazonaws.com"), SendOutcomeUnknown),
    (ConnectionClosedError(endpoint_url="https://sns.us-east-1.amazonaws.com"), SendOutcomeUnknown),
])
def test_a_lost_answer_is_an_unknown_outcome_and_an_unreached_provider_is_an_outage(error, expected):
    with pytest.raises(expected):
        sender(_Raising(error)).send("+14155550123", SMS)


def test_email_goes_through_the_configuration_set_as_raw_mime(sesv2):
    message = render(LoanStatus.DOCUMENTS_REQUIRED, Locale.EN_US, name="Ada", loan_id="L-1",
                     preferences_url="https://app.loan-platform.example/preferences?notice=n-1",
                     unsubscribe_url="https://api.loan-platform.example/unsubscribe?t=token")
    raw = mime(message, sender="notices@example.com", recipient="ada@example.com")
    with Stubber(sesv2) as stub:
        stub.add_response("send_email", {"MessageId": "e-1"}, {
            "FromEmailAddress": "notices@example.com", "Destination": {"ToAddresses": ["ada@example.com"]},
            "Content": {"Raw": {"Data": raw}}, "ConfigurationSetName": "loan-notify"})
        delivery = SesEmail(sesv2, "notices@example.com", "loan-notify").send("ada@example.com", message)
    assert delivery.destination == "a***@example.com"
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw


def test_email_without_sender_or_with_a_bad_address_fails_permanently(sesv2):
    with pytest.raises(PermanentChannelError) as no_sender:
        SesEmail(sesv2, "").send("ada@example.com", MESSAGE)
    assert no_sender.value.reason == "channel_not_configured"
    with pytest.raises(PermanentChannelError) as bad:
        SesEmail(sesv2, "notices@example.com").send("ada@@example", MESSAGE)
    assert bad.value.reason == "invalid_email"


def test_normalise_phone_formats_e164():
    assert normalise_phone("+86 138 0013 8000") == "+8613800138000"
