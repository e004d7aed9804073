"""What a customer's message says: the variables for one decision (pure), and rendering them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from renewd.config.model import Config, MessageSettings
from renewd.core.cycles import CycleState, cycle_of
from renewd.core.errors import RenewdError, suggest
from renewd.core.model import Decision, Kind, Mailbox
from renewd.core.money import Funds
from renewd.delivery.formats import Formats, formats_for
from renewd.policy.model import Policy, Rule

if TYPE_CHECKING:  # Jinja is loaded only by the commands that render
    from renewd.delivery.templating import Renderer


def variables(
    mailbox: Mailbox,
    decision: Decision,
    policy: Policy,
    messages: MessageSettings,
    declined: bool = False,
    formats: Formats | None = None,
) -> dict[str, Any]:
    """Everything a template may use; only these names exist (templates render strictly).

    The money is what the decision saw (one model for deciding and telling): `balance` is what
    the account holds once the charges before this one are made, `committed` what renewals of
    the same account due earlier will take of it. `declined`: billing refused the charge, so no
    balance figure explains the failure. Dates of a renewal come from the cycle model, anchored.
    `formats`: how the message writes money and dates (`formats_for`; default: the row's locale).
    `retry_on`: the next day the policy tries a failed auto-renewal again, if it does.
    """
    locale, day = mailbox.locale, decision.date
    shown = formats or formats_for(locale, (locale,), locale)
    format_date, fee, currency = shown.date, mailbox.renewal_fee, mailbox.currency

    def money(amount: Decimal) -> str:
        return shown.money(amount, currency, sms=decision.channel == "sms")

    deletion_on = mailbox.expires_on + timedelta(days=policy.deletion_after or 0)
    domain_day = mailbox.domain_expires_on
    funds = decision.funds or Funds(mailbox.balance)
    next_expiry = decision.next_expiry or cycle_of(mailbox, CycleState()).next_end
    auto_days = policy.auto_renew_days
    one_day = timedelta(days=1)
    since = (day - mailbox.expires_on).days
    retry = next((step for step in policy.retry_steps if step > since), None)
    return {
        "brand": messages.brand,
        "mailbox": mailbox.mailbox_id,
        "account_id": mailbox.account_id,
        "edition": mailbox.edition,
        "is_paid": mailbox.edition in policy.paid_editions,
        "domain": mailbox.domain,
        "locale": locale,
        "expires_on": format_date(mailbox.expires_on),
        "last_day": format_date(mailbox.expires_on - one_day),
        "new_expires_on": format_date(next_expiry),
        "new_last_day": format_date(next_expiry - one_day),
        "deletion_on": format_date(deletion_on) if policy.deletion_after is not None else "",
        "domain_expires_on": format_date(domain_day) if domain_day else "",
        "days_left": (mailbox.expires_on - day).days,
        "days_since_expiry": since,
        "days_to_deletion": (deletion_on - day).days,
        "domain_days_left": (domain_day - day).days if domain_day else 0,
        "auto_renew": mailbox.auto_renew,
        "auto_renew_days": auto_days or 0,
        "auto_renew_on": format_date(mailbox.expires_on - auto_days * one_day) if auto_days else "",
        "retry_on": format_date(mailbox.expires_on + retry * one_day) if retry is not None else "",
        "fee": money(fee),
        "free": fee == 0,
        "balance": money(funds.balance),
        "committed": money(funds.committed),
        "has_committed": funds.committed > 0,
        "balance_after": money(funds.balance - fee),
        "shortfall": money(funds.shortfall(fee)),
        "declined": declined,
        "renewal_url": messages.renewal_url.format(
            mailbox_id=quote(mailbox.mailbox_id, safe=""),
            account_id=quote(mailbox.account_id, safe=""),
        ),
    }


SAMPLE_DAY = date(2027, 1, 1)
SAMPLE_CURRENCIES = {"zh": "CNY", "de": "EUR", "ja": "JPY", "ko": "KRW", "fr": "EUR"}


def sample_mailbox(locale: str) -> Mailbox:
    """A plausible paid mailbox with every optional field set, for checking templates."""
    chinese = locale.startswith("zh")
    currency = SAMPLE_CURRENCIES.get(locale.partition("-")[0].lower(), "USD")
    return Mailbox(
        mailbox_id="postmaster-sales-team",
        account_id="acct-000042",
        edition="standard",
        expires_on=SAMPLE_DAY + timedelta(days=30),
        auto_renew=True,
        balance=Decimal("80.00"),
        renewal_fee=Decimal("1200.00"),
        currency=currency,
        renewal_months=12,
        email="postmaster-sales-team@example-company.com",
        phone="+8613800138000" if chinese else "+14155550123",
        locale=locale,
        domain="example-company.com",
        domain_via_provider=True,
        domain_expires_on=SAMPLE_DAY + timedelta(days=30),
    )


def sample_decision(rule: Rule, mailbox: Mailbox) -> Decision:
    """The rule's first step for the mailbox, dated on the day that step falls; a rule that
    deducts is shown paid from a balance that covers the fee."""
    step = min(rule.steps)
    anchor = mailbox.anchor_date(rule.anchor) or mailbox.expires_on
    day = anchor + timedelta(days=step)
    balance = mailbox.balance + (mailbox.renewal_fee if rule.deduct else 0)
    return Decision(
        day,
        mailbox.mailbox_id,
        mailbox.account_id,
        rule.id,
        anchor,
        step,
        Kind.NOTIFY,
        rule.anchor,
        funds=Funds(balance),
    )


def preview(
    policy: Policy,
    config: Config,
    renderer: Renderer,
    rule_id: str,
    mailbox: Mailbox,
    day: date | None,
) -> list[tuple[str, str]]:
    """(heading, text) sections of what the customer would receive from one rule, in the
    locale the mailbox's messages are written in (`formats.written_in`)."""
    from renewd.delivery.gsm import sms_segments

    rules = {rule.id: rule for rule in policy.rules}
    if rule_id not in rules:
        raise RenewdError(f"no rule {rule_id!r}{suggest(rule_id, rules)}")
    rule = rules[rule_id]
    decision = sample_decision(rule, mailbox)
    if day is not None:
        decision = replace(decision, date=day)
    formats = formats_for(mailbox.locale, config.locales, config.default_locale)

    def values(channel: str) -> dict[str, Any]:
        told = replace(decision, channel=channel)  # an SMS writes some currencies otherwise
        return variables(mailbox, told, policy, config.messages, formats=formats)

    sections = []
    if "email" in rule.notify:
        email = renderer.email(rule.template, formats.written, values("email"))
        sections += [
            (f"email to {mailbox.email}", f"Subject: {email.subject}\n\n{email.text}"),
            ("email, HTML part", email.html),
        ]
    if "sms" in rule.notify:
        text = renderer.sms(rule.template, formats.written, values("sms"))
        sections.append(
            (
                f"sms to {mailbox.phone or '(no phone)'}, {sms_segments(text)} segment(s)",
                text + "\n",
            )
        )
    return sections
