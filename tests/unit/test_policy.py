from loan_notify.models import Borrower, ContactHealth
from loan_notify.policy import channel_plan
from loan_notify.vocabulary import Channel, LoanStatus


def _borrower(**overrides):
    data = {"borrower_id": "B-1", "phone": "+14155550123", "email": "a@example.com"}
    return Borrower.model_validate({**data, **overrides})


def test_default_order_is_sms_then_email():
    assert channel_plan(LoanStatus.SUBMITTED, _borrower()) == [Channel.SMS, Channel.EMAIL]


def test_borrower_preference_reorders_within_the_policy():
    assert channel_plan(LoanStatus.APPROVED, _borrower(preferred_channels=["EMAIL"])) == [Channel.EMAIL, Channel.SMS]


def test_dead_contacts_are_left_out():
    borrower = _borrower(email_health=ContactHealth(bounced=True))
    assert channel_plan(LoanStatus.APPROVED, borrower) == [Channel.SMS]
    assert channel_plan(LoanStatus.APPROVED, _borrower(phone=None)) == [Channel.EMAIL]


def test_sms_stop_holds_for_every_notice_but_email_opt_out_only_for_non_critical():
    borrower = _borrower(phone_health=ContactHealth(opted_out=True), email_health=ContactHealth(opted_out=True))
    assert channel_plan(LoanStatus.REJECTED, borrower) == [Channel.EMAIL]  # critical
    assert channel_plan(LoanStatus.SETTLED, borrower) == []  # not critical


def test_app_users_get_push_and_the_inbox_in_the_plan():
    borrower = _borrower(app_user=True, push_endpoint_arn="arn:aws:sns:us-east-1:1:endpoint/GCM/app/abc")
    assert channel_plan(LoanStatus.APPROVED, borrower) == [Channel.SMS, Channel.PUSH, Channel.EMAIL, Channel.INBOX]
    assert channel_plan(LoanStatus.APPROVED, _borrower(app_user=True, phone=None, email=None)) == [Channel.INBOX]


def test_the_policy_table_is_complete_and_consistent():
    from loan_notify.policy import COLLECTION_HOURS, POLICIES

    assert set(POLICIES) == set(LoanStatus)
    for status, policy in POLICIES.items():
        assert policy.channels and len(set(policy.channels)) == len(policy.channels), status
        assert policy.confirm_within_s > 0
        assert not (policy.critical and policy.supersedable), f"{status}: a critical notice is never superseded"
    assert POLICIES[LoanStatus.REJECTED].critical and POLICIES[LoanStatus.REJECTED].fallback
    assert POLICIES[LoanStatus.OVERDUE].window == COLLECTION_HOURS


def test_send_window_waits_for_eight_local_and_quiet_hours_hold_non_critical_notices():
    from datetime import datetime, timezone

    from loan_notify.policy import next_opening

    shanghai = _borrower(locale="zh-CN")  # Asia/Shanghai by default
    night = datetime(2026, 11, 29, 15, 30, tzinfo=timezone.utc)  # 23:30 in Shanghai
    assert next_opening(LoanStatus.OVERDUE, shanghai, night) == datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)
    assert next_opening(LoanStatus.APPROVED, shanghai, night) is None
    sleeper = _borrower(time_zone="UTC", quiet_hours={"start": "22:00", "end": "07:30"})
    late = datetime(2026, 11, 29, 23, 0, tzinfo=timezone.utc)
    assert next_opening(LoanStatus.SETTLED, sleeper, late) == datetime(2026, 11, 30, 7, 30, tzinfo=timezone.utc)
    assert next_opening(LoanStatus.REJECTED, sleeper, late) is None  # critical: quiet hours do not hold it
