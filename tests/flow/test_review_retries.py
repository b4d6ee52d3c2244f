"""Review effects that must happen once, after a partial failure: a retried step, a retried resolve, a case whose
execution is gone, a notice settled meanwhile, a watchdog run that meets a resolved case or a failing topic."""

import json

import pytest
from botocore.exceptions import ClientError

from loan_notify.executions import TaskCallbacks
from loan_notify.review import (
    Decision,
    DecisionConflict,
    ReviewCases,
    ReviewStep,
    close_case_if_delivered,
    open_case,
    realert_overdue,
    resolve_case,
)
from loan_notify.vocabulary import DeliveryStatus
from loan_notify_ops.cli import main as ops
from tests.flow.conftest import BORROWERS_SEEN, entered_states, executions_for, mobile, seed_notice, unique
from tests.flow.test_review import _alerts, _undeliverable

pytestmark = pytest.mark.flow


class RecordingAlerts:
    def __init__(self, fail_first: int = 0) -> None:
        self.published: list[dict] = []
        self.fail_first = fail_first

    def publish(self, subject: str, body: str) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "topic unavailable"}}, "Publish")
        self.published.append(json.loads(body))


class RecordingCallbacks:
    def __init__(self) -> None:
        self.answers: list[tuple[str, dict]] = []

    def success(self, token: str, output: dict) -> bool:
        self.answers.append((token, output))
        return True


class ThrottledOnce(TaskCallbacks):
    """The Step Functions callback throttled once: the resolve stops half way, as a real one can."""

    def __init__(self, client) -> None:
        super().__init__(client)
        self.calls = 0

    def success(self, token: str, output: dict) -> bool:
        self.calls += 1
        if self.calls == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "SendTaskSuccess")
        return super().success(token, output)


@pytest.fixture
def ops_topic_down(cloud, monkeypatch):
    """The ops alerts topic refuses every publish until the test calls the returned function."""
    from moto.sns.exceptions import InternalError
    from moto.sns.models import SNSBackend

    topic, original, down = cloud.outputs["OpsAlertsTopicArn"], SNSBackend.publish, [True]

    def publish(self, message, arn=None, *args, **kwargs):
        if down[0] and arn == topic:
            raise InternalError("ops alerts topic unavailable")
        return original(self, message, arn, *args, **kwargs)

    monkeypatch.setattr(SNSBackend, "publish", publish)
    return lambda: down.__setitem__(0, False)


def _cases_of(cloud, notification_id):
    items = cloud.table("ReviewCasesTableName").scan()["Items"]
    return sorted((c for c in items if c.get("notification_id") == notification_id), key=lambda c: c["case_id"])


def _review_payload(cloud, execution_name):
    """The payload Step Functions handed the review step (task token included), from the execution's history."""
    for event in cloud.history(execution_name):
        details = event.get("taskScheduledEventDetails")
        if details and "OpenReviewCase" in details["parameters"]:
            return json.loads(details["parameters"])["Payload"]
    raise AssertionError(f"{execution_name} never scheduled the review step")


def _resolve(cloud, case_id, decision, *, callbacks=None, corrected=()):
    sfn = cloud.client("stepfunctions")
    from loan_notify.borrowers import Borrowers
    from loan_notify.executions import StepFunctionsStarter
    from loan_notify.ledger import Ledger

    return resolve_case(case_id, decision=decision, note="tried again", by="ops.li", corrected=list(corrected),
                        cases=ReviewCases(cloud.table("ReviewCasesTableName")),
                        ledger=Ledger(cloud.table("NotificationsTableName")),
                        contacts=Borrowers(cloud.table("BorrowersTableName")),
                        callbacks=callbacks or TaskCallbacks(sfn),
                        executions=StepFunctionsStarter(sfn, cloud.outputs["NotifyStateMachineArn"]))


