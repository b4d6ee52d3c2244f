"""Handlers with a Lambda context and in-memory ports (no network)."""

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from loan_notify.errors import PaceWait, PermanentChannelError
from loan_notify.models import Borrower, LoanImage
from loan_notify.vocabulary import Channel
from tests.unit.fakes import FakeBorrowers, FakeLedger, FakeStarter
from tests.unit.images import loan_image, stream_record

ROOT = Path(__file__).resolve().parents[2]


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
    monkeypatch.setattr(app, "ports", lambda: (ledger, starter))
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
    borrowers = FakeBorrowers(Borrower(borrower_id="B-1", email="a@example.com"))
    monkeypatch.setattr(app, "ports", lambda: (borrowers, FakeLedger()))
    plan = app.lambda_handler({"notification_id": loan.notification_id, "loan_id": "L-1", "borrower_id": "B-1",
                               "status": "REJECTED", "version": 4}, context)
    assert plan["channels"] == ["EMAIL"]
    assert plan["outbox"].endswith("/critical")  # a REJECTED notice never queues behind interim ones


class RecordingCallbacks:
    def __init__(self) -> None:
        self.told: list[tuple] = []

    def success(self, token, output):
        self.told.append(("success", token, output))
        return True

    def failure(self, token, error, cause):
        self.told.append(("failure", token, error))
        return True


class RecordingSqs:
    def __init__(self) -> None:
        self.visibility: list[tuple[str, int]] = []

    def get_queue_url(self, QueueName):  # noqa: N803 - boto3's argument name
        return {"QueueUrl": f"https://sqs.us-east-1.amazonaws.com/123456789012/{QueueName}"}

    def change_message_visibility(self, QueueUrl, ReceiptHandle, VisibilityTimeout):  # noqa: N803
        self.visibility.append((ReceiptHandle, VisibilityTimeout))


def _outbox_event(*bodies):
    return {"Records": [{
        "messageId": f"m-{n}", "receiptHandle": f"rh-{n}", "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bulk",
        "awsRegion": "us-east-1"} for n, body in enumerate(bodies)]}


def test_outbox_consumer_tells_the_execution_and_puts_back_what_must_wait(load_handler, context, monkeypatch):
    # GIVEN two queued sends: one whose contact is invalid, one whose provider has no send token yet
    app = load_handler("send_notice", SENDER_EMAIL="notices@example.com")
    loans = [LoanImage.model_validate({"loan_id": f"L-{n}", "borrower_id": "B-1", "status": "APPROVED",
                                       "updated_at": "2026-11-29T08:00:00Z", "version": 1}) for n in (1, 2)]
    ledger = FakeLedger()
    for loan in loans:
        ledger.open_notice(loan, loan.notification_id)
    callbacks, sqs = RecordingCallbacks(), RecordingSqs()

    def send(request, channel, **_options):
        if request.loan_id == "L-1":
            raise PermanentChannelError("invalid", reason="invalid_phone")
        raise PaceWait(12.4, "sns-sms@us-east-1")  # longer than a consumer waits in place

    monkeypatch.setattr(app, "ports", lambda: {"ledger": ledger, "senders": {Channel.SMS: [object()]},
                                               "send": send, "callbacks": callbacks, "sqs": sqs})
    bodies = [{"notification_id": loan.notification_id, "loan_id": loan.loan_id, "borrower_id": "B-1",
               "status": "APPROVED", "version": 1, "channel": "SMS", "task_token": f"t-{loan.loan_id}"}
              for loan in loans]
    # WHEN the consumer gets the batch
    response = app.lambda_handler(_outbox_event(*bodies), context)
    # THEN the invalid contact is told to the execution (the error class its Catch matches) and deleted,
    # and the one with a long wait goes back to the queue for it, rounded up to whole seconds
    assert callbacks.told == [("failure", "t-L-1", "PermanentChannelError")]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert sqs.visibility == [("rh-1", 13)]


def test_record_outcome_marks_the_expired_attempt_and_the_undeliverable_notice(load_handler, context, monkeypatch):
    app = load_handler("record_outcome")
    ledger = FakeLedger()
    monkeypatch.setattr(app, "ledger", lambda: ledger)
    nid = "L-1001-APPROVED-v3-90d00fe3cb"
    ledger.items[nid] = {"notification_id": nid, "state": "SENT", "attempts": [{"attempt": 1, "result": "SENT"}]}
    event = json.loads((ROOT / "events" / "stepfunctions_record_deadline_passed.json").read_text())
    assert app.lambda_handler(event, context) == {"recorded": True}
    assert ledger.items[nid]["attempts"][0]["deadline_s"] == 900 and ledger.items[nid]["attempts"][0]["expired_at"]
    assert app.lambda_handler({**event, "attempt": 2}, context) == {"recorded": False}  # never sent: nothing
    assert app.lambda_handler({"action": "undeliverable", "notification_id": nid, "reason": "review_case_not_opened"},
                              context) == {"recorded": True}
    assert (ledger.items[nid]["state"], ledger.items[nid]["reason"]) == ("UNDELIVERED", "review_case_not_opened")
    with pytest.raises(Exception, match="action"):
        app.lambda_handler({"action": "delete", "notification_id": nid}, context)
