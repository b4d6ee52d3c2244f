from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from loan_notify.models import Borrower, ContactHealth
from loan_notify.policy import SPREAD_SECONDS, channel_plan, next_opening, window_closes_at
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
    shanghai = _borrower(locale="zh-CN")  # Asia/Shanghai by default
    night = datetime(2026, 11, 29, 15, 30, tzinfo=timezone.utc)  # 23:30 in Shanghai
    assert next_opening(LoanStatus.OVERDUE, shanghai, night) == datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)
    assert next_opening(LoanStatus.APPROVED, shanghai, night) is None
    sleeper = _borrower(time_zone="UTC", quiet_hours={"start": "22:00", "end": "07:30"})
    late = datetime(2026, 11, 29, 23, 0, tzinfo=timezone.utc)
    assert next_opening(LoanStatus.SETTLED, sleeper, late) == datetime(2026, 11, 30, 7, 30, tzinfo=timezone.utc)
    assert next_opening(LoanStatus.REJECTED, sleeper, late) is None  # critical: quiet hours do not hold it


# ---------------------------------------------------------------- send windows: the law wins, DST, unknown zones

UTC = timezone.utc


def _local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _inside(start: time, end: time, local: time) -> bool:
    """The window rule written out again, independently of SendWindow."""
    return start <= local < end if start <= end else (local >= start or local < end)


def _collection_open(instant: datetime, zone: str) -> bool:
    return _inside(time(8), time(21), instant.astimezone(ZoneInfo(zone)).time())


def test_collection_hours_win_when_quiet_hours_never_overlap_them():
    # GIVEN a borrower whose quiet hours cover the whole collection window (08:00-21:00 local)
    borrower = _borrower(time_zone="America/New_York", quiet_hours={"start": "08:00", "end": "21:00"})
    # WHEN a REPAYMENT_DUE is due at 03:00 local
    at_three = _local("America/New_York", 2026, 12, 1, 3, 0)
    # THEN it waits for 08:00 local (the quiet hours yield), it is not sent at 03:00
    assert next_opening(LoanStatus.REPAYMENT_DUE, borrower, at_three) == _local("America/New_York", 2026, 12, 1, 8, 0)
    # AND inside the collection window it goes now, quiet hours or not
    assert next_opening(LoanStatus.REPAYMENT_DUE, borrower, _local("America/New_York", 2026, 12, 1, 10, 0)) is None


@pytest.mark.parametrize("status", [LoanStatus.REPAYMENT_DUE, LoanStatus.OVERDUE])
@pytest.mark.parametrize("quiet", [None, ("08:00", "21:00"), ("07:00", "22:00"), ("21:00", "08:00"),
                                   ("12:00", "12:30"), ("20:50", "08:10")])
