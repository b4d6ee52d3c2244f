from datetime import datetime, timezone

import pytest

from loan_notify.errors import (
    NoticeAlreadySettled,
    NoticeSuperseded,
    PaceWait,
    PermanentChannelError,
    ProviderThrottled,
    SendOutcomeUnknown,
    SendWindowClosed,
    TransientChannelError,
)
from loan_notify.models import Borrower, LoanImage, NoticeRef
from loan_notify.notify import prepare, send
from loan_notify.pacing import MemoryPaceStore, Pacer
from loan_notify.vocabulary import Channel
from tests.unit.fakes import FakeBorrowers, FakeLedger, RecordingSender

LOAN = LoanImage.model_validate({"loan_id": "L-1", "borrower_id": "B-1", "status": "APPROVED",
                                 "updated_at": "2026-11-29T08:00:00Z", "version": 2, "amount": 9000,
                                 "currency": "USD"})
REF = NoticeRef(notification_id=LOAN.notification_id, loan_id="L-1", borrower_id="B-1", status="APPROVED",
                version=2)


@pytest.fixture
def ledger():
    fake = FakeLedger()
    fake.open_notice(LOAN, LOAN.notification_id)
    return fake


@pytest.fixture
def borrowers():
    return FakeBorrowers(Borrower(borrower_id="B-1", name="Ada", phone="+14155550123", email="ada@example.com"))


def test_prepare_returns_channel_names_and_the_template_to_use(borrowers):
    plan = prepare(REF, borrowers=borrowers)
    assert plan["channels"] == ["SMS", "EMAIL"] and plan["count"] == 2
    assert plan["template_id"] == "loan.approved"
    assert "Ada" not in str(plan) and "+1415" not in str(plan)


def test_first_attempt_pins_plan_policy_and_content_hash(ledger, borrowers):
    senders = {Channel.SMS: [RecordingSender("sns-sms")]}
    send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders, plan=["SMS", "EMAIL"])
    item = ledger.items[REF.notification_id]
    assert item["plan"] == ["SMS", "EMAIL"] and item["template_id"] == "loan.approved"
    assert item["content_hash"] == item["attempts"][0]["content_hash"] and len(item["content_hash"]) == 64


def test_send_records_the_attempt_and_is_idempotent(ledger, borrowers):
    sms = RecordingSender("sns-sms")
    senders = {Channel.SMS: [sms], Channel.EMAIL: [RecordingSender("ses-v2")]}
    first = send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders)
    again = send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders)
    assert len(sms.sent) == 1 and sms.sent[0][0] == "+14155550123" and "9,000.00 USD" in sms.sent[0][1].text
    assert again["replayed"] is True and again["message_id"] == first["message_id"]
    item = ledger.items[REF.notification_id]
    assert item["state"] == "SENT" and [a["result"] for a in item["attempts"]] == ["SENT"]


@pytest.mark.parametrize("error, result", [
    (PermanentChannelError("bad", reason="invalid_phone"), "FAILED_PERMANENT"),
    (TransientChannelError("down", reason="provider_InternalError"), "FAILED_TRANSIENT"),
    (SendOutcomeUnknown("lost", reason="provider_answer_lost"), "OUTCOME_UNKNOWN"),
])
def test_failed_attempts_are_recorded_then_raised_for_the_state_machine(ledger, borrowers, error, result):
    senders = {Channel.SMS: [RecordingSender("sns-sms", fail_with=error)]}
    with pytest.raises(type(error)):
        send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders)
    attempt = ledger.items[REF.notification_id]["attempts"][-1]
    assert attempt["result"] == result and attempt["error"] == error.reason
    assert ledger.items[REF.notification_id]["state"] == "STARTED"


