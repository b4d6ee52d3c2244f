"""The sample events under events/ stay valid inputs for the handlers they are named after."""

import json
from pathlib import Path

from loan_notify.models import SendRequest
from tests.unit.fakes import FakeLedger, FakeStarter

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _event(name):
    return json.loads((EVENTS / f"{name}.json").read_text())


def test_stream_samples_route_as_documented(load_handler, context, monkeypatch):
    app = load_handler("stream_router")
    ledger, starter = FakeLedger(), FakeStarter()
    monkeypatch.setattr(app, "ports", lambda: (ledger, starter))
    for name in ("dynamodb_status_changed", "dynamodb_new_loan", "dynamodb_bad_records"):
        assert app.lambda_handler(_event(name), context) == {"batchItemFailures": []}
    started = sorted(json.loads(p)["loan_id"] for p in starter.started.values())
    assert started == ["L-1001", "L-1002", "L-1005"]
    assert sorted(i["reason"] for i in ledger.items.values() if i["state"] == "REJECTED") == [
        "invalid_status", "missing_borrower_id"]


def test_step_function_samples_parse():
    assert SendRequest.model_validate(_event("stepfunctions_send_sms")).channel.value == "SMS"
    SendRequest.model_validate({**_event("stepfunctions_prepare_notice"), "channel": "EMAIL"})


def test_receipt_samples_parse_into_the_receipts_they_carry():
    from loan_notify.receipts import parse_event
    from loan_notify.vocabulary import DeliveryStatus

    (sms,) = parse_event(_event("sns_sms_text_delivered"))
    assert (sms.source, sms.status, sms.message_id) == ("sms-voice", DeliveryStatus.DELIVERED,
                                                         "a1b2c3d4-0000-4000-8000-000000000001")
    (email,) = parse_event(_event("sns_ses_bounce"))
    assert (email.source, email.status, email.contact_effect) == ("ses", DeliveryStatus.BOUNCED, "bounced")
    assert "ada@example.com" not in email.detail  # never an address in what is stored

