"""The evaluator makes its decisions, and the simulator reads its mailboxes back from disk,
without the dataclass's own `__init__`: what they make must be the very value that `__init__`
makes, and a class whose `__init__` does more is refused."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field, fields, replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renewd.core.model import Anchor, Decision, Kind, StepKey, constructor
from renewd.core.money import Funds
from renewd.plan.actions import decision, step_key
from renewd.plan.packed import pack, unpack

from support import BASE


def test_a_decision_made_fast_is_the_decision() -> None:
    values = (
        date(2027, 1, 12), "mb-1", "acct-1", "auto-renew", date(2027, 1, 15), -3, Kind.DEDUCT,
        Anchor.EXPIRY, "", "", Decimal("120.00"), "CNY", "", Funds(Decimal("150.00")),
        date(2028, 1, 15), 15,
    )  # fmt: skip
    made, expected = decision(*values), Decision(*values)
    assert made == expected and hash(made) == hash(expected)
    assert [getattr(made, f.name) for f in fields(Decision)] == list(values)
    with pytest.raises(AttributeError):
        made.step = 0  # type: ignore[misc]  # still frozen
    key = step_key("mb-1", "auto-renew", date(2027, 1, 15), -3)
    assert key == StepKey("mb-1", "auto-renew", date(2027, 1, 15), -3) == made.key


@dataclass(frozen=True, slots=True)
class Checked:
    amount: Decimal

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError(self.amount)


@dataclass(slots=True)
class Defaulted:
    items: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Unslotted:
    name: str


@pytest.mark.parametrize("cls", [Checked, Defaulted, Unslotted])
def test_a_class_whose_init_does_more_is_refused(cls: type) -> None:
    with pytest.raises(TypeError, match="not a plain slotted dataclass"):
        constructor(cls)


@given(
    balance=st.decimals(allow_nan=False, allow_infinity=False),
    fee=st.sampled_from(["120.00", "0", "-0.00", "1E+3", "9.5000", "0.10"]),
    expires=st.dates(),
    domain=st.one_of(st.none(), st.dates()),
    anchor=st.one_of(st.none(), st.integers(1, 31)),
    name=st.text(max_size=8),
)
def test_a_mailbox_waiting_on_disk_comes_back_the_same(
    balance: Decimal,
    fee: str,
    expires: date,
    domain: date | None,
    anchor: int | None,
    name: str,
) -> None:
    mailbox = replace(
        BASE,
        mailbox_id=name,
        expires_on=expires,
        balance=balance,
        renewal_fee=Decimal(fee),
        domain_expires_on=domain,
        anchor_day=anchor,
        line=7,
    )
    back = unpack(pickle.loads(pickle.dumps(pack(mailbox))))  # noqa: S301 - our own bytes
    assert back == mailbox
    assert [str(back.balance), str(back.renewal_fee)] == [str(balance), fee]  # exponent kept
