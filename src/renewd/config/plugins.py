"""What every backend's and sender's settings share: known keys only, and secrets that come from
the environment or a file, never from the config, and are never shown."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from renewd.core.errors import RenewdError, suggest


class SettingsError(RenewdError):
    """A backend's or sender's settings in the config are wrong."""


def known_settings(settings: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(settings) - set(allowed) - {"backend", "window"})
    if unknown:
        raise SettingsError(
            f"{what}: unknown setting(s) {', '.join(unknown)}{suggest(unknown[0], allowed)} "
            f"(known: {', '.join(allowed)})"
        )


def number(
    settings: dict[str, Any],
    key: str,
    what: str,
    default: float,
    low: float = 0,
    high: float = 86_400,
    whole: bool = False,
) -> float:
    """A numeric setting within [low, high]; the error never repeats the value, which may be a
    secret written on the wrong line."""
    value = settings.get(key, default)
    right_type = isinstance(value, int) if whole else isinstance(value, int | float)
    if (
        not right_type
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        kind = "a whole number" if whole else "a number"
        raise SettingsError(f"{what}: {key} must be {kind} from {low:g} to {high:g}")
    return float(value)


class Secret:
    """A credential that prints as its source, never as its value."""

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"**** (from {self.source})"

    __str__ = __repr__


def secret(settings: dict[str, Any], name: str, what: str, base: Path) -> Secret:
    """`<name>_env: VAR` or `<name>_file: path`; an inline value is refused, not used."""
    if name in settings:
        raise SettingsError(
            f"{what}: do not write {name} into the config; name an environment variable "
            f"({name}_env) or a file ({name}_file) that holds it"
        )
    variable, file = settings.get(f"{name}_env"), settings.get(f"{name}_file")
    if isinstance(variable, str) and variable:
        value = os.environ.get(variable, "")
        if not value:
            raise SettingsError(f"{what}: environment variable {variable} is not set")
        return Secret(value, f"${variable}")
    if isinstance(file, str) and file:
        path = base / file
        try:
            return Secret(path.read_text(encoding="utf-8").strip(), str(path))
        except OSError as exc:
            raise SettingsError(f"{what}: cannot read {name}_file {path}: {exc.strerror}") from exc
    raise SettingsError(f"{what}: needs {name}_env or {name}_file")
