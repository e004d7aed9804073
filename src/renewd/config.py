"""The operator's config file: where the rules, snapshot and templates are, and run settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from renewd.errors import Problem, ProblemsError
from renewd.yamlsrc import LocatedMap, Reader, load_yaml

DEFAULT_PATH = Path("config.yaml")
ENV_VAR = "RENEWD_CONFIG"
KEYS = ("rules", "snapshot", "templates", "default_locale", "locales", "catch_up_days")


@dataclass(frozen=True)
class Config:
    path: Path
    rules: Path
    snapshot: str
    default_locale: str = "en"
    locales: tuple[str, ...] = ("en", "zh-CN")
    catch_up_days: int = 31
    templates: Path | None = None

    def snapshot_for(self, day: date) -> Path:
        """The snapshot path for a day: `{date}` in the configured path becomes YYYY-MM-DD."""
        return self.path.parent / self.snapshot.replace("{date}", day.isoformat())


def config_path(given: str | None) -> Path:
    return Path(given or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load_config(path: Path) -> Config:
    """Read and validate the config; relative paths in it are relative to the file itself."""
    if not path.is_file():
        raise ProblemsError([_missing(path)])
    document = load_yaml(path)
    r = Reader(path)
    node = r.mapping(document, 1, "the config")
    if node is None:
        raise ProblemsError(r.problems)
    r.known_keys(node, KEYS, "the config")
    values: dict[str, Any] = {}
    for key in ("rules", "snapshot", "templates", "default_locale"):
        _string(r, node, key, values)
    _locales(r, node, values)
    _catch_up(r, node, values)
    if "rules" not in node:
        r.problem(node.line, "the config needs 'rules' (a directory of policy files)")
    r.raise_if_any()
    if values.get("default_locale", "en") not in values.get("locales", Config.locales):
        r.problem(
            node.lines.get("default_locale", node.line), "default_locale must be one of locales"
        )
        r.raise_if_any()
    rules = path.parent / values.pop("rules")
    if "templates" in values:
        values["templates"] = path.parent / values["templates"]
    return Config(path=path, rules=rules, snapshot=values.pop("snapshot", ""), **values)


def _locales(r: Reader, node: LocatedMap, values: dict[str, Any]) -> None:
    if "locales" in node:
        locales = node["locales"]
        if isinstance(locales, list) and locales and all(isinstance(x, str) for x in locales):
            values["locales"] = tuple(locales)
        else:
            r.problem(node.lines["locales"], "locales must be a list such as [en, zh-CN]")


def _catch_up(r: Reader, node: LocatedMap, values: dict[str, Any]) -> None:
    if "catch_up_days" in node:
        days = node["catch_up_days"]
        if isinstance(days, int) and not isinstance(days, bool) and 0 <= days <= 366:
            values["catch_up_days"] = days
        else:
            message = "catch_up_days must be a whole number from 0 to 366"
            r.problem(node.lines["catch_up_days"], message)


def _string(r: Reader, node: LocatedMap, key: str, values: dict[str, Any]) -> None:
    if key in node:
        if isinstance(node[key], str) and node[key]:
            values[key] = node[key]
        else:
            r.problem(node.lines[key], f"{key} must be a non-empty string")


def _missing(path: Path) -> Problem:
    hint = f" (pass --config, or set ${ENV_VAR}; config.example.yaml is a start)"
    return Problem(str(path), 0, f"config file not found{hint}")
