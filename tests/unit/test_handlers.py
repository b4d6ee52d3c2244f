"""Handlers with a Lambda context and in-memory ports (no network)."""

import json

import pytest
from botocore.exceptions import ClientError

from loan_notify.errors import PermanentChannelError
from loan_notify.models import Borrower, LoanImage
from loan_notify.vocabulary import Channel
from tests.unit.fakes import FakeBorrowers, FakeLedger, FakeStarter, RecordingSender
from tests.unit.images import loan_image, stream_record


class FlakyStarter(FakeStarter):
    """Throttled for one execution name; everything else starts."""

    def __init__(self, throttled_loan: str) -> None:
        super().__init__()
        self.throttled_loan = throttled_loan

    def __call__(self, name: str, payload: str) -> bool:
        if name.startswith(self.throttled_loan):
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "StartExecution")
        return super().__call__(name, payload)


def test_stream_router_reports_only_the_failed_record_and_records_the_bad_one(load_handler, context, monkeypatch,
                                                                               capsys):
    app = load_handler("stream_router")
    ledger, starter = FakeLedger(), FlakyStarter("L-3")
    monkeypatch.setattr(app, "ledger", ledger)
    monkeypatch.setattr(app, "start", starter)
    event = {"Records": [
        stream_record(loan_image("L-1"), sequence=101),
        stream_record(loan_image("L-2", status="SOMETHING_NEW"), sequence=102),
        stream_record(loan_image("L-3"), sequence=103),
        stream_record(loan_image("L-4"), sequence=104),
    ]}

    response = app.lambda_handler(event, context)

    assert response == {"batchItemFailures": [{"itemIdentifier": "103"}]}
    assert sorted(n.split("-APPROVED")[0] for n in starter.started) == ["L-1", "L-4"]
    rejected = [i for i in ledger.items.values() if i["state"] == "REJECTED"]
    assert [(i["loan_id"], i["reason"]) for i in rejected] == [("L-2", "invalid_status")]
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(metrics[-1]["RejectedStatusChange"]) == 1 and sum(metrics[-1]["NoticeStarted"]) == 2


def test_prepare_handler_parses_the_execution_input(load_handler, context, monkeypatch):
    app = load_handler("prepare_notice")
    loan = LoanImage.model_validate({"loan_id": "L-1", "borrower_id": "B-1", "status": "REJECTED",
                                     "updated_at": "2026-11-29T08:00:00Z", "version": 4})
    monkeypatch.setattr(app, "borrowers", FakeBorrowers(Borrower(borrower_id="B-1", email="a@example.com")))
    plan = app.lambda_handler({"notification_id": loan.notification_id, "loan_id": "L-1", "borrower_id": "B-1",
                               "status": "REJECTED", "version": 4}, context)
    assert plan["channels"] == ["EMAIL"]


def test_send_handler_raises_the_class_the_state_machine_catches(load_handler, context, monkeypatch):
    app = load_handler("send_notice", SENDER_EMAIL="notices@example.com")
    loan = LoanImage.model_validate({"loan_id": "L-1", "borrower_id": "B-1", "status": "APPROVED",
                                     "updated_at": "2026-11-29T08:00:00Z", "version": 1})
    ledger = FakeLedger()
    ledger.open_notice(loan, loan.notification_id)
    monkeypatch.setattr(app, "ledger", ledger)
    monkeypatch.setattr(app, "borrowers", FakeBorrowers(Borrower(borrower_id="B-1", phone="+1555")))
    monkeypatch.setattr(app, "senders", {Channel.SMS: [RecordingSender(
        "sns-sms", fail_with=PermanentChannelError("invalid", reason="invalid_phone"))]})
    with pytest.raises(PermanentChannelError):
        app.lambda_handler({"notification_id": loan.notification_id, "loan_id": "L-1", "borrower_id": "B-1",
                            "status": "APPROVED", "version": 1, "channel": "SMS"}, context)
    assert ledger.items[loan.notification_id]["attempts"][0]["error"] == "invalid_phone"
