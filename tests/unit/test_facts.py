"""The engine's memo reads only the facts a policy names, worked out by the same formulas as
`derive`: for any policy, mailbox, day, money and cycle it answers as if given every fact."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renewd.core.cycles import CycleState
from renewd.core.facts import FACTS, derive, deriver
from renewd.core.model import Mailbox
from renewd.policy.engine import Engine
from renewd.policy.loader import load_policy
from strategies import mailboxes, policies

from support import TODAY

STATES = st.builds(
    CycleState,
    renewed=st.booleans(),
    reminded=st.booleans(),
    undelivered=st.frozensets(st.sampled_from(["email", "sms"])),
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    policy=policies(),
    boxes=mailboxes(),
    offset=st.integers(-3, 3),
    available=st.decimals(-10, 2000, places=2),
    state=STATES,
    short=st.booleans(),
)
def test_the_engine_answers_alike_from_the_facts_it_reads(
    tmp_path: Path,
    policy: str,
    boxes: list[Mailbox],
    offset: int,
    available: Decimal,
    state: CycleState,
    short: bool,
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy, encoding="utf-8")
    engine, plain = Engine(load_policy([path])), Engine(load_policy([path]))
    day = TODAY + timedelta(days=offset)
    for mailbox in boxes:
        for is_paid in (True, False):
            facts = derive(
                mailbox, day, is_paid=is_paid, available=available, cycle=state, short=short
            )
            values = deriver(sorted(FACTS))(mailbox, day, is_paid, available, state, short)
            assert values == tuple(facts.get(name) for name in sorted(FACTS))
            fast = engine.matches_of(mailbox, day, is_paid, available, state, short)
            assert fast == plain.matches(facts)
