"""The local End User Messaging SMS model answers in the service's own protocol: botocore parses its answers and
errors as it would AWS's (no network: the before-send handler answers every request)."""

import boto3
import pytest
from botocore.exceptions import ClientError

from localcloud import smsvoice
from localcloud.smsvoice import EVENT_NAME, SmsVoiceBackend, answering


class Hooks:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[str]]] = []

    def check(self, service, region):
        assert service == "sms-voice"

    def accepted(self, service, region):
        pass

    def text_sent(self, region, message_id, phone, topics_for):
        self.sent.append((region, phone, topics_for("TEXT_DELIVERED") + topics_for("TEXT_SUCCESSFUL")))


@pytest.fixture
def sms():
    backend = SmsVoiceBackend()  # its own: the local cloud's backend may be live in this process
    hooks = backend.hooks = Hooks()
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-west-2")
    client = session.client("pinpoint-sms-voice-v2")
    client.meta.events.unregister(EVENT_NAME, smsvoice.answer)  # a local cloud's, if one runs in this process
    client.meta.events.register(EVENT_NAME, answering(backend))
    protect = backend.create_protect_configuration("123456789012", "us-west-2", [
        {"CountryCode": "US", "ProtectStatus": "ALLOW"}, {"CountryCode": "FR", "ProtectStatus": "BLOCK"}])
    backend.create_configuration_set("123456789012", "us-west-2", "notices", [
        {"EventDestinationName": "receipts", "Enabled": True, "MatchingEventTypes": ["TEXT_DELIVERED"],
         "SnsDestination": {"TopicArn": "arn:aws:sns:us-west-2:123456789012:receipts"}}],
        protect.protect_configuration_id)
    return client, hooks, backend


def test_a_text_through_a_configuration_set_is_routed_to_its_matching_destinations(sms):
    client, hooks, backend = sms
    message_id = client.send_text_message(DestinationPhoneNumber="+14254147755", MessageBody="hi",
                                          ConfigurationSetName="notices")["MessageId"]
    (sent,) = backend.sent
    assert (sent.message_id, sent.region, sent.country, sent.configuration_set) == (message_id, "us-west-2", "US",
                                                                                   "notices")
    assert hooks.sent == [("us-west-2", "+14254147755", ["arn:aws:sns:us-west-2:123456789012:receipts"])]


def test_the_configuration_sets_protect_configuration_blocks_a_country_with_the_services_error(sms):
    client, hooks, backend = sms
    with pytest.raises(ClientError) as refused:
        client.send_text_message(DestinationPhoneNumber="+33755512501", MessageBody="hi",
                                 ConfigurationSetName="notices")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Reason"] == "DESTINATION_COUNTRY_BLOCKED"
    assert backend.sent == [] and hooks.sent == []


def test_an_unknown_configuration_set_or_operation_is_refused(sms):
    client, _, _ = sms
    with pytest.raises(ClientError) as missing:
        client.send_text_message(DestinationPhoneNumber="+14254147755", MessageBody="hi", ConfigurationSetName="nope")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as unmodelled:
        client.describe_configuration_sets()
    assert unmodelled.value.response["Error"]["Code"] == "UnknownOperationException"
