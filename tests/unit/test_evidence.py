"""The proof-of-notice table shows how each sent SMS went out (encoding and parts)."""

from loan_notify.evidence import as_table


def _evidence(attempts):
    return {"loan_id": "L-1", "generated_at": "2026-11-29T08:00:00Z", "notices": [{
        "notification_id": "L-1-APPROVED-v1-x", "status_change": {"status": "APPROVED", "version": 1,
                                                                  "status_updated_at": "2026-11-29T08:00:00Z"},
        "outcome": {"state": "DELIVERED"}, "policy_version": "p", "template": {"id": "loan.approved", "version": 2},
        "content_sha256": "0" * 64, "attempts": attempts, "review_cases": [], "human_actions": []}]}


def test_a_sent_sms_shows_its_encoding_and_parts_and_an_unsent_one_does_not():
    table = as_table(_evidence([
        {"attempt": 1, "channel": "SMS", "provider": "sns-sms@us-east-1", "result": "FAILED_TRANSIENT",
         "sms_encoding": "UCS-2", "sms_segments": 2},
        {"attempt": 2, "channel": "SMS", "provider": "sns-sms@us-west-2", "result": "SENT", "message_id": "m-1",
         "sms_encoding": "UCS-2", "sms_segments": 2},
    ]))
    first, second = [line for line in table.splitlines() if " SMS via " in line]
    assert "part" not in first
    assert second.endswith("SENT, message m-1, 2 UCS-2 parts")
