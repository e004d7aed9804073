"""Backends and senders are found through entry points, like certbot's plugins."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from renewd.core.errors import RenewdError, suggest

GROUPS = {
    "billing": "renewd.billing",
    "provisioning": "renewd.provisioning",
    "sender": "renewd.senders",
}


def plugin(kind: str, name: str) -> Callable[..., Any]:
    """What builds the plugin registered as `name` in the group from its settings; a name
    registered twice is an error."""
    group = GROUPS[kind]
    found = [ep for ep in entry_points(group=group) if ep.name == name]
    if len(found) > 1:
        owners = ", ".join(sorted(ep.value for ep in found))
        raise RenewdError(f"{kind} {name!r} is registered more than once ({owners}); uninstall one")
    if not found:
        names = sorted(ep.name for ep in entry_points(group=group))
        raise RenewdError(
            f"unknown {kind} {name!r}{suggest(name, names)} (installed: {', '.join(names)})"
        )
    return _checked(found[0].load(), kind, name)


def _checked(factory: Callable[..., Any], kind: str, name: str) -> Callable[..., Any]:
    """A setting of the wrong type that a plugin does not check itself (`int("hunter2")`) is
    still a setting's error, said without its value: it may be a secret on the wrong line."""

    def build(settings: dict[str, Any], base: Any, *rest: Any) -> Any:
        try:
            return factory(settings, base, *rest)
        except (TypeError, ValueError, OverflowError) as exc:
            where = f"senders.{rest[0]}" if rest else kind
            raise RenewdError(
                f"{where}: a setting of the {name} backend has a value of the wrong type or "
                f"size ({type(exc).__name__}); check the numbers and names under {where}"
            ) from None

    return build
