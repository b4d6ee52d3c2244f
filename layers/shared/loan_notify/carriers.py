"""SMS carrier rules as data (content/carriers.yaml), validated with pydantic, and the checks each rule makes.

The rules of the destination country shape every SMS (a signature in front, opt-out wording at the end) and say what
a send must carry (the registered template id, the sender entity). `violations` is what `make templates` runs for
every template and locale a country serves; the renderer applies the same rules, so what is checked is what is sent.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loan_notify.sms import measure
from loan_notify.vocabulary import Locale

RULES_FILE = Path(__file__).parent / "content" / "carriers.yaml"
DEFAULT_COUNTRY = "*"  # any country the table does not name

# A link in an SMS: a URL with a scheme, or a bare host name with a common top-level domain.
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)[^\s，。]+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|cn|net|org|io|in|us|"
                   r"ca|example|app|me|ly)\b(?:/[^\s，。]*)?")
_SIGNATURE = re.compile(r"^【[^【】\s]{2,16}】$")


class OptOut(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    required_for: Literal["all", "non_critical"]
    wording: dict[Locale, str]


class CountryRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    calling_code: int | None = None
    locales: list[Locale] = Field(min_length=1)
    signature: str | None = None
    allowed_link_hosts: list[str] = Field(default_factory=list)
    template_id_required: bool = False
    template_ids: dict[str, dict[Locale, str]] = Field(default_factory=dict)
    entity_id_required: bool = False
    entity_id: str | None = None
    opt_out: OptOut | None = None
    max_segments: int | None = Field(default=None, ge=1)

    @field_validator("signature")
    @classmethod
    def _bracketed(cls, value: str | None) -> str | None:
        if value is not None and not _SIGNATURE.match(value):
            raise ValueError("a signature is 2-16 characters in 【】, e.g. 【信贷通知】")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CountryRules:
        if self.entity_id_required and not self.entity_id:
            raise ValueError("entity_id_required without an entity_id")
        if self.opt_out is not None:
            missing = [loc.value for loc in self.locales if loc not in self.opt_out.wording]
            if missing:
                raise ValueError(f"opt-out wording missing for {missing}")
        return self

    def opt_out_wording(self, locale: Locale, critical: bool) -> str | None:
        if self.opt_out is None or (critical and self.opt_out.required_for == "non_critical"):
            return None
        return self.opt_out.wording[locale]

    def registered_template(self, template_id: str, locale: Locale) -> str | None:
        return self.template_ids.get(template_id, {}).get(locale)


class CarrierRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    countries: dict[str, CountryRules]
    default: CountryRules

    @field_validator("countries")
    @classmethod
    def _region_codes(cls, value: dict[str, CountryRules]) -> dict[str, CountryRules]:
        import phonenumbers

        for region, rules in value.items():
            if phonenumbers.country_code_for_region(region) == 0:
                raise ValueError(f"{region} is not an ISO 3166 region phonenumbers knows")
            if rules.calling_code != phonenumbers.country_code_for_region(region):
                raise ValueError(f"{region}: calling_code {rules.calling_code} is not "
                                 f"+{phonenumbers.country_code_for_region(region)}")
        return value

    def for_country(self, region: str | None) -> CountryRules:
        return self.countries.get(region or "", self.default)

    def served(self) -> list[tuple[str, CountryRules]]:
        return [*self.countries.items(), (DEFAULT_COUNTRY, self.default)]


def parse_rules(text: str) -> CarrierRules:
    import yaml  # on first use: a cold start that sends no SMS never imports it

    return CarrierRules.model_validate(yaml.safe_load(text))


@functools.cache
def rules() -> CarrierRules:
    return parse_rules(RULES_FILE.read_text(encoding="utf-8"))


def region_of(phone: str | None) -> str | None:
    """ISO region of an E.164 number (US, CA and the other +1 countries told apart), None when unparseable."""
    if not phone:
        return None
    import phonenumbers  # on first use: its metadata is large

    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed)


def compose(body: str, country: CountryRules, locale: Locale, *, critical: bool) -> str:
    """The SMS as the country's carriers want it: signature first, opt-out wording last where required."""
    text = f"{country.signature}{body}" if country.signature else body
    wording = country.opt_out_wording(locale, critical)
    if wording:
        text = f"{text}{'' if locale is Locale.ZH_CN else ' '}{wording}"
    return text


def violations(text: str, *, template_id: str, locale: Locale, country: CountryRules, critical: bool,
               budget: int) -> list[str]:
    """Every rule the SMS `text` breaks for this country, each as 'rule: detail' (empty: the carriers accept it)."""
    found: list[str] = []
    if country.signature and not text.startswith(country.signature):
        found.append(f"signature: must start with {country.signature}")
    for link in _LINK.findall(text):
        host = re.sub(r"(?i)^(https?://)?", "", link).split("/")[0].lower()
        if host not in country.allowed_link_hosts:
            found.append(f"links: {host} is not allow-listed")
    if country.template_id_required and not country.registered_template(template_id, locale):
        found.append(f"registered template id: none for {template_id} {locale.value}")
    if country.entity_id_required and not country.entity_id:
        found.append("entity id: none registered")
    wording = country.opt_out_wording(locale, critical)
    if wording and not text.rstrip().endswith(wording):
        found.append(f"opt-out: must end with {wording!r}")
    size = measure(text)
    limit = min(budget, country.max_segments or budget)
    if size.segments > limit:
        found.append(f"segments: {size.segments} > {limit} ({size.encoding.value}, {size.units} units)")
    return found
