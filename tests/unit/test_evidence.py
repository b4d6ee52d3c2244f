"""The evidence export and its table, from ledger items (in-memory ports)."""

from datetime import datetime, timezone

from loan_notify.chain import GENESIS, Change, apply, make_entry
from loan_notify.evidence import as_table, attempt_outcome, export, verify

_NOW = datetime(2026, 11, 29, 13, tzinfo=timezone.utc)


class Items:
    def __init__(self, items):
        self.items = items

    def by_loan(self, loan_id):
        return [i for i in self.items if i.get("loan_id") == loan_id]


def _chained(item):
    entry = make_entry(1, item["created_at"], {"what": "opened", "item": dict(item)}, GENESIS)
    return {**item, "chain": [entry], "chain_head": entry["hash"], "chain_seq": 1}


SENT = {"attempt": 1, "channel": "SMS", "provider": "sns-sms@us-east-1", "result": "SENT", "message_id": "m-1",
        "started_at": "2026-11-29T10:00:00.000Z", "delivery_status": "SENT", "receipts": {}}


def test_an_attempt_past_its_deadline_reads_expired_and_a_late_receipt_says_so():
    assert attempt_outcome(SENT) == "SENT"
    assert attempt_outcome({**SENT, "expired_at": "t"}) == "EXPIRED"
    assert attempt_outcome({**SENT, "expired_at": "t", "delivery_status": "DELIVERED"}) == \
        "DELIVERED after the deadline"
    assert attempt_outcome({**SENT, "delivery_status": "BOUNCED"}) == "BOUNCED"
    assert attempt_outcome({**SENT, "result": "FAILED_PERMANENT"}) == "FAILED_PERMANENT"
    assert attempt_outcome({**SENT, "confirms": False}) == "SENT, the provider cannot confirm delivery"


def test_the_table_shows_expiry_rejections_reports_and_outcome_reasons_without_empty_fields():
    notice = _chained({
        "notification_id": "L-1-APPROVED-v1-x", "loan_id": "L-1", "borrower_id": "B-1", "status": "APPROVED",
        "version": 1, "status_updated_at": "2026-11-29T10:00:00Z", "state": "DELIVERED",
        "reason": "confirmed_delivered",
        "delivered_at": "2026-11-29T10:20:00Z", "created_at": "2026-11-29T10:00:00.000Z",
        "attempts": [{**SENT, "expired_at": "2026-11-29T10:15:00.000Z", "deadline_s": 900},
                     {**SENT, "attempt": 2, "channel": "EMAIL", "delivery_status": "DELIVERED"}]})
    rejected = _chained({"notification_id": "rejected-L-1-2", "loan_id": "L-1", "state": "REJECTED",
                         "reason": "invalid_status", "detail": "status: not one of the statuses",
                         "status": "APPROVED_MAYBE", "created_at": "2026-11-29T11:00:00.000Z"})
    report = {"case_id": "report-L-1-1", "kind": "borrower_report", "loan_id": "L-1", "borrower_id": "B-1",
              "state": "OPEN", "opened_at": "2026-11-29T12:00:00.000Z", "reason": "borrower_reports_not_notified",
              "history": [{"notification_id": "x"}], "task_token": "secret"}
    # another borrower's report quoting this loan id is not evidence about what its borrower was told
    foreign = {**report, "case_id": "report-L-1-other", "borrower_id": "B-9", "history": []}
    evidence = export("L-1", ledger=Items([notice, rejected]), cases=Items([report, foreign]), clock=lambda: _NOW)
    table = as_table(evidence)
    assert "None" not in table and "secret" not in table
    assert "#1 SMS via sns-sms@us-east-1 to -: EXPIRED, message m-1; no confirmation within 900 s" in table
    assert "-> DELIVERED: delivered (reason: confirmed_delivered), at 2026-11-29T10:20:00Z" in table
    assert "* rejected status change, recorded 2026-11-29T11:00:00.000Z: invalid_status" in table
    assert "received: status APPROVED_MAYBE" in table and "why: status: not one of the statuses" in table
    assert "borrower reported not being notified, 2026-11-29T12:00:00.000Z: case report-L-1-1" in table
    assert [r["case_id"] for r in evidence["borrower_reports"]] == ["report-L-1-1"]
    assert evidence["borrower_reports"][0]["notices_on_record"] == 1
    assert evidence["borrower_reports"][0]["borrower_id"] == "B-1" and "report-L-1-other" not in table


