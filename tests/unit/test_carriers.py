"""Carrier rules as data: the table validates on load, and each rule catches what it is there for."""

import pytest
from pydantic import ValidationError

from loan_notify import carriers
from loan_notify.carriers import CountryRules, compose, parse_rules, region_of, violations
from loan_notify.vocabulary import Locale

CN = CountryRules(calling_code=86, locales=[Locale.ZH_CN], signature="【信贷通知】", template_id_required=True,
                  template_ids={"loan.approved": {Locale.ZH_CN: "CN-1"}})
US = CountryRules.model_validate({"calling_code": 1, "locales": ["en-US"], "allowed_link_hosts": ["app.example"],
                                  "opt_out": {"required_for": "non_critical",
                                              "wording": {"en-US": "Reply STOP to opt out."}}})
IN = CountryRules(calling_code=91, locales=[Locale.EN_US], template_id_required=True, entity_id_required=True,
                  entity_id="110100", template_ids={"loan.approved": {Locale.EN_US: "1107"}})


def check(text, country, *, template_id="loan.approved", locale=Locale.ZH_CN, critical=True, budget=2):
    return violations(text, template_id=template_id, locale=locale, country=country, critical=critical,
                      budget=budget)


def test_the_shipped_table_loads_and_names_the_countries_it_serves():
    table = carriers.rules()
    assert {"CN", "US", "CA", "IN"} <= set(table.countries)
    assert table.countries["CN"].signature == "【信贷通知】" and table.countries["IN"].entity_id


def test_cn_requires_the_signature_at_the_start():
    assert check("【信贷通知】王伟您好，您的贷款L-1已批准。", CN) == []
    assert check("王伟您好，您的贷款L-1已批准。【信贷通知】", CN) == ["signature: must start with 【信贷通知】"]


def test_cn_allows_no_links_unless_allow_listed():
    assert check("【信贷通知】详情见 https://loans.example.cn/x", CN) == ["links: loans.example.cn is not allow-listed"]
    assert check("【信贷通知】详情见 www.loan-platform.com", CN) == [
        "links: www.loan-platform.com is not allow-listed"]
    us_text = "Hi, see https://app.example/loans."
    assert check(us_text, US, locale=Locale.EN_US) == []  # allow-listed host


def test_a_template_without_a_registered_id_fails_for_a_country_that_requires_one():
    text = "【信贷通知】王伟您好，您的贷款L-1已逾期。"
    assert check(text, CN, template_id="loan.overdue") == [
        "registered template id: none for loan.overdue zh-CN"]
    assert check(text, CN, locale=Locale.EN_US) == ["registered template id: none for loan.approved en-US"]
    assert CN.registered_template("loan.approved", Locale.ZH_CN) == "CN-1"


def test_a_country_that_needs_an_entity_cannot_be_configured_without_one():
    with pytest.raises(ValidationError, match="entity_id_required without an entity_id"):
        CountryRules(calling_code=91, locales=[Locale.EN_US], entity_id_required=True)
    assert check("Hi Ada, loan L-1 is approved.", IN, locale=Locale.EN_US) == []


def test_us_requires_opt_out_wording_where_the_rule_says():
    text = "Hi Ada, a repayment on loan L-1 is due."
    assert check(text, US, locale=Locale.EN_US, critical=False) == [
        "opt-out: must end with 'Reply STOP to opt out.'"]
    assert check(text, US, locale=Locale.EN_US, critical=True) == []  # required for non-critical ones only here
    composed = compose(text, US, Locale.EN_US, critical=False)
    assert composed == "Hi Ada, a repayment on loan L-1 is due. Reply STOP to opt out."
    assert check(composed, US, locale=Locale.EN_US, critical=False) == []


def test_compose_puts_the_signature_first():
    assert compose("王伟您好。", CN, Locale.ZH_CN, critical=True) == "【信贷通知】王伟您好。"


def test_the_segment_budget_and_a_carriers_own_cap():
    text = "【信贷通知】" + "贷" * 100  # 106 UCS-2 units: 2 parts
    assert check(text, CN) == []
    assert check(text, CN, budget=1) == ["segments: 2 > 1 (UCS-2, 106 units)"]
    capped = CN.model_copy(update={"max_segments": 1})
    assert check(text, capped) == ["segments: 2 > 1 (UCS-2, 106 units)"]


@pytest.mark.parametrize("table, error", [
    ("countries: {CN: {calling_code: 86, locales: [zh-CN], signature: '[Loans]'}}\ndefault: {locales: [en-US]}",
     "in 【】"),
    ("countries: {CN: {calling_code: 1, locales: [zh-CN]}}\ndefault: {locales: [en-US]}", "is not \\+86"),
    ("countries: {XX: {calling_code: 1, locales: [en-US]}}\ndefault: {locales: [en-US]}", "XX is not"),
    ("countries: {US: {calling_code: 1, locales: [en-US, zh-CN], opt_out: {required_for: all, "
     "wording: {en-US: Reply STOP}}}}\ndefault: {locales: [en-US]}", "opt-out wording missing"),
    ("countries: {}\ndefault: {locales: [en-US], unknown_rule: true}", "unknown_rule"),
])
def test_a_broken_table_fails_on_load_naming_the_problem(table, error):
    with pytest.raises(ValidationError, match=error):
        parse_rules(table)


def test_the_destination_country_comes_from_the_number():
    assert region_of("+8613800138000") == "CN"
    assert region_of("+14155550123") == "US" and region_of("+16135550123") == "CA"  # both +1
    assert region_of("+919876543210") == "IN"
    assert region_of("not a number") is None and region_of(None) is None
