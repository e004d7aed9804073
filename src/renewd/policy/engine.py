"""The compiled policy running in durable_rules: facts in, ids of matching rules out.

durable_rules 2.0.28 has traps this module exists to contain:
- `post()` consumes an event at its first matching rule, so each mailbox is asserted as a fact and
  retracted again: every rule whose condition holds fires once.
- batch calls run actions late on background threads; `Host` starts two timer threads that race
  the actions. We evaluate one fact at a time, in the caller's thread, with the timers disabled.
- exceptions in actions are swallowed, so actions only append a rule id to a list.
- a ruleset name cannot be registered twice, so every compiled policy gets a fresh name.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

from durable import engine as durable_engine

from renewd.policy.conditions import to_durable
from renewd.policy.model import Policy

_names = itertools.count(1)


class _ThreadlessHost(durable_engine.Host):  # type: ignore[misc]
    """A Host without its dispatch and timer threads; actions run inside assert_fact."""

    def _run(self) -> None:
        return None


class Engine:
    """One policy, compiled once, evaluated many times in a single thread."""

    def __init__(self, policy: Policy) -> None:
        self._matched: list[str] = []
        self._serial = itertools.count()
        self._name = f"renewd-{policy.digest or 'policy'}-{next(_names)}"
        top = max((rule.priority for rule in policy.rules), default=0)
        definition = {
            rule.id: {
                "all": [{"m": to_durable(rule.when)}],
                # durable_rules runs lower `pri` first; ours is "higher is more specific".
                "pri": top - rule.priority,
                "run": self._recorder(rule.id),
            }
            for rule in policy.rules
        }
        self.definition_json = json.dumps(
            {k: {"all": v["all"], "pri": v["pri"]} for k, v in definition.items()}, sort_keys=True
        )
        self._host = _ThreadlessHost()
        self._host.register_rulesets({self._name: definition})

    def _recorder(self, rule_id: str) -> Callable[[Any], None]:
        def record(_closure: Any) -> None:
            self._matched.append(rule_id)

        return record

    def matches(self, facts: dict[str, Any]) -> list[str]:
        """Ids of every rule whose condition holds for these facts, in engine order."""
        self._matched = []
        fact = {**facts, "fact_id": next(self._serial)}
        quiet = (durable_engine.MessageNotHandledException, durable_engine.MessageObservedException)
        for call in (self._host.assert_fact, self._host.retract_fact):
            with contextlib.suppress(*quiet):
                call(self._name, fact)
        return self._matched