def test_verify_checks_the_chain_heads_an_archive_recorded():
    item = _chained({"notification_id": "N-1", "loan_id": "L-1", "state": "STARTED",
                     "created_at": "2026-11-29T10:00:00.000Z"})
    ledger = Items([item])
    archive = {"where": "s3://b/k?versionId=1", "heads": {"N-1": (1, item["chain_head"])}}
    assert verify("L-1", ledger=ledger, archives=[archive])["intact"] is True
    # a chain rebuilt from scratch verifies on its own, but not against the archive
    forged = {**item, "state": "DELIVERED"}
    change = {"what": "opened", "item": {k: v for k, v in forged.items() if not k.startswith("chain")}}
    entry = make_entry(1, "2026-11-29T10:00:00.000Z", change, GENESIS)
    forged.update(chain=[entry], chain_head=entry["hash"])
    result = verify("L-1", ledger=Items([forged]), archives=[archive])
    assert result["intact"] is False
    assert result["notices"][0]["problems"] == ["notice N-1 entry 1: differs from the archived export "
                                                "s3://b/k?versionId=1 (the chain was rewritten after it was archived)"]
    assert verify("L-2", ledger=ledger)["intact"] is False  # nothing to verify is not "intact"


def test_change_descriptions_replay_to_the_written_item():
    doc = {}
    apply(doc, {"item": {"notification_id": "N-1", "attempts": []}})
    apply(doc, Change("x").append("attempts", [SENT]).set_if_absent(("attempts", 0, "expired_at"), "t").record())
    assert doc["attempts"][0]["expired_at"] == "t"



def _sms_evidence(attempts):
    return {"loan_id": "L-1", "generated_at": "2026-11-29T08:00:00Z", "notices": [{
        "notification_id": "L-1-APPROVED-v1-x", "status_change": {"status": "APPROVED", "version": 1,
                                                                  "status_updated_at": "2026-11-29T08:00:00Z"},
        "outcome": {"state": "DELIVERED"}, "policy_version": "p", "template": {"id": "loan.approved", "version": 2},
        "content_sha256": "0" * 64, "attempts": attempts, "review_cases": [], "human_actions": [],
        "chain": {"entries": 1, "head": "0" * 64}}]}


def test_a_sent_sms_shows_its_encoding_and_parts_and_an_unsent_one_does_not():
    table = as_table(_sms_evidence([
        {"attempt": 1, "channel": "SMS", "provider": "sns-sms@us-east-1", "result": "FAILED_TRANSIENT",
         "outcome": "FAILED_TRANSIENT", "sms_encoding": "UCS-2", "sms_segments": 2},
        {"attempt": 2, "channel": "SMS", "provider": "sns-sms@us-west-2", "result": "SENT", "outcome": "SENT",
         "message_id": "m-1", "sms_encoding": "UCS-2", "sms_segments": 2},
    ]))
    first, second = [line for line in table.splitlines() if " SMS via " in line]
    assert "part" not in first
    assert second.endswith("SENT, message m-1, 2 UCS-2 parts")


def test_reports_about_a_loan_with_no_notice_on_record_are_all_kept():
    # no notice names the loan's borrower: a report that nothing was sent is exactly what such a loan has
    report = {"case_id": "report-L-9-1", "kind": "borrower_report", "loan_id": "L-9", "borrower_id": "B-1",
              "state": "OPEN", "opened_at": "2026-11-29T12:00:00.000Z",
              "reason": "borrower_reports_not_notified_no_notice_on_record", "history": []}
    evidence = export("L-9", ledger=Items([]), cases=Items([report]), clock=lambda: _NOW)
    assert evidence["notices"] == [] and [r["case_id"] for r in evidence["borrower_reports"]] == ["report-L-9-1"]
