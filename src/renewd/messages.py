"""What a customer's message says: the variables for one decision (pure), and rendering them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2

from renewd.dates import add_months, format_date
from renewd.model import Decision, Mailbox
from renewd.policy.model import Policy
from renewd.templating import SHIPPED, environment

SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$"}


@dataclass(frozen=True)
class Branding:
    brand: str = "Example Mail"
    renewal_url: str = "https://mail.example.com/renew?mailbox={mailbox_id}"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def money(amount: Decimal, currency: str) -> str:
    symbol = SYMBOLS.get(currency)
    value = f"{amount:,.2f}"
    return f"{symbol}{value}" if symbol else f"{currency} {value}"


def variables(
    mailbox: Mailbox, decision: Decision, policy: Policy, branding: Branding
) -> dict[str, Any]:
    """Everything a template may use; only these names exist (templates render strictly)."""
    locale, day = mailbox.locale, decision.date
    deletion_on = mailbox.expires_on + timedelta(days=policy.deletion_after or 0)
    domain_day = mailbox.domain_expires_on
    fee, balance = mailbox.renewal_fee, mailbox.balance
    return {
        "brand": branding.brand,
        "mailbox": mailbox.mailbox_id,
        "account_id": mailbox.account_id,
        "edition": mailbox.edition,
        "domain": mailbox.domain,
        "locale": locale,
        "expires_on": format_date(mailbox.expires_on, locale),
        "new_expires_on": format_date(
            add_months(mailbox.expires_on, mailbox.renewal_months), locale
        ),
        "deletion_on": format_date(deletion_on, locale)
        if policy.deletion_after is not None
        else "",
        "domain_expires_on": format_date(domain_day, locale) if domain_day else "",
        "days_left": (mailbox.expires_on - day).days,
        "days_since_expiry": (day - mailbox.expires_on).days,
        "days_to_deletion": (deletion_on - day).days,
        "domain_days_left": (domain_day - day).days if domain_day else 0,
        "fee": money(fee, mailbox.currency),
        "balance": money(balance, mailbox.currency),
        "balance_after": money(balance - fee, mailbox.currency),
        "shortfall": money(max(fee - balance, Decimal(0)), mailbox.currency),
        "renewal_url": branding.renewal_url.format(
            mailbox_id=mailbox.mailbox_id, account_id=mailbox.account_id
        ),
        "auto_renew": mailbox.auto_renew,
    }


class Renderer:
    """Templates from the operator's directory, then the shipped ones; strict and sandboxed."""

    def __init__(self, override: Path | None, default_locale: str) -> None:
        roots = [str(p) for p in (override, SHIPPED) if p is not None]
        self.env = environment(jinja2.FileSystemLoader(roots))
        self.default_locale = default_locale

    def _part(self, locale: str, template: str, part: str, values: dict[str, Any]) -> str:
        try:
            loaded = self.env.get_template(f"{locale}/{template}/{part}")
        except jinja2.TemplateNotFound:
            loaded = self.env.get_template(f"{self.default_locale}/{template}/{part}")
        return loaded.render(values).strip()

    def email(self, template: str, locale: str, values: dict[str, Any]) -> Rendered:
        subject = " ".join(self._part(locale, template, "subject.txt", values).split())
        return Rendered(
            subject=subject,
            text=self._part(locale, template, "body.txt", values) + "\n",
            html=self._part(locale, template, "body.html", values) + "\n",
        )

    def sms(self, template: str, locale: str, values: dict[str, Any]) -> str:
        return self._part(locale, template, "sms.txt", values)
