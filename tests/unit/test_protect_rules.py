"""The protect configuration's country rules: one per country in both templates, ALLOW exactly for those served."""

import phonenumbers
import pytest
from samtranslator.yaml_helper import yaml_parse

from localcloud.protect_rules import TEMPLATES, countries, main


def evaluate(node, served: list[str]):
    """The few intrinsic functions a rule uses, evaluated as CloudFormation would."""
    if isinstance(node, dict):
        (name, args), = node.items()
        if name == "Ref":
            assert args == "ServedCountries"
            return served
        if name == "Fn::Join":
            return args[0].join(evaluate(args[1], served))
        if name == "Fn::Split":
            return evaluate(args[1], served).split(args[0])
        if name == "Fn::Select":
            return evaluate(args[1], served)[int(args[0])]
        raise AssertionError(name)
    if isinstance(node, list):
        return [evaluate(item, served) for item in node]
    return node


def rules(path):
    resource = yaml_parse(path.read_text())["Resources"]["SmsProtectConfiguration"]
    return resource["Properties"]["CountryRuleSet"]["SMS"]


def test_both_templates_hold_the_generated_rules():
    assert main(["--check"]) == 0


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
@pytest.mark.parametrize("served", [["CN", "US"], ["US"], ["CN"], ["NO", "US", "GB"]])
def test_only_the_served_countries_are_allowed(path, served):
    statuses = {r["CountryCode"]: evaluate(r["ProtectStatus"], served) for r in rules(path)}
    assert sorted(statuses) == countries()
    assert {c for c, s in statuses.items() if s == "ALLOW"} == set(served)
    assert {s for c, s in statuses.items() if c not in served} == {"BLOCK"}


def test_every_country_a_number_can_be_placed_in_has_a_rule():
    missing = set(phonenumbers.SUPPORTED_REGIONS) - set(countries())
    assert missing == {"AC", "TA", "XK"}  # not ISO 3166-1 codes: End User Messaging has no rule for them
