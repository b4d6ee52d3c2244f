"""Evidence that survives a dispute: what the ledger says, that it was not edited, and an archive nobody can alter."""

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from loan_notify.alerts import SnsAlerts
from loan_notify.chain import GENESIS, change_of, make_entry
from loan_notify.chain import verify as verify_chain
from loan_notify.limits import Limits
from loan_notify.review import ReviewCases, report_not_notified
from loan_notify_ops.cli import main as ops
from tests.flow.conftest import BORROWERS_SEEN, mobile, unique

pytestmark = pytest.mark.flow


def _evidence(loan_id, capsys):
    assert ops(["evidence", loan_id, "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert ops(["evidence", loan_id]) == 0
    return exported, capsys.readouterr().out


def test_a_missed_receipt_deadline_is_recorded_expired_before_the_next_channel(cloud, platform, capsys):
    # GIVEN an APPROVED notice whose SMS goes out but whose carrier receipt never comes
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status_without_receipt(loan_id, borrower, "APPROVED", 1)
    cloud.wait_idle()
    # THEN the SMS attempt was marked expired when its 15-minute deadline passed, before the email went out
    (notice,) = platform.notices(loan_id)
    sms, email, *_ = notice["attempts"]  # (a loaded machine may miss the email's deadline too: then a third)
    assert (sms["channel"], sms["result"], sms["deadline_s"]) == ("SMS", "SENT", 900)
    assert email["channel"] == "EMAIL" and sms["expired_at"] <= email["started_at"]
    assert notice["state"] == "DELIVERED" and notice["reason"].startswith("confirmed")
    # AND the evidence reads EXPIRED for it, never just SENT
    exported, table = _evidence(loan_id, capsys)
    assert exported["notices"][0]["attempts"][0]["outcome"] == "EXPIRED"
    assert "SMS via sms-voice@us-east-1" in table and ": EXPIRED" in table and "deadline passed" in table
    assert "DELIVERED: delivered (reason: confirmed" in table and "None" not in table


def test_after_a_contact_correction_the_outcome_says_how_it_was_delivered(cloud, platform, capsys):
    # GIVEN a notice no channel delivered, resolved by ops as contact corrected, then delivered
    borrower = platform.borrower(phone="+9991234567", email=None)
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert (notice["state"], notice["reason"]) == ("NEEDS_REVIEW", "no_channel_delivered")
    new_phone = mobile()
    BORROWERS_SEEN.append({**borrower, "phone": new_phone})
    platform.borrowers.update_item(Key={"borrower_id": borrower["borrower_id"]},
                                   UpdateExpression="SET phone = :p", ExpressionAttributeValues={":p": new_phone})
    assert ops(["cases", "resolve", notice["case_id"], "--decision", "contact_corrected", "--corrected", "phone",
                "--note", "right number given by phone", "--by", "ops.li"]) == 0
    capsys.readouterr()  # the resolve's own report
    cloud.wait_idle()
    # THEN the outcome is the delivery and its reason, not the old "no channel delivered"
    exported, table = _evidence(loan_id, capsys)
    outcome = exported["notices"][0]["outcome"]
    assert (outcome["state"], outcome["reason"]) == ("DELIVERED", "confirmed_delivered")
    assert "DELIVERED (no_channel_delivered)" not in table and "reason: confirmed_delivered" in table
    assert "person ops.li at" in table and "contact_corrected - right number given by phone" in table


def test_rejected_changes_and_the_borrowers_reports_are_in_the_evidence(cloud, platform, capsys):
    # GIVEN a loan with a good change, a change the router rejected, and a borrower saying they were never told
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    platform.status(loan_id, borrower["borrower_id"], "APPROVED_MAYBE", 2)
    cloud.wait_idle()
    cases = ReviewCases(cloud.table("ReviewCasesTableName"))
    report, created = report_not_notified(
        borrower["borrower_id"], loan_id, ledger=platform.ledger, cases=cases,
        alerts=SnsAlerts(cloud.client("sns"), cloud.outputs["OpsAlertsTopicArn"]),
        limits=Limits(cloud.table("LimitsTableName"), pepper=b"test"), answer_within_s=3600)
    assert created
    # THEN the rejected change shows what was received and why, with no empty fields
    exported, table = _evidence(loan_id, capsys)
    rejected = next(n for n in exported["notices"] if n.get("rejected"))
    assert rejected["received"]["status"] == "APPROVED_MAYBE" and rejected["outcome"]["reason"] == "invalid_status"
    assert "rejected status change" in table and "status APPROVED_MAYBE" in table and "None" not in table
    # AND the borrower's report is there, with what was on record when it came
    (reported,) = exported["borrower_reports"]
    assert reported["case_id"] == report["case_id"] and reported["notices_on_record"] == 2  # the rejected change too
    assert "borrower reported not being notified" in table and report["case_id"] in table
    assert borrower["phone"] not in json.dumps(exported) and borrower["name"] not in table
    assert ops(["cases", "resolve", report["case_id"], "--decision", "closed", "--note", "told", "--by", "t"]) == 0


def test_an_unknown_loan_says_so_and_fails(cloud, capsys):
    loan_id = unique("L-none")
    for command in (["evidence", loan_id], ["evidence", "verify", loan_id], ["evidence", "export", loan_id]):
        assert ops(command) == 1
        said = capsys.readouterr()
        assert f"no notices for loan {loan_id}" in said.err
        if command == ["evidence", loan_id]:
            assert said.out == ""  # no empty "Proof of notice" header above the error


def test_verify_finds_an_edited_ledger_item_and_names_the_notice_and_entry(cloud, platform, capsys):
    # GIVEN a delivered notice: its chain verifies
    borrower = platform.borrower(phone="+1555")  # SMS fails, email delivers: several kinds of write
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    (original,) = platform.notices(loan_id)
    nid = original["notification_id"]
    assert ops(["evidence", "verify", loan_id]) == 0
    assert f"ok     {nid}: {int(original['chain_seq'])} entries" in capsys.readouterr().out
    entries = int(original["chain_seq"])
    assert entries >= 5 and [int(e["seq"]) for e in original["chain"]] == list(range(1, entries + 1))
    table = cloud.table("NotificationsTableName")
    try:
        # WHEN someone with write access edits the outcome in place
        table.update_item(Key={"notification_id": nid}, UpdateExpression="SET attempts[0].#r = :sent",
                          ExpressionAttributeNames={"#r": "result"}, ExpressionAttributeValues={":sent": "SENT"})
        # THEN verify fails, naming the notice, the attribute and the entry that last wrote it
        assert ops(["evidence", "verify", loan_id]) == 1
        out = capsys.readouterr().out
        assert f"FAILED {nid}" in out and "attribute 'attempts' differs from what the chain recorded" in out
        # WHEN the edit also rewrites the chain entry that recorded the attempt
        entry = next(e for e in original["chain"] if change_of(e)["what"] == "attempt")
        position = int(entry["seq"]) - 1
        edited = re.sub(r'"result":"[A-Z_]+"', '"result":"SENT"', entry["change"], count=1)
        assert edited != entry["change"]  # the attempt failed: the forger makes it a send
        table.update_item(Key={"notification_id": nid}, UpdateExpression=f"SET chain[{position}].change = :edited",
                          ExpressionAttributeValues={":edited": edited})
        assert ops(["evidence", "verify", loan_id, "--json"]) == 1
        (checked,) = json.loads(capsys.readouterr().out)["notices"]
        assert f"notice {nid} entry {entry['seq']}: was edited" in " ".join(checked["problems"])
    finally:
        table.put_item(Item=original)  # the session-end check verifies every notice's chain
    assert ops(["evidence", "verify", loan_id]) == 0


def test_an_archived_export_cannot_be_deleted_or_overwritten_within_its_retention(cloud, platform, capsys):
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    # WHEN ops archive the export
    assert ops(["evidence", "export", loan_id, "--archive"]) == 0
    captured = capsys.readouterr()
    exported = json.loads(captured.out)
    assert exported["notices"][0]["chain"]["head"]  # the archive anchors each notice's chain head
    bucket = cloud.outputs["EvidenceArchiveBucketName"]
    s3 = cloud.client("s3")
    (version,) = s3.list_object_versions(Bucket=bucket, Prefix=f"evidence/{loan_id}/")["Versions"]
    key, version_id = version["Key"], version["VersionId"]
    assert f"s3://{bucket}/{key} version {version_id}, COMPLIANCE lock until" in captured.err
    # THEN it is locked in compliance mode for the stack's retention (EvidenceRetentionDays, 2557 by default)
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(timezone.utc) + timedelta(days=2550)
    # AND nobody can delete that version, not even with a governance bypass
    for extra in ({}, {"BypassGovernanceRetention": True}):
        with pytest.raises(ClientError) as refused:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id, **extra)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # AND writing the key again only adds a version: the archived one is unchanged
    s3.put_object(Bucket=bucket, Key=key, Body=b"{}", ChecksumAlgorithm="SHA256")
    kept = json.loads(s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read())
    assert kept == json.loads(json.dumps(exported, sort_keys=True))
    # AND a chain rewritten end to end afterwards (every hash recomputed) is caught by the archived head
    table = cloud.table("NotificationsTableName")
    (original,) = platform.notices(loan_id)
    try:
        table.put_item(Item=_rewritten(original, amount=1))
        assert ops(["evidence", "verify", loan_id]) == 1
        out = capsys.readouterr().out
        assert f"differs from the archived export s3://{bucket}/{key}?versionId={version_id}" in out
    finally:
        table.put_item(Item=original)
    assert ops(["evidence", "verify", loan_id]) == 0


def _rewritten(item, **fields):
    """The item with `fields` changed and its whole chain recomputed, as a forger with write access would."""
    forged = {**item, **fields}
    entries, head = [], GENESIS
    for entry in item["chain"]:
        change = change_of(entry)
        if "item" in change:
            change["item"] = {**change["item"], **fields}
        entries.append(make_entry(int(entry["seq"]), entry["at"], change, head))
        head = entries[-1]["hash"]
    forged.update(chain=entries, chain_head=head)
    assert verify_chain(forged) == []  # consistent on its own
    return forged