def test_a_provider_down_hands_over_to_the_backup_provider_at_once(ledger, borrowers):
    down = RecordingSender("sns-sms@us-east-1", fail_with=TransientChannelError("503", reason="provider_InternalError"))
    backup = RecordingSender("sns-sms@us-west-2")
    result = send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders={Channel.SMS: [down, backup]})
    assert result["provider"] == "sns-sms@us-west-2" and len(backup.sent) == 1
    attempts = ledger.items[REF.notification_id]["attempts"]
    assert [(a["provider"], a["result"]) for a in attempts] == [
        ("sns-sms@us-east-1", "FAILED_TRANSIENT"), ("sns-sms@us-west-2", "SENT")]


def test_every_provider_down_is_transient_for_the_state_machine_to_retry(ledger, borrowers):
    error = TransientChannelError("503", reason="provider_InternalError")
    senders = {Channel.SMS: [RecordingSender("a", fail_with=error), RecordingSender("b", fail_with=error)]}
    with pytest.raises(TransientChannelError):
        send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders)
    assert [a["attempt"] for a in ledger.items[REF.notification_id]["attempts"]] == [1, 2]


def test_a_throttle_is_a_wait_never_a_failover_and_records_no_attempt(ledger, borrowers):
    # GIVEN a primary provider that answers "rate exceeded" and a healthy backup
    throttled = RecordingSender("sns-sms@us-east-1",
                                fail_with=ProviderThrottled("slow down", reason="provider_Throttled"))
    backup = RecordingSender("sns-sms@us-west-2")
    # WHEN the notice is sent
    with pytest.raises(ProviderThrottled):
        send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders={Channel.SMS: [throttled, backup]})
    # THEN nothing went to the backup, no attempt was spent, and the throttle is counted
    item = ledger.items[REF.notification_id]
    assert backup.sent == [] and item["attempts"] == [] and "pending_attempt" not in item
    assert item["throttled"] == 1


