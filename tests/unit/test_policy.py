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
