"""What a customer's message says: the variables for one decision (pure), and rendering them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from renewd.config.model import MessageSettings
from renewd.core.dates import add_months, format_date
from renewd.core.errors import RenewdError, suggest
from renewd.core.model import Decision, Kind, Mailbox
from renewd.policy.model import Policy, Rule

if TYPE_CHECKING:  # Jinja is loaded only by the commands that render
    from renewd.delivery.templating import Renderer

SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$"}


def money(amount: Decimal, currency: str) -> str:
    symbol = SYMBOLS.get(currency)
    value = f"{amount:,.2f}"
    return f"{symbol}{value}" if symbol else f"{currency} {value}"


def variables(
    mailbox: Mailbox, decision: Decision, policy: Policy, messages: MessageSettings
) -> dict[str, Any]:
    """Everything a template may use; only these names exist (templates render strictly)."""
    locale, day = mailbox.locale, decision.date
    deletion_on = mailbox.expires_on + timedelta(days=policy.deletion_after or 0)
    domain_day = mailbox.domain_expires_on
    fee, balance = mailbox.renewal_fee, mailbox.balance
    return {
        "brand": messages.brand,
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
        "renewal_url": messages.renewal_url.format(
            mailbox_id=mailbox.mailbox_id, account_id=mailbox.account_id
        ),
        "auto_renew": mailbox.auto_renew,
    }


SAMPLE_DAY = date(2027, 1, 1)


def sample_mailbox(locale: str) -> Mailbox:
    """A plausible paid mailbox with every optional field set, for checking templates."""
    chinese = locale.startswith("zh")
    return Mailbox(
        mailbox_id="postmaster-sales-team",
        account_id="acct-000042",
        edition="standard",
        expires_on=SAMPLE_DAY + timedelta(days=30),
        auto_renew=True,
        balance=Decimal("80.00"),
        renewal_fee=Decimal("1200.00"),
        currency="CNY" if chinese else "USD",
        renewal_months=12,
        email="postmaster-sales-team@example-company.com",
        phone="+8613800138000" if chinese else "+14155550123",
        locale=locale,
        domain="example-company.com",
        domain_via_provider=True,
        domain_expires_on=SAMPLE_DAY + timedelta(days=30),
    )


def sample_decision(rule: Rule, mailbox: Mailbox) -> Decision:
    """The rule's first step for the mailbox, dated on the day that step falls."""
    step = min(rule.steps)
    anchor = mailbox.anchor_date(rule.anchor) or mailbox.expires_on
    day = anchor + timedelta(days=step)
    return Decision(
        day, mailbox.mailbox_id, mailbox.account_id, rule.id, anchor, step, Kind.NOTIFY, rule.anchor
    )


def preview(
    policy: Policy,
    settings: MessageSettings,
    renderer: Renderer,
    rule_id: str,
    mailbox: Mailbox,
    day: date | None,
) -> list[tuple[str, str]]:
    """(heading, text) sections of what the customer would receive from one rule."""
    from renewd.delivery.templating import sms_segments

    rules = {rule.id: rule for rule in policy.rules}
    if rule_id not in rules:
        raise RenewdError(f"no rule {rule_id!r}{suggest(rule_id, rules)}")
    rule = rules[rule_id]
    decision = sample_decision(rule, mailbox)
    if day is not None:
        decision = replace(decision, date=day)
    values = variables(mailbox, decision, policy, settings)
    sections = []
    if "email" in rule.notify:
        email = renderer.email(rule.template, mailbox.locale, values)
        sections += [
            (f"email to {mailbox.email}", f"Subject: {email.subject}\n\n{email.text}"),
            ("email, HTML part", email.html),
        ]
    if "sms" in rule.notify:
        text = renderer.sms(rule.template, mailbox.locale, values)
        sections.append(
            (
                f"sms to {mailbox.phone or '(no phone)'}, {sms_segments(text)} segment(s)",
                text + "\n",
            )
        )
    return sections
