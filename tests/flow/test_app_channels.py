"""Push and the in-app message center: sent, then confirmed when the borrower reads the notice in the app."""

import time

import pytest

from tests.flow.conftest import executions_for, unique

pytestmark = pytest.mark.flow


def _push_endpoint(cloud):
    sns = cloud.client("sns")
    app = sns.create_platform_application(Name=unique("loan-app"), Platform="GCM",
                                          Attributes={"PlatformCredential": "server-key"})["PlatformApplicationArn"]
    return sns.create_platform_endpoint(PlatformApplicationArn=app, Token=unique("device"))["EndpointArn"]


def _wait_for_attempt(platform, loan_id, channel):
    deadline = time.monotonic() + 30
    while True:
        notices = platform.notices(loan_id)
        sent = [a for n in notices for a in n.get("attempts", []) if a["channel"] == channel and a["result"] == "SENT"]
        if sent:
            return sent[0]
        assert time.monotonic() < deadline, f"no {channel} attempt: {notices}"
        time.sleep(0.01)


def _read_in_app(cloud, message_id):
    receipts = cloud.runtime.function("IngestReceiptsFunction").name
    payload, is_error, _ = cloud.runtime.invoke(receipts, {"read_receipts": [
        {"message_id": message_id, "read_at": "2026-11-29T09:00:00.000Z"}]})
    assert not is_error, payload


def test_email_bounce_falls_back_to_push_confirmed_by_the_app_read(cloud, platform):
    endpoint = _push_endpoint(cloud)
    borrower = platform.borrower(phone=None, email="bounce@simulator.amazonses.com", app_user=True,
                                 push_endpoint_arn=endpoint, preferred_channels=["EMAIL"])
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1, amount=5000, currency="USD")
    push = _wait_for_attempt(platform, loan_id, "PUSH")
    assert push["destination"].startswith("GCM/...")
    _read_in_app(cloud, push["message_id"])
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert [(a["channel"], a.get("delivery_status")) for a in notice["attempts"]] == [
        ("EMAIL", "BOUNCED"), ("PUSH", "READ")]
    assert notice["state"] == "DELIVERED"
    assert executions_for(cloud, loan_id)[0]["status"] == "SUCCEEDED"
    from moto.sns.models import sns_backends

    (message,) = sns_backends["123456789012"][cloud.region].platform_endpoints[endpoint].messages.values()
    assert "approved" in message


def test_inbox_is_the_last_resort_and_reading_it_confirms(cloud, platform):
    borrower = platform.borrower(phone=None, email=None, app_user=True, locale="zh-CN", name="李娜")
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "DOCUMENTS_REQUIRED", 1, status_reason="收入证明")
    inbox = _wait_for_attempt(platform, loan_id, "INBOX")
    item = cloud.table("InboxTableName").get_item(Key={"message_id": inbox["message_id"]})["Item"]
    assert item["borrower_id"] == borrower["borrower_id"] and "补充材料" in item["text"]
    _read_in_app(cloud, inbox["message_id"])
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED" and notice["attempts"][-1]["delivery_status"] == "READ"