def test_a_retried_review_step_finds_its_case_instead_of_opening_a_second(cloud, platform):
    # GIVEN a notice waiting on its review case, the step's response lost: Step Functions runs the step again
    _, loan_id, notice = _undeliverable(cloud, platform)
    (execution,) = executions_for(cloud, loan_id)
    payload = _review_payload(cloud, execution["name"])
    assert payload["execution_name"] == execution["name"] and payload["entered_at"]
    # WHEN the same step (same wait, same token) runs again
    function = cloud.runtime.function("OpenReviewCaseFunction").name
    result, is_error, _ = cloud.runtime.invoke(function, payload)
    # THEN it answers with the case it opened the first time: one case, one alert, the notice numbered once
    assert not is_error and json.loads(result)["case_id"] == notice["case_id"]
    assert [c["case_id"] for c in _cases_of(cloud, notice["notification_id"])] == [notice["case_id"]]
    assert [a["alerts"] for a in _alerts(cloud) if a["case_id"] == notice["case_id"]] == [1]
    (notice,) = platform.notices(loan_id)
    assert notice["review_cases"] == 1
    # AND the re-armed case still resumes the execution
    assert ops(["cases", "resolve", notice["case_id"], "--decision", "closed", "--note", "duplicate check",
                "--by", "t"]) == 0
    assert cloud.wait_execution(execution["name"])["status"] == "SUCCEEDED"


