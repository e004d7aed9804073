"""explain agrees with dry-run: random policies and mailboxes, missed days, disputed accounts and
steps done before; every mailbox's decisions are the plan's, and each rule's verdict matches."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renewd.core.history import MemoryHistory
from renewd.core.model import Mailbox
from renewd.plan.evaluate import Evaluator
from renewd.plan.explain import ACTS, NO, SUPERSEDED, explain
from renewd.policy.loader import load_policy
from strategies import mailboxes, policies

from support import ROOT, TODAY

SHIPPED = (ROOT / "rules" / "lifecycle.yaml").read_text(encoding="utf-8")


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    policy=st.one_of(policies(), st.just(SHIPPED)),
    boxes=mailboxes(),
    missed=st.integers(0, 3),
    disputed=st.sets(st.sampled_from([f"acct-{n}" for n in range(4)]), max_size=1),
    earlier=st.one_of(st.none(), st.integers(0, 4)),
)
def test_explain_agrees_with_dry_run(
    tmp_path: Path,
    policy: str,
    boxes: list[Mailbox],
    missed: int,
    disputed: set[str],
    earlier: int | None,
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy, encoding="utf-8")
    evaluator = Evaluator(load_policy([path]))
    history = MemoryHistory()
    if earlier is not None:  # a run that day (0: today, again): its steps are done
        before = evaluator.window(TODAY - timedelta(days=earlier))
        history.record(evaluator.plan(boxes, before, history, disputed).decisions)
    window = evaluator.window(TODAY, TODAY - timedelta(days=missed + 1))
    plan = list(evaluator.plan(boxes, window, history, disputed).decisions)
    for box in boxes:
        account = [b for b in boxes if b.account_id == box.account_id]
        found = explain(evaluator, box, account, window, history, box.account_id in disputed)
        mine = [d for d in plan if d.mailbox_id == box.mailbox_id]
        assert found.decisions == mine
        for verdict in found.verdicts:
            own = [d for d in mine if d.rule == verdict.rule.id]
            if verdict.status == ACTS:
                assert own == list(verdict.decisions)
                assert not any(d.superseded_by for d in own)
                rule = verdict.rule
                if not own:  # acting with nothing to do: only SMS, and no phone to send to
                    assert not (rule.deduct or rule.delete) and set(rule.notify) == {"sms"}
                    assert not box.phone
            elif verdict.status == SUPERSEDED:
                assert own and all(d.superseded_by == verdict.superseded_by for d in own)
            else:
                assert own == []
            assert (verdict.status == NO) == bool(verdict.failed)
        acting = {v.rule.id for v in found.verdicts if v.status == ACTS}
        assert {d.rule for d in mine if not d.superseded_by} <= acting
