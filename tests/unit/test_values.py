"""The value classes built by the quick constructor behave as the dataclasses they are."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import date
from decimal import Decimal

import pytest

from renewd.core.model import Anchor, Decision, Kind, Mailbox, StepKey

DAY = date(2026, 12, 1)


def mailbox(**changes: object) -> Mailbox:
    fields = {
        "mailbox_id": "mb-1", "account_id": "acct-1", "edition": "standard",
        "expires_on": DAY, "auto_renew": True, "balance": Decimal("500.00"),
        "renewal_fee": Decimal("120"), "currency": "CNY", "renewal_months": 12,
        "email": "a@example.com", "phone": "", "locale": "en", "domain": "",
        "domain_via_provider": False, "domain_expires_on": None,
    }  # fmt: skip
    return Mailbox(**{**fields, **changes})  # type: ignore[arg-type]


def test_defaults_keywords_and_positions_are_the_dataclasses() -> None:
    made = mailbox()
    assert made.anchor_day is None and made.line == 0
    by_position = Mailbox(*(getattr(made, f.name) for f in dataclasses.fields(Mailbox)))
    assert by_position == made and hash(by_position) == hash(made)
    decision = Decision(DAY, "mb-1", "acct-1", "remind", DAY, -3, Kind.NOTIFY, channel="sms")
    assert decision.anchor is Anchor.EXPIRY and decision.amount is None
    assert dataclasses.replace(decision, step=-1).key == StepKey("mb-1", "remind", DAY, -1)


def test_they_stay_frozen_and_complain_as_before() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        mailbox().balance = Decimal(0)  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'kind'"):
        Decision(DAY, "mb-1", "acct-1", "remind", DAY, -3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        mailbox(colour="red")


def test_a_pickled_value_comes_back_equal() -> None:
    values = [mailbox(line=7, anchor_day=31), StepKey("mb-1", "remind", DAY, 0)]
    values.append(Decision(DAY, "mb-1", "acct-1", "renew", DAY, -3, Kind.DEDUCT, amount=Decimal(1)))
    assert pickle.loads(pickle.dumps(values, pickle.HIGHEST_PROTOCOL)) == values  # noqa: S301
