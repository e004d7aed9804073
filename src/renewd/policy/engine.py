"""The compiled policy running in durable_rules: facts in, ids of matching rules out.

durable_rules 2.0.28 has traps this module exists to contain:
- `post()` consumes an event at its first matching rule, so each mailbox is asserted as a fact and
  retracted again: every rule whose condition holds fires once.
- its Python `Host` starts two timer threads that race the actions, runs batch actions late on
  background threads, and swallows exceptions raised in actions. We drive the engine's own C
  interface instead (the same calls the Host makes), in the caller's thread, one fact at a time,
  and read the id of each rule that fired from the engine's answer: no actions, no threads.
- a ruleset name cannot be registered twice, so every compiled policy gets a fresh name.

Each fact is asserted alone and retracted, so the answer depends only on the values of the facts
the policy reads: it is kept per combination of them (a bounded memo), and the engine is asked
once per combination. A number compared only with constants counts by where it falls among them
(12 and 13 answer alike when the policy names 7 and 15), so a simulation over months asks the
engine a few hundred questions instead of millions. The memo's key is worked out from the
mailbox directly (`matches_of`), only for the facts the policy reads, by the formulas `derive`
itself is made of (`core.facts.FORMULAS`): the same values, so the same key and the same answer,
without building the whole set of facts for each mailbox and day.
"""

from __future__ import annotations

import itertools
import json
from bisect import bisect
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import durable_rules_engine

from renewd.core.cycles import CycleState
from renewd.core.errors import Problem, ProblemsError
from renewd.core.facts import FACTS, FactType, derive, deriver
from renewd.core.model import Mailbox
from renewd.policy.conditions import comparisons, engine_value, referenced, to_durable
from renewd.policy.model import Policy

_names = itertools.count(1)
HANDLED = 0
MEMO = 1 << 16  # answers kept; past that the memo starts afresh (facts that read money vary)


class Engine:
    """One policy, compiled once, evaluated many times in a single thread."""

    def __init__(self, policy: Policy) -> None:
        self._serial = itertools.count()
        self._name = f"renewd-{policy.digest or 'policy'}-{next(_names)}"
        top = max((rule.priority for rule in policy.rules), default=0)
        definition = {
            rule.id: {
                "all": [{"m": to_durable(rule.when)}],
                # durable_rules runs lower `pri` first; ours is "higher is more specific".
                "pri": top - rule.priority,
            }
            for rule in policy.rules
        }
        self.definition_json = json.dumps(definition, sort_keys=True)
        self.fields = sorted(set().union(*(referenced(rule.when) for rule in policy.rules)))
        self._memo: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._ranked = _ranked(policy, self.fields)
        self._derive = deriver(self.fields)
        try:
            self._handle = durable_rules_engine.create_ruleset(self._name, self.definition_json)
        except Exception as exc:  # the engine's own error type, with a numeric code
            where = policy.sources[0] if policy.sources else "policy"
            message = (
                f"durable_rules refused the compiled policy (a condition nested too deep?): {exc}"
            )
            raise ProblemsError([Problem(where, 0, message)]) from exc

    def matches(self, facts: dict[str, Any]) -> tuple[str, ...]:
        """Ids of every rule whose condition holds for these facts, in engine order."""
        return self._answer(list(map(facts.get, self.fields)), lambda: facts)

    def matches_of(
        self,
        mailbox: Mailbox,
        day: date,
        is_paid: bool,
        available: Decimal,
        cycle: CycleState,
        short: bool = False,
    ) -> tuple[str, ...]:
        """`matches(derive(mailbox, day, ...))`, with only the facts the policy reads worked
        out (by the same formulas: `core.facts.deriver`) unless the engine must be asked."""
        values = list(self._derive(mailbox, day, is_paid, available, cycle, short))

        def facts() -> dict[str, Any]:
            return derive(
                mailbox, day, is_paid=is_paid, available=available, cycle=cycle, short=short
            )

        return self._answer(values, facts)

    def _answer(self, values: list[Any], facts: Callable[[], dict[str, Any]]) -> tuple[str, ...]:
        """The memo's answer for the values of `fields` (None: absent; no fact is None); on a
        miss the engine is asked with `facts()`."""
        for index, bounds, named in self._ranked:
            value = values[index]
            if value is not None and value not in named:
                values[index] = (bisect(bounds, value),)  # between two constants: never an int
        key = tuple(values)
        known = self._memo.get(key)
        if known is None:
            if len(self._memo) >= MEMO:
                self._memo.clear()
            known = self._memo[key] = self._ask(facts())
        return known

    def _ask(self, facts: dict[str, Any]) -> tuple[str, ...]:
        fact = {name: facts[name] for name in self.fields if name in facts}
        fact["fact_id"] = next(self._serial)
        text = json.dumps(fact)
        matched = []
        code, state = durable_rules_engine.assert_fact(self._handle, text)
        if code == HANDLED:
            started = durable_rules_engine.start_action_for_state(self._handle, state)
            message = started[1] if started else None
            while message:
                matched.append(message[2 : message.index('"', 2)])  # {"<rule id>":{...}}
                message = durable_rules_engine.complete_and_start_action(self._handle, state)
        durable_rules_engine.retract_fact(self._handle, text)
        return tuple(matched)


def _ranked(policy: Policy, fields: list[str]) -> list[tuple[int, list[int], frozenset[int]]]:
    """The numeric facts compared only with constants: their place in `fields` and the constants
    (as the engine sees them), sorted."""
    constants: defaultdict[str, set[int]] = defaultdict(set)
    exact: set[str] = set()
    for rule in policy.rules:
        for cmp in comparisons(rule.when):
            if cmp.other:
                exact |= {cmp.fact, cmp.other}
            elif FACTS[cmp.fact] in (FactType.INT, FactType.MONEY) and cmp.value is not None:
                constants[cmp.fact].add(engine_value(cmp.fact, cmp.value))
    return [
        (index, sorted(constants[name]), frozenset(constants[name]))
        for index, name in enumerate(fields)
        if name in constants and name not in exact
    ]
