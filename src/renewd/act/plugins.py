"""Backends and senders are found through entry points, like certbot's plugins."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from renewd.core.errors import RenewdError, suggest

GROUPS = {
    "billing": "renewd.billing",
    "provisioning": "renewd.provisioning",
    "sender": "renewd.senders",
}


def plugin(kind: str, name: str) -> Any:
    """The class registered as `name` in the group; a name registered twice is an error."""
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
    return found[0].load()
