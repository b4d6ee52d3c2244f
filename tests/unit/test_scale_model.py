"""The scale model, run small: the month-end burst keeps its goals (a regression in pacing shows here)."""

from dataclasses import replace

from loadtools.scale_model import EMAIL, SMS, Settings, report, run

SMALL = Settings(n=2_000, spread_s=60.0, critical=10)


def test_a_burst_drains_at_the_provider_quota_with_critical_notices_first():
    # GIVEN 2,000 REPAYMENT_DUE released across the first minute of the window, 10 APPROVED written meanwhile
    result = run(SMALL)
    # THEN the batch drains at the SMS quota, nothing throttles, falls back or reaches a person,
    assert result.sent[SMS] + result.sent[EMAIL] == 2_000
    assert result.drain_ratio() <= 1.1
    assert result.throttled_per_notice() <= 0.05
    assert (result.fallbacks, result.review_cases, result.failure_queue) == (0, 0, 0)
    # AND every critical notice reached its provider within 5 seconds of its write
    assert len(result.critical_latency_s) == 10
    assert max(result.critical_latency_s) <= 5.0
    assert result.goals_met()
    assert "goals met" in report(result)[-1]


def test_aimd_keeps_throttles_rare_when_the_real_sms_quota_is_below_the_configured_rate():
    # GIVEN the SMS provider really allows 15/s where the template says 20/s
    result = run(replace(SMALL, real_sms_rate=15.0))
    # THEN throttled calls stay under 5% of sends and the drain stays near N/real quota
    assert 0 < result.throttled_per_notice() <= 0.05
    assert result.drain_ratio() <= 1.1
    assert result.fallbacks == result.review_cases == 0


def test_nothing_is_sent_after_the_window_end_and_the_rest_waits_for_the_next_window():
    # GIVEN a window that closes 5 minutes after it opens, far too soon for 2,000 SMS at 2/s
    result = run(replace(SMALL, sms_rate=2.0, email_share=0.0, critical=0, window_end=SMALL.window_open + 300))
    # THEN no bulk notice is sent after the end; the rest is handed back to wait for the next window
    assert result.sent_after_window == 0
    assert 500 <= result.sent[SMS] <= 600
    assert result.sent[SMS] + result.deferred_to_next_window == 2_000