class SteppedClock:
    """The pacer's clock, moved on by the test (and by a stalled write)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_held_token_is_awaited_after_the_reads_and_a_send_held_up_past_it_takes_a_new_one(ledger, borrowers):
    # GIVEN a provider paced at 1/s whose next moment is 0.6 s away, and a sender that can wait in place
    pacer_clock = SteppedClock()
    pacer = Pacer(MemoryPaceStore(), {"sns-sms": 1}, clock=pacer_clock)
    assert pacer.acquire("sns-sms@us-east-1") == 0.0  # someone else's send: the next moment is a second on
    pacer_clock.now += 0.4
    sms = RecordingSender("sns-sms@us-east-1")
    waited = []

    def pause(seconds: float) -> bool:
        waited.append(round(seconds, 3))
        pacer_clock.now += seconds
        return True

    # WHEN the notice is sent
    send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders={Channel.SMS: [sms]}, pacer=pacer, pause=pause)
    # THEN the sender waited in place for its moment, once, and then sent
    assert waited == [0.601] and len(sms.sent) == 1

    # GIVEN a second notice whose pending-attempt write stalls for half a second once its moment came
    other = LoanImage.model_validate({**LOAN.model_dump(mode="json"), "loan_id": "L-2"})
    ledger.open_notice(other, other.notification_id)
    ref = NoticeRef(notification_id=other.notification_id, loan_id="L-2", borrower_id="B-1", status="APPROVED",
                    version=2)
    begin = ledger.begin_attempt

    def slow_begin(notification_id, pending):
        begin(notification_id, pending)
        pacer_clock.now += 0.5

    ledger.begin_attempt = slow_begin
    # WHEN it is sent
    with pytest.raises(PaceWait):
        send(ref, Channel.SMS, ledger=ledger, borrowers=borrowers, senders={Channel.SMS: [sms]}, pacer=pacer,
             pause=pause)
    # THEN it did not go out late (it would crowd the next send): no attempt, no pending record, a new token next
    item = ledger.items[ref.notification_id]
    assert len(sms.sent) == 1 and item["attempts"] == [] and "pending_attempt" not in item


def test_an_unknown_outcome_is_never_retried_blindly(ledger, borrowers):
    # GIVEN a send whose answer was lost after the request went out (the provider may have the message)
    lost = RecordingSender("sns-sms@us-east-1", fail_with=SendOutcomeUnknown("read timeout",
                                                                              reason="provider_answer_lost"))
    backup = RecordingSender("sns-sms@us-west-2")
    email = RecordingSender("ses-v2@us-east-1")
    senders = {Channel.SMS: [lost, backup], Channel.EMAIL: [email]}
    with pytest.raises(SendOutcomeUnknown):
        send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders)
    # WHEN the step is retried, or the execution moves to the next channel
    lost.fail_with = None
    for channel in (Channel.SMS, Channel.EMAIL):
        with pytest.raises(SendOutcomeUnknown):
            send(REF, channel, ledger=ledger, borrowers=borrowers, senders=senders)
    # THEN no second message went anywhere: the backup was not tried and nothing else was sent
    assert lost.sent == [] and backup.sent == [] and email.sent == []
    assert [a["result"] for a in ledger.items[REF.notification_id]["attempts"]] == ["OUTCOME_UNKNOWN"]


def test_a_step_interrupted_between_intent_and_record_does_not_send_again(ledger, borrowers):
    # GIVEN a send step that recorded "about to send" and then died (a Lambda timeout or service error)
    ledger.begin_attempt(REF.notification_id, {"attempt": 1, "round": 0, "channel": "SMS", "provider": "sns-sms",
                                               "started_at": "2026-11-29T08:00:00.000Z"})
    sms = RecordingSender("sns-sms")
    # WHEN the state machine retries the step
    with pytest.raises(SendOutcomeUnknown):
        send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders={Channel.SMS: [sms]})
    # THEN it does not resend: the attempt is recorded as an unknown outcome for a person to settle
    assert sms.sent == []
    (attempt,) = ledger.items[REF.notification_id]["attempts"]
    assert (attempt["result"], attempt["error"]) == ("OUTCOME_UNKNOWN", "step_interrupted")


def test_a_notice_delivered_meanwhile_is_not_sent_on_the_next_channel(ledger, borrowers):
    # GIVEN a late receipt made the notice DELIVERED after the execution had moved on
    ledger.items[REF.notification_id]["state"] = "DELIVERED"
    email = RecordingSender("ses-v2")
    # WHEN the next channel's send runs THEN nothing is sent: the execution is told the notice is settled
    with pytest.raises(NoticeAlreadySettled):
        send(REF, Channel.EMAIL, ledger=ledger, borrowers=borrowers, senders={Channel.EMAIL: [email]})
    assert email.sent == []


def test_a_superseded_notice_stands_down_before_any_send(ledger, borrowers):
    ledger.items[REF.notification_id].update(state="SUPERSEDED", superseded_by="L-1-REJECTED-3")
    sms = RecordingSender("sns-sms")
    with pytest.raises(NoticeSuperseded):
        send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders={Channel.SMS: [sms]})
    assert sms.sent == []


def test_a_collection_notice_still_queued_when_its_window_shuts_is_held_for_the_next_one():
    # GIVEN a REPAYMENT_DUE for a New York borrower, reaching the sender at 22:00 local (the window shut at 21:00)
    loan = LoanImage.model_validate({"loan_id": "L-9", "borrower_id": "B-9", "status": "REPAYMENT_DUE",
                                     "updated_at": "2026-11-29T08:00:00Z", "version": 1, "amount": 120,
                                     "currency": "USD"})
    ref = NoticeRef(notification_id=loan.notification_id, loan_id="L-9", borrower_id="B-9", status="REPAYMENT_DUE",
                    version=1)
    ledger = FakeLedger()
    ledger.open_notice(loan, loan.notification_id)
    borrowers = FakeBorrowers(Borrower(borrower_id="B-9", phone="+14155550123", time_zone="America/New_York"))
    sms = RecordingSender("sns-sms")
    late = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)  # 22:00 in New York
    # WHEN the send runs THEN nothing goes out: it is recorded as held, for the state machine to wait again
    with pytest.raises(SendWindowClosed):
        send(ref, Channel.SMS, ledger=ledger, borrowers=borrowers, senders={Channel.SMS: [sms]}, clock=lambda: late)
    assert sms.sent == [] and ledger.items[loan.notification_id]["windows_missed"] == 1
    assert ledger.items[loan.notification_id]["window_missed_at"] == "2026-11-30T02:00:00.000Z"


def test_the_sms_provider_gets_the_sms_for_its_country_and_the_attempt_records_its_size(ledger, borrowers):
    # GIVEN an approval for a +1 borrower WHEN it is sent by SMS
    sms = RecordingSender("sns-sms")
    send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders={Channel.SMS: [sms]}, sms_segments=2)
    # THEN the provider got the SMS shaped for the US (opt-out wording), within its budget
    (_, message), = sms.sent
    assert message.country == "US" and message.text.endswith("Reply STOP to opt out.")
    # AND the attempt records how it was encoded and how many parts the carrier sends
    (attempt,) = ledger.items[REF.notification_id]["attempts"]
    assert attempt["sms_encoding"] == "GSM-7" and attempt["sms_segments"] == message.segments == 1
    assert attempt["sms_country"] == "US" and "sms_template_id" not in attempt  # the US registers none


def test_email_and_push_get_the_whole_rendering_with_the_preferences_link(ledger, borrowers):
    email = RecordingSender("ses-v2")
    send(REF, Channel.EMAIL, ledger=ledger, borrowers=borrowers, senders={Channel.EMAIL: [email]},
         preferences_url="https://app.example/preferences")
    (_, message), = email.sent
    assert message.subject == "Your loan is approved" and message.critical
    assert message.unsubscribe_url is None  # critical: no List-Unsubscribe
    assert f"https://app.example/preferences?notice={REF.notification_id}" in message.html  # the footer link
    assert "sms_segments" not in ledger.items[REF.notification_id]["attempts"][0]


def test_only_a_non_critical_email_gets_the_one_click_unsubscribe_link_of_its_borrower_and_notice(borrowers):
    # GIVEN a link maker (the borrower API's signed route) and a non-critical notice beside the critical REF
    links = []

    def unsubscribe(borrower_id, notification_id):
        links.append((borrower_id, notification_id))
        return f"https://api.example.com/unsubscribe?t={borrower_id}.{notification_id}"

    loan = LoanImage.model_validate({**LOAN.model_dump(mode="json"), "status": "DISBURSED", "version": 3})
    ledger = FakeLedger()
    ledger.open_notice(loan, loan.notification_id)
    disbursed = NoticeRef(notification_id=loan.notification_id, loan_id="L-1", borrower_id="B-1",
                          status="DISBURSED", version=3)
    ledger.open_notice(LOAN, LOAN.notification_id)
    email = RecordingSender("ses-v2")
    # WHEN both go by email
    for ref in (disbursed, REF):
        send(ref, Channel.EMAIL, ledger=ledger, borrowers=borrowers, senders={Channel.EMAIL: [email]},
             preferences_url="https://app.example/preferences", unsubscribe=unsubscribe)
    # THEN the non-critical one carries its own link; the critical one none (and no link was even signed for it)
    (_, paid_out), (_, approved) = email.sent
    assert paid_out.unsubscribe_url == f"https://api.example.com/unsubscribe?t=B-1.{disbursed.notification_id}"
    assert approved.unsubscribe_url is None and links == [("B-1", disbursed.notification_id)]
    assert f"https://app.example/preferences?notice={disbursed.notification_id}" in paid_out.html  # footer


def test_a_send_no_receipt_can_confirm_is_never_called_delivered(borrowers):
    # GIVEN a provider with no event destination (it cannot confirm), for a non-critical and a critical notice
    interim = LoanImage.model_validate({**LOAN.model_dump(mode="json"), "status": "DISBURSED"})
    ledger = FakeLedger()
    for loan in (LOAN, interim):
        ledger.open_notice(loan, loan.notification_id)
    ref = NoticeRef(notification_id=interim.notification_id, loan_id="L-1", borrower_id="B-1", status="DISBURSED",
                    version=2)
    senders = {Channel.SMS: [RecordingSender("sms-voice@us-west-2", confirms=False)]}
    # WHEN each is sent through it
    critical = send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders)
    other = send(ref, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders)
    # THEN neither is DELIVERED: the non-critical one ends SENT_UNCONFIRMED, the critical one stays SENT (it goes on)
    assert critical["confirms"] is False and other["confirms"] is False
    assert ledger.items[ref.notification_id]["state"] == "SENT_UNCONFIRMED"
    assert ledger.items[REF.notification_id]["state"] == "SENT"


def test_a_second_copy_that_read_the_notice_before_the_first_sent_sends_nothing(ledger, borrowers):
    # GIVEN the outbox delivered one send twice (SQS: at least once), and copy B read the notice before copy A sent
    sms = RecordingSender("sns-sms")
    senders = {Channel.SMS: [sms]}
    read_by_b = {**ledger.items[REF.notification_id], "attempts": []}
    first = send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders)
    reads = iter([read_by_b])
    real_get = ledger.get
    ledger.get = lambda notification_id: next(reads, None) or real_get(notification_id)
    # WHEN copy B goes on from its stale read
    with pytest.raises(PaceWait):  # its attempt cannot begin on a notice that changed: nothing goes out
        send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders)
    again = send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders=senders)  # B comes back
    # THEN the borrower got one message, B replays A's, and the ledger has one attempt
    assert len(sms.sent) == 1 and again == {**first, "replayed": True}
    assert [a["attempt"] for a in ledger.items[REF.notification_id]["attempts"]] == [1]


def test_a_borrower_row_gone_or_broken_at_send_time_is_told_to_the_execution_at_once():
    from loan_notify.errors import BorrowerNotFound, BorrowerRecordInvalid
    from loan_notify.models import SendRequest
    from loan_notify.outbox import deliver

    class Told:
        def __init__(self):
            self.failures = []

        def failure(self, token, error, cause):
            self.failures.append((token, error, cause))
            return True

    request = SendRequest.model_validate({"task_token": "tok", "notification_id": REF.notification_id,
                                          "loan_id": "L-1", "borrower_id": "B-1", "status": "APPROVED",
                                          "version": 2, "channel": "SMS", "plan": ["SMS", "EMAIL"]})
    for error in (BorrowerNotFound("borrower B-1 does not exist"),
                  BorrowerRecordInvalid("borrower B-1's record does not fit the data contract: phone (string_type)")):
        told = Told()

        def failing_send(*_args, error=error, **_kwargs):
            raise error

        # a person takes it now (the state machine opens a case), not after a hundred receives and a dead letter
        assert deliver(request, send=failing_send, callbacks=told, ledger=None, providers_per_channel=1) == \
            {"told": type(error).__name__}
        assert told.failures == [("tok", type(error).__name__, f"{error.reason}: {error}")]


def test_a_second_copy_that_finds_the_first_calling_the_provider_comes_back_after_the_call(ledger, borrowers):
    # GIVEN copy A of a send has begun its attempt and is calling the provider right now
    from loan_notify.notify import IN_FLIGHT_RETRY_S, RACED_RETRY_S

    sms = RecordingSender("sns-sms")
    ledger.begin_attempt(REF.notification_id, {"attempt": 1, "round": 0, "channel": "SMS", "provider": "sns-sms",
                                               "started_at": "2026-11-29T08:00:00.000Z"})
    read_by_b = {**ledger.items[REF.notification_id]}
    read_by_b.pop("pending_attempt")
    reads = iter([read_by_b])
    real_get = ledger.get
    ledger.get = lambda notification_id: next(reads, None) or real_get(notification_id)
    # WHEN copy B, which read the notice before A began, tries to begin the same attempt
    with pytest.raises(PaceWait) as paced:
        send(REF, Channel.SMS, ledger=ledger, borrowers=borrowers, senders={Channel.SMS: [sms]})
    # THEN nothing went out, and B comes back after a provider call's time, not in a moment (when it would find A's
    # attempt still pending and hand the notice to a person as an unknown outcome)
    assert sms.sent == [] and paced.value.seconds == IN_FLIGHT_RETRY_S > RACED_RETRY_S
