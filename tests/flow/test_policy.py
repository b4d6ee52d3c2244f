"""Policy on the local cloud: send windows in the borrower's time zone, and supersession."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from loan_notify.policy import SPREAD_SECONDS
from tests.flow.conftest import entered_states, unique

pytestmark = pytest.mark.flow


def _zone_where_it_is_just_before_eight() -> tuple[str, datetime]:
    """An Etc/GMT zone whose local time is 07:xx now (06:xx near the top of the hour), and its next 08:00 in UTC."""
    now = datetime.now(timezone.utc)
    target_hour = 7 if now.minute < 58 else 6
    offset = (target_hour - now.hour) % 24
    if offset > 14:
        offset -= 24
    zone = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-8 is UTC+8
    local = now + timedelta(hours=offset)
    opening = local.replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(hours=offset)
    return zone, opening


def test_overdue_notice_due_at_night_waits_for_eight_local_instead_of_being_dropped(cloud, platform):
    # GIVEN a borrower for whom it is still before 08:00, and an OVERDUE notice (collection hours 08:00-21:00)
    zone, opening = _zone_where_it_is_just_before_eight()
    borrower = platform.borrower(time_zone=zone)
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "OVERDUE", 1, amount=250, currency="USD")
    # WHEN the execution has prepared the notice
    deadline = time.monotonic() + 30
    while not platform.notices(loan_id) or "Wait for the send window" not in entered_states(
            cloud, platform.notices(loan_id)[0]["notification_id"]):
        assert time.monotonic() < deadline, "the notice never reached the send-window wait"
        time.sleep(0.02)
    (notice,) = platform.notices(loan_id)
    # THEN nothing was sent yet, and the wait is until 08:00 local
    assert platform.sms_to(borrower["phone"]) == []
    prepared = [e for e in cloud.history(notice["notification_id"]) if e["type"] == "WaitStateEntered"][0]
    import json

    wait_until = json.loads(prepared["stateEnteredEventDetails"]["input"])["plan"]["wait_until"]
    released = datetime.fromisoformat(wait_until.replace("Z", "+00:00"))
    assert opening <= released < opening + timedelta(seconds=SPREAD_SECONDS)  # spread over the window's first minutes
    # AND once the window opens (time-compressed), the notice goes out and is delivered
    cloud.wait_idle(timeout=60)
    assert len(platform.sms_to(borrower["phone"])) == 1
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED"
    states = entered_states(cloud, notice["notification_id"])
    assert states[:4] == ["Prepare notice", "Send now?", "Wait for the send window", "Prepare notice"]


def test_critical_approval_ignores_the_borrowers_quiet_hours(cloud, platform):
    now = datetime.now(timezone.utc)
    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:%M"), "end": (now + timedelta(hours=1)).strftime("%H:%M")}
    borrower = platform.borrower(time_zone="UTC", quiet_hours=quiet)
    approved, settled = unique("L"), unique("L")
    platform.status(approved, borrower["borrower_id"], "APPROVED", 1)
    platform.status(settled, borrower["borrower_id"], "SETTLED", 1)
    deadline = time.monotonic() + 30
    while len(platform.sms_to(borrower["phone"])) < 1 or not platform.notices(settled):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    # the approval went out during quiet hours; the non-critical notice waits for them to end
    (sms,) = platform.sms_to(borrower["phone"])
    assert "approved" in sms["text"]
    (waiting,) = platform.notices(settled)
    assert "Wait for the send window" in entered_states(cloud, waiting["notification_id"])
    cloud.client("stepfunctions").stop_execution(executionArn=cloud.execution_arn(waiting["notification_id"]))


def test_a_newer_status_supersedes_a_pending_interim_notice(cloud, platform):
    # GIVEN a preliminary approval whose SMS was sent but never confirmed (the carrier stays silent)
    borrower = platform.borrower()
    loan_id = unique("L")
    platform.status_without_receipt(loan_id, borrower, "PRELIMINARY_APPROVED", 1)
    # WHEN the final approval arrives while the first notice still waits for its receipt
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 2, amount=15000, currency="USD")
    cloud.wait_idle()
    # THEN the borrower gets the approval, and the interim notice stands down instead of falling back to email
    preliminary, approved = sorted(platform.notices(loan_id), key=lambda n: n["version"])
    assert approved["state"] == "DELIVERED"
    assert preliminary["state"] == "SUPERSEDED" and preliminary["superseded_by"] == approved["notification_id"]
    assert platform.emails_to(borrower["email"]) == []
    assert entered_states(cloud, preliminary["notification_id"])[-1] == "Notice superseded"
