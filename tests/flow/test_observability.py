"""The service levels are measured by the running stack: the review watchdog publishes the age of the oldest
undelivered critical notice, open and overdue cases (EMF metrics the dashboard and alarms read)."""

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from loan_notify_ops.cli import main as ops
from tests.flow.conftest import unique

pytestmark = pytest.mark.flow


def _emf(cloud, function, metric):
    lines = [json.loads(log.line) for log in cloud.runtime.logs
             if log.function == function and f'"{metric}"' in log.line and log.line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def test_the_watchdog_publishes_the_age_of_the_oldest_undelivered_critical_notice(cloud, platform):
    # GIVEN a critical notice no channel delivered (with a person now) and one that was delivered
    stuck_borrower, ok_borrower = platform.borrower(phone="+9991234567", email=None), platform.borrower()
    stuck_loan, ok_loan = unique("L"), unique("L")
    platform.status(stuck_loan, stuck_borrower["borrower_id"], "REJECTED", 1)
    platform.status(ok_loan, ok_borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    (stuck,), (delivered,) = platform.notices(stuck_loan), platform.notices(ok_loan)
    assert (stuck["state"], stuck["undelivered_critical"]) == ("NEEDS_REVIEW", "REJECTED")
    assert delivered["state"] == "DELIVERED" and "undelivered_critical" not in delivered
    # WHEN the watchdog runs (every 15 minutes)
    watchdog = cloud.runtime.function("ReviewWatchdogFunction").name
    schedule = json.loads((Path(__file__).resolve().parents[2] / "events" / "eventbridge_watchdog_schedule.json")
                          .read_text())  # the sample event, as EventBridge's schedule sends it
    payload, is_error, _ = cloud.runtime.invoke(watchdog, schedule)
    assert not is_error, payload
    result = json.loads(payload)
    # THEN the age it measured is at least this notice's (another test's may be older)
    age = (datetime.now(timezone.utc) - datetime.fromisoformat(stuck["created_at"].replace("Z", "+00:00")))
    assert age.total_seconds() > 0 and result["oldest_undelivered_critical_s"] >= age.total_seconds() - 1
    assert result["open_cases"] >= 1
    # AND published it as an EMF metric with the service dimension the alarm and the dashboard read
    (*_, emf) = _emf(cloud, "ReviewWatchdogFunction", "OldestUndeliveredCriticalNoticeAge")
    (published,) = emf["OldestUndeliveredCriticalNoticeAge"]
    assert published == pytest.approx(result["oldest_undelivered_critical_s"], abs=1e-3)
    assert emf["service"] == "review-watchdog" and emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LoanNotify"
    assert {"OpenReviewCases", "OverdueReviewCases"} <= set(emf)
    # WHEN a person settles the notice, it leaves the undelivered-critical index
    assert ops(["cases", "resolve", stuck["case_id"], "--decision", "reached_by_phone", "--note", "called",
                "--by", "ops.t"]) == 0
    cloud.wait_idle()
    (settled,) = platform.notices(stuck_loan)
    assert settled["state"] == "DELIVERED_BY_PERSON" and "undelivered_critical" not in settled