def test_a_collection_notice_is_never_sent_outside_collection_hours(status, quiet):
    quiet_hours = {"start": quiet[0], "end": quiet[1]} if quiet else None
    borrower = _borrower(time_zone="Asia/Shanghai", quiet_hours=quiet_hours)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for now in (start + timedelta(minutes=13 * n) for n in range(24 * 60 // 13 + 1)):
        opening = next_opening(status, borrower, now, spread_key="L-1-REPAYMENT_DUE-v1-abc")
        if opening is None:
            assert _collection_open(now, "Asia/Shanghai"), f"sent now at {now.astimezone(ZoneInfo('Asia/Shanghai'))}"
        else:
            assert opening > now and _collection_open(opening, "Asia/Shanghai"), (now, opening)


def _first_open_minute(now: datetime, is_open) -> datetime | None:
    """Brute force: None if open now, else the first whole minute after now that is open."""
    if is_open(now):
        return None
    minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while not is_open(minute):
        minute += timedelta(minutes=1)
    return minute


# (zone, UTC instant of a DST transition): fall-back and spring-forward in New York and London, 2026
_TRANSITIONS = [
    ("America/New_York", datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),  # 02:00 EDT -> 01:00 EST: 01:xx twice
    ("America/New_York", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),  # 02:00 EST -> 03:00 EDT: 02:xx never
    ("Europe/London", datetime(2026, 10, 25, 1, 0, tzinfo=UTC)),  # 02:00 BST -> 01:00 GMT
    ("Europe/London", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),  # 01:00 GMT -> 02:00 BST
]


@pytest.mark.parametrize("zone, transition", _TRANSITIONS)
@pytest.mark.parametrize("quiet", [("22:00", "01:30"), ("00:30", "02:30"), ("01:15", "01:45"), ("23:00", "02:00"),
                                   ("02:15", "07:00")])
def test_next_opening_is_the_first_open_instant_and_strictly_future_across_dst(zone, transition, quiet):
    # GIVEN quiet hours with an edge in (or next to) the repeated or skipped hour
    borrower = _borrower(time_zone=zone, quiet_hours={"start": quiet[0], "end": quiet[1]})
    start, end = (time.fromisoformat(quiet[0]), time.fromisoformat(quiet[1]))

    def awake(instant: datetime) -> bool:
        return not _inside(start, end, instant.astimezone(ZoneInfo(zone)).time())

    # WHEN a non-critical notice is prepared at any minute around the transition
    for now in (transition + timedelta(minutes=m) for m in range(-8 * 60, 8 * 60, 7)):
        opening = next_opening(LoanStatus.SETTLED, borrower, now)
        # THEN it is "now" exactly when the borrower is awake, else the first awake instant, strictly in the future
        assert opening == _first_open_minute(now, awake), (now, opening)


@pytest.mark.parametrize("zone, transition", _TRANSITIONS)
def test_collection_window_across_dst_matches_the_wall_clock(zone, transition):
    borrower = _borrower(time_zone=zone)
    for now in (transition + timedelta(minutes=m) for m in range(-30 * 60, 30 * 60, 11)):
        opening = next_opening(LoanStatus.OVERDUE, borrower, now)
        assert opening == _first_open_minute(now, lambda i: _collection_open(i, zone)), (now, opening)


def test_the_prepare_wait_loop_ends_after_one_wait_across_dst():
    # GIVEN the Prepare -> Wait -> Prepare loop: after a Wait, Prepare's "now" is max(clock, the instant waited for)
    for zone, transition in _TRANSITIONS:
        for quiet in (("22:00", "01:30"), ("01:15", "01:45"), ("00:30", "02:30")):
            borrower = _borrower(time_zone=zone, quiet_hours={"start": quiet[0], "end": quiet[1]})
            for clock in (transition + timedelta(minutes=m) for m in range(-3 * 60, 3 * 60, 5)):
                for status in (LoanStatus.SETTLED, LoanStatus.REPAYMENT_DUE):
                    # WHEN the notice waits for what next_opening returned and is prepared again
                    now, rounds = clock, 0
                    while (opening := next_opening(status, borrower, now, spread_key="L-1-SETTLED-v1")) is not None:
                        rounds += 1
                        assert rounds < 3, f"{zone} {quiet} {status}: looping at {clock} (wait_until {opening})"
                        now = max(clock, opening)
                    # THEN it waited at most once: never a wait_until in the past, never a loop


def test_unknown_us_zone_sends_only_inside_collection_hours_in_every_us_zone():
    # GIVEN an en-US borrower without a time zone
    borrower = _borrower(locale="en-US")
    # WHEN an OVERDUE notice is due at 08:30 in New York, 03:30 in Honolulu (January)
    morning_in_new_york = datetime(2027, 1, 12, 13, 30, tzinfo=UTC)
    # THEN it waits for 08:00 in Honolulu (13:00 New York, 18:00 UTC): inside collection hours everywhere
    assert next_opening(LoanStatus.OVERDUE, borrower, morning_in_new_york) == datetime(2027, 1, 12, 18, 0, tzinfo=UTC)
    assert next_opening(LoanStatus.OVERDUE, borrower, datetime(2027, 1, 12, 18, 30, tzinfo=UTC)) is None
    # AND at 21:30 in New York (16:30 in Honolulu) it is too late for New York: it waits for the next afternoon
    late = datetime(2027, 1, 13, 2, 30, tzinfo=UTC)
    assert next_opening(LoanStatus.OVERDUE, borrower, late) == datetime(2027, 1, 13, 18, 0, tzinfo=UTC)
    # AND the window closes at 21:00 New York time
    assert window_closes_at(LoanStatus.OVERDUE, borrower, datetime(2027, 1, 12, 19, 0, tzinfo=UTC)) == datetime(
        2027, 1, 13, 2, 0, tzinfo=UTC)
    # AND a notice without a legal window is not held by the rule
    assert next_opening(LoanStatus.APPROVED, borrower, morning_in_new_york) is None


def test_unknown_us_zone_in_summer_is_noon_in_new_york_to_nine_pm():
    borrower = _borrower(locale="en-US")
    assert next_opening(LoanStatus.REPAYMENT_DUE, borrower, datetime(2027, 7, 1, 12, 0, tzinfo=UTC)) == datetime(
        2027, 7, 1, 18, 0, tzinfo=UTC)  # 14:00 EDT, 08:00 HST
    assert window_closes_at(LoanStatus.REPAYMENT_DUE, borrower, datetime(2027, 7, 1, 20, 0, tzinfo=UTC)) == datetime(
        2027, 7, 2, 1, 0, tzinfo=UTC)  # 21:00 EDT


def test_unknown_chinese_zone_stays_shanghai():
    borrower = _borrower(locale="zh-CN")
    assert next_opening(LoanStatus.OVERDUE, borrower, datetime(2027, 1, 12, 0, 30, tzinfo=UTC)) is None  # 08:30


def test_waiting_notices_are_spread_over_the_first_minutes_of_the_window():
    # GIVEN many REPAYMENT_DUE notices prepared at 03:00 local
    borrower = _borrower(time_zone="Asia/Shanghai")
    night = _local("Asia/Shanghai", 2026, 12, 1, 3, 0)
    eight = _local("Asia/Shanghai", 2026, 12, 1, 8, 0)
    openings = [next_opening(LoanStatus.REPAYMENT_DUE, borrower, night, spread_key=f"L-{n}-REPAYMENT_DUE-v1")
                for n in range(200)]
    # THEN each is released at its own point of 08:00-08:10, the same one every time it is asked
    assert all(eight <= o < eight + timedelta(seconds=SPREAD_SECONDS) for o in openings)
    assert len({o.replace(second=0) for o in openings}) == SPREAD_SECONDS // 60
    assert openings[7] == next_opening(LoanStatus.REPAYMENT_DUE, borrower, night, spread_key="L-7-REPAYMENT_DUE-v1")
    assert all(o.microsecond == 0 for o in openings)


def test_the_spread_never_goes_past_the_end_of_a_short_window():
    # GIVEN quiet hours that leave a three-minute window (07:00-07:03)
    borrower = _borrower(time_zone="UTC", quiet_hours={"start": "07:03", "end": "07:00"})
    now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    for n in range(100):
        opening = next_opening(LoanStatus.SETTLED, borrower, now, spread_key=f"id-{n}")
        assert datetime(2026, 12, 1, 7, 0, tzinfo=UTC) <= opening < datetime(2026, 12, 1, 7, 3, tzinfo=UTC)


def test_window_closes_at_names_the_end_of_the_legal_window():
    borrower = _borrower(time_zone="Europe/London", quiet_hours={"start": "12:00", "end": "13:00"})
    # no legal window: nothing closes
    assert window_closes_at(LoanStatus.APPROVED, borrower, datetime(2026, 12, 1, 12, 0, tzinfo=UTC)) is None
    assert window_closes_at(LoanStatus.SETTLED, borrower, datetime(2026, 12, 1, 12, 0, tzinfo=UTC)) is None
    # inside: 21:00 local today (quiet hours do not shorten the legal window)
    assert window_closes_at(LoanStatus.REPAYMENT_DUE, borrower, datetime(2026, 12, 1, 12, 30, tzinfo=UTC)) == (
        datetime(2026, 12, 1, 21, 0, tzinfo=UTC))
    # outside, after it closed: when it closed, so a sender sees the window is gone
    assert window_closes_at(LoanStatus.OVERDUE, borrower, datetime(2026, 12, 1, 23, 0, tzinfo=UTC)) == (
        datetime(2026, 12, 1, 21, 0, tzinfo=UTC))
    # in summer time (BST), 21:00 local is 20:00 UTC
    assert window_closes_at(LoanStatus.OVERDUE, borrower, datetime(2026, 7, 1, 9, 0, tzinfo=UTC)) == (
        datetime(2026, 7, 1, 20, 0, tzinfo=UTC))