def test_a_resolve_that_failed_half_way_is_finished_by_running_it_again(cloud, platform, capsys):
    # GIVEN a case whose resolve stopped after recording the decision: resuming the execution was throttled
    _, loan_id, notice = _undeliverable(cloud, platform, status="REJECTED")
    case_id = notice["case_id"]
    with pytest.raises(ClientError):
        _resolve(cloud, case_id, Decision.REACHED_BY_PHONE, callbacks=ThrottledOnce(cloud.client("stepfunctions")))
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": case_id})["Item"]
    assert case["state"] == "OPEN" and case["pending"]["decision"] == "reached_by_phone"
    # WHEN someone else tries a different decision on it
    capsys.readouterr()
    assert ops(["cases", "resolve", case_id, "--decision", "closed", "--note", "x", "--by", "ops.sam"]) == 2
    # THEN it is refused clearly, naming the decision under way
    assert "being resolved as reached_by_phone" in capsys.readouterr().err
    with pytest.raises(DecisionConflict):
        _resolve(cloud, case_id, Decision.CLOSED)
    # WHEN the same decision is run again
    assert ops(["cases", "resolve", case_id, "--decision", "reached_by_phone", "--note", "explained by phone",
                "--by", "ops.li"]) == 0
    # THEN the work is finished: execution resumed, case resolved, the action recorded once, with the first note
    (execution,) = executions_for(cloud, loan_id)
    assert cloud.wait_execution(execution["name"])["status"] == "SUCCEEDED"
    assert entered_states(cloud, execution["name"])[-1] == "Notice delivered by a person"
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": case_id})["Item"]
    assert (case["state"], case["decision"], case["outcome"]) == ("RESOLVED", "reached_by_phone", "execution resumed")
    assert "pending" not in case
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED_BY_PERSON"
    assert [(a["decision"], a["note"]) for a in notice["human_actions"]] == [("reached_by_phone", "tried again")]
    # AND running it once more changes nothing and says so
    assert ops(["cases", "resolve", case_id, "--decision", "reached_by_phone", "--note", "again", "--by", "x"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["already_resolved"] is True


def test_alert_failure_keeps_the_case_and_contact_corrected_resends_when_the_execution_is_gone(
        cloud, platform, ops_topic_down, capsys):
    # GIVEN the ops topic refuses publishes: the case is written, the step retries, then the execution gives up
    borrower, loan_id, notice = _undeliverable(cloud, platform)
    (execution,) = executions_for(cloud, loan_id)
    assert cloud.wait_execution(execution["name"])["status"] == "FAILED"
    review_steps = [e for e in cloud.history(execution["name"])
                    if "OpenReviewCase" in e.get("taskScheduledEventDetails", {}).get("parameters", "")]
    assert len(review_steps) == 7  # the first try and the 6 retries of ReviewAlertNotSent
    (case,) = _cases_of(cloud, notice["notification_id"])  # retried steps found the same case
    assert case["state"] == "OPEN" and case["alerts"] == 0
    # WHEN the topic is back: the next watchdog run sends the alert the case never had
    ops_topic_down()
    watchdog = cloud.runtime.function("ReviewWatchdogFunction").name
    payload, is_error, _ = cloud.runtime.invoke(watchdog, {"source": "aws.events"})
    assert not is_error and case["case_id"] in json.loads(payload)["realerted"]
    assert [a["alerts"] for a in _alerts(cloud) if a["case_id"] == case["case_id"]] == [1]
    # WHEN ops correct the phone and resolve "contact corrected" though no execution waits any more
    new_phone = mobile()
    BORROWERS_SEEN.append({**borrower, "phone": new_phone})
    platform.borrowers.update_item(Key={"borrower_id": borrower["borrower_id"]},
                                   UpdateExpression="SET phone = :p", ExpressionAttributeValues={":p": new_phone})
    capsys.readouterr()
    assert ops(["cases", "resolve", case["case_id"], "--decision", "contact_corrected", "--corrected", "phone",
                "--note", "right number from the branch", "--by", "ops.li"]) == 0
    printed = capsys.readouterr()
    resend = f"{execution['name']}-r1"
    assert f"started execution {resend}" in printed.err
    cloud.wait_idle()
    # THEN a fresh execution resent the notice through the normal path, and it is delivered
    assert cloud.wait_execution(resend)["status"] == "SUCCEEDED"
    assert len(platform.sms_to(new_phone)) == 1
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED" and notice["resend_round"] == 1
    (action,) = notice["human_actions"]
    assert (action["decision"], action["round"]) == ("contact_corrected", 1)
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": case["case_id"]})["Item"]
    assert case["state"] == "RESOLVED" and case["outcome"] == f"resent: started execution {resend}"
    # AND resolving again starts nothing more
    assert ops(["cases", "resolve", case["case_id"], "--decision", "contact_corrected", "--corrected", "phone",
                "--note", "again", "--by", "ops.li"]) == 0
    assert [e["name"] for e in executions_for(cloud, loan_id)].count(resend) == 1


def test_reached_by_phone_on_a_case_nobody_waits_on_is_still_recorded(cloud, platform, ops_topic_down, capsys):
    # GIVEN a case whose execution is no longer running (its alert never went out and the execution failed)
    _, loan_id, notice = _undeliverable(cloud, platform, status="REJECTED")
    (execution,) = executions_for(cloud, loan_id)
    assert cloud.wait_execution(execution["name"])["status"] == "FAILED"
    ops_topic_down()
    # WHEN ops record that they reached the borrower by phone
    capsys.readouterr()
    assert ops(["cases", "resolve", notice["case_id"], "--decision", "reached_by_phone", "--note", "phoned",
                "--by", "ops.li"]) == 0
    # THEN the ledger and the case say so, and the command said what it did
    assert "no execution was waiting" in capsys.readouterr().err
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED_BY_PERSON"
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": notice["case_id"]})["Item"]
    assert case["state"] == "RESOLVED" and "no execution was waiting" in case["outcome"]


def test_contact_corrected_on_an_interim_notice_superseded_meanwhile_ends_superseded(cloud, platform):
    # GIVEN an interim notice in review, and a newer status of the same loan written meanwhile
    borrower, loan_id, first = _undeliverable(cloud, platform, status="SUBMITTED")
    platform.status(loan_id, borrower["borrower_id"], "DOCUMENTS_REQUIRED", 2)
    cloud.wait_idle()
    # WHEN ops resolve the first notice's case as "contact corrected"
    assert ops(["cases", "resolve", first["case_id"], "--decision", "contact_corrected", "--corrected", "phone",
                "--note", "fixed", "--by", "ops.li"]) == 0
    cloud.wait_idle()
    # THEN the first notice stands down as SUPERSEDED: no new "prepare_failed" case
    first = platform.ledger.get(first["notification_id"])
    assert first["state"] == "SUPERSEDED" and first["review_cases"] == 1
    assert [c["reason"] for c in _cases_of(cloud, first["notification_id"])] == ["no_channel_delivered"]
    assert cloud.wait_execution(first["execution_name"])["status"] == "SUCCEEDED"
    assert entered_states(cloud, first["execution_name"])[-1] == "Notice superseded"
    newer = next(n for n in platform.notices(loan_id) if n["version"] == 2)
    ops(["cases", "resolve", newer["case_id"], "--decision", "closed", "--note", "test done", "--by", "t"])
    cloud.wait_idle()


def test_a_notice_delivered_before_its_case_opens_gets_no_case(cloud, platform):
    # GIVEN a notice a late receipt confirmed (DELIVERED) while its execution was on its way to review
    notices = cloud.table("NotificationsTableName")
    nid = unique("L") + "-APPROVED-v1-x"
    seed_notice(notices, {"notification_id": nid, "loan_id": unique("L"), "borrower_id": "B-1", "status": "APPROVED",
                          "version": 1, "state": "DELIVERED", "attempts": [], "created_at": "2026-11-29"})
    callbacks = RecordingCallbacks()
    step = ReviewStep(notification_id=nid, loan_id="L-1", borrower_id="B-1", status="APPROVED", version=1,
                      reason="no_channel_delivered", task_token="token-1", execution_name=nid,
                      entered_at="2026-11-29T08:00:00Z")
    # WHEN the review step runs
    answer = open_case(step, reason=step.reason, task_token=step.task_token, ledger=platform.ledger,
                       cases=ReviewCases(cloud.table("ReviewCasesTableName")), alerts=RecordingAlerts(),
                       callbacks=callbacks, answer_within_s=3600)
    # THEN no case is opened, the execution is answered "delivered" at once, and DELIVERED stays
    assert answer["case_id"] is None and callbacks.answers == [("token-1", answer)]
    assert answer["decision"] == "delivered"
    assert _cases_of(cloud, nid) == []
    assert platform.ledger.get(nid)["state"] == "DELIVERED"
    # AND marking it for review later cannot overwrite DELIVERED either
    assert platform.ledger.mark_needs_review(nid, "x", "no_channel_delivered") is False
    assert platform.ledger.get(nid)["state"] == "DELIVERED"


def test_a_case_whose_notice_got_delivered_closes_itself_and_the_execution_ends_delivered(cloud, platform):
    # GIVEN an open case, and then a receipt confirming one of the notice's attempts after all
    _, loan_id, notice = _undeliverable(cloud, platform)
    platform.ledger.record_receipt(notice["notification_id"], 1, "test:Delivery", {"at": "2026-11-29T09:00:00.000Z",
                                                                   "status": "DELIVERED", "source": "test"},
                                   DeliveryStatus.DELIVERED)
    # WHEN the receipt path asks to close the case
    closed = close_case_if_delivered(notice["notification_id"], ledger=platform.ledger,
                                     cases=ReviewCases(cloud.table("ReviewCasesTableName")),
                                     callbacks=TaskCallbacks(cloud.client("stepfunctions")))
    # THEN the case is resolved by the system with a note, the notice is DELIVERED, the execution ends delivered
    assert closed == notice["case_id"]
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": closed})["Item"]
    assert (case["state"], case["decision"], case["resolved_by"]) == ("RESOLVED", "delivered", "loan-notify")
    assert "receipt" in case["note"]
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "DELIVERED" and notice["delivered_at"] == "2026-11-29T09:00:00.000Z"
    (execution,) = executions_for(cloud, loan_id)
    assert cloud.wait_execution(execution["name"])["status"] == "SUCCEEDED"
    assert entered_states(cloud, execution["name"])[-1] == "Notice delivered"


def _report_case(cloud, **fields):
    case = {"case_id": unique("case"), "kind": "borrower_report", "loan_id": unique("L"), "borrower_id": "B-1",
            "status": "-", "reason": "borrower_reports_not_notified", "state": "OPEN",
            "opened_at": "2026-11-29T00:00:00.000Z", "due_at": "2000-01-01T00:00:00.000Z", "answer_within_s": 3600,
            "alerts": 1, **fields}
    ReviewCases(cloud.table("ReviewCasesTableName")).put(case)
    return case


class ListedEarlier(ReviewCases):
    """The watchdog's view: the open cases as they were listed, before anything changed."""

    def __init__(self, table, listed):
        super().__init__(table)
        self.listed = listed

    def open_cases(self):
        return self.listed


def test_watchdog_skips_a_case_resolved_meanwhile_and_goes_on(cloud):
    # GIVEN two overdue cases, listed by the watchdog; then a person resolves the first one
    table = cloud.table("ReviewCasesTableName")
    first, second = _report_case(cloud), _report_case(cloud)
    assert ops(["cases", "resolve", first["case_id"], "--decision", "closed", "--note", "done", "--by", "t"]) == 0
    alerts = RecordingAlerts()
    # WHEN the run re-alerts what it listed
    realerted = realert_overdue(cases=ListedEarlier(table, [first, second]), alerts=alerts)
    # THEN the resolved case is skipped, without an alert, and the other one is re-alerted
    assert realerted == [second["case_id"]]
    assert [a["case_id"] for a in alerts.published] == [second["case_id"]]


def test_watchdog_publish_failure_leaves_the_case_due_for_the_next_run(cloud):
    # GIVEN an overdue case, and a topic that fails the first publish
    table = cloud.table("ReviewCasesTableName")
    case = _report_case(cloud)
    alerts, failed = RecordingAlerts(fail_first=1), []
    # WHEN the watchdog runs twice (15 minutes apart)
    first = realert_overdue(cases=ListedEarlier(table, [case]), alerts=alerts, on_error=lambda c, e: failed.append(c))
    second = realert_overdue(cases=ListedEarlier(table, [case]), alerts=alerts, on_error=lambda c, e: failed.append(c))
    # THEN the failed alert was not counted, and the next run sent it
    assert (first, failed, second) == ([], [case["case_id"]], [case["case_id"]])
    assert [a["alerts"] for a in alerts.published] == [2]
    assert table.get_item(Key={"case_id": case["case_id"]})["Item"]["alerts"] == 2


def test_human_actions_are_recorded_once_per_case_and_contact_corrected_counts_resend_rounds(cloud, platform):
    # GIVEN a notice
    nid = unique("N")
    seed_notice(cloud.table("NotificationsTableName"), {
        "notification_id": nid, "loan_id": unique("L"), "state": "NEEDS_REVIEW", "attempts": []})
    action = {"case_id": f"{nid}-case1", "decision": "contact_corrected", "note": "n", "by": "b", "at": "t"}
    # WHEN the same case's action is recorded twice (a retried resolve), then a second case's
    rounds = [platform.ledger.record_human_action(nid, action, None),
              platform.ledger.record_human_action(nid, action, None),
              platform.ledger.record_human_action(nid, {**action, "case_id": f"{nid}-case2"}, None)]
    # THEN each case counts once, and each contact_corrected opens the next resend round
    item = platform.ledger.get(nid)
    assert rounds == [1, 1, 2] and item["resend_round"] == 2
    assert [(a["case_id"], a["round"]) for a in item["human_actions"]] == [(f"{nid}-case1", 1), (f"{nid}-case2", 2)]


@pytest.mark.parametrize("final", ["DELIVERED", "DELIVERED_BY_PERSON", "CLOSED", "SUPERSEDED", "OPTED_OUT",
                                   "REJECTED"])
def test_standing_down_never_overwrites_a_final_state(cloud, platform, final):
    from loan_notify.vocabulary import NoticeState

    nid = unique("N")
    seed_notice(cloud.table("NotificationsTableName"), {"notification_id": nid, "state": final, "attempts": []})
    assert platform.ledger.mark_superseded(nid, "newer") is False
    assert platform.ledger.stand_down(nid, NoticeState.OPTED_OUT, "opted_out_non_critical") is False
    assert platform.ledger.get(nid)["state"] == final


def test_a_borrower_report_whose_alert_failed_is_alerted_by_the_next_watchdog_run(cloud, platform):
    from loan_notify.limits import Limits
    from loan_notify.review import report_not_notified

    # GIVEN a borrower's "I was never notified" report while the ops topic fails
    table = cloud.table("ReviewCasesTableName")
    loan_id = unique("L")
    with pytest.raises(ClientError):
        report_not_notified("B-1", loan_id, ledger=platform.ledger, cases=ReviewCases(table),
                            alerts=RecordingAlerts(fail_first=1), answer_within_s=3600,
                            limits=Limits(cloud.table("LimitsTableName"), pepper=b"test"))
    (case,) = [c for c in ReviewCases(table).open_cases() if c["loan_id"] == loan_id]
    assert case["alerts"] == 0
    # WHEN the watchdog runs, though the case is not yet overdue
    alerts = RecordingAlerts()
    realert_overdue(cases=ListedEarlier(table, [case]), alerts=alerts)
    # THEN the alert the case never had goes out, counted as its first
    assert [(a["case_id"], a["alerts"]) for a in alerts.published] == [(case["case_id"], 1)]
    assert table.get_item(Key={"case_id": case["case_id"]})["Item"]["alerts"] == 1
