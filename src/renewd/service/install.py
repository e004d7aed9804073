"""`renewd init`: a new installation's files, from the copies the package carries.

The starter config, the shipped policy, a secrets-file template and the systemd unit are written
with the operator's directories in place of the standard ones (/etc/renewd, /var/lib/renewd)
and the unit runs the very `renewd` that wrote them. Nothing is ever overwritten: if any of the
files exists, none is written.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from renewd.core.errors import RenewdError

CONFIG_DIR = "/etc/renewd"
STATE_DIR = "/var/lib/renewd"
COMMAND = "/opt/renewd/bin/renewd"
SHIPPED = files("renewd") / "shipped"


class InitError(RenewdError):
    """A file `init` would write is already there (or the directory cannot be written)."""


@dataclass(frozen=True)
class Written:
    path: Path
    note: str = ""


def init(directory: Path, state: Path, command: Path | None = None) -> list[Written]:
    """Write config.yaml, rules/, secrets.env and renewd.service into `directory`; create `state`.

    `command` is the renewd the unit runs (default: the one running now).
    """
    directory, state = directory.absolute(), state.absolute()
    places = {CONFIG_DIR: str(directory), STATE_DIR: str(state)}
    rules = [f for f in (SHIPPED / "rules").iterdir() if f.name.endswith((".yaml", ".yml"))]
    config = _swap(_read(SHIPPED / "deploy" / "config.yaml"), places)
    plan: list[tuple[Path, str, int]] = [
        (directory / "config.yaml", config, 0o644),
        *((directory / "rules" / f.name, _read(f), 0o644) for f in sorted(rules, key=str)),
        (directory / "secrets.env", _read(SHIPPED / "deploy" / "secrets.env"), 0o600),
        (directory / "renewd.service", unit(places, command or running_command()), 0o644),
    ]
    present = [str(path) for path, _, _ in plan if path.exists() or path.is_symlink()]
    if present:
        raise InitError(
            f"{', '.join(present)}: already there; renewd init never overwrites a file "
            "(move them away, or init another directory)"
        )
    written = []
    for folder in (state, state / "snapshots"):  # first: a state dir it cannot make stops it all
        if not folder.exists():
            try:
                folder.mkdir(mode=0o700, parents=True)
            except OSError as exc:
                raise InitError(f"{folder}: cannot create: {exc.strerror} (--state-dir)") from exc
            written.append(Written(folder, "directory"))
    for path, text, mode in plan:
        _write(path, text, mode)
        written.append(Written(path, "owner-only" if mode == 0o600 else ""))
    return written


def unit(places: dict[str, str], command: Path) -> str:
    """The shipped unit for these directories: paths swapped, and the directories systemd would
    create under their standard names (StateDirectory=renewd) left out when they are elsewhere."""
    dropped = {
        "StateDirectory": places[STATE_DIR] != STATE_DIR,
        "StateDirectoryMode": places[STATE_DIR] != STATE_DIR,
        "ConfigurationDirectory": places[CONFIG_DIR] != CONFIG_DIR,
    }
    lines = []
    for line in _read(SHIPPED / "deploy" / "renewd.service").splitlines():
        if dropped.get(line.partition("=")[0]):
            continue
        lines.append(_swap(line, {**places, COMMAND: str(command)}))
    return "\n".join(lines) + "\n"


def running_command() -> Path:
    """The `renewd` console script of this installation (beside its Python in a virtualenv)."""
    beside = Path(sys.executable).parent / "renewd"
    if beside.is_file():
        return beside
    found = shutil.which("renewd")
    return Path(found).absolute() if found else Path(sys.argv[0]).absolute()


def _swap(text: str, places: dict[str, str]) -> str:
    """Each standard path replaced by its chosen one, in one pass (a chosen path may hold another
    standard one: /var/lib/renewd/etc); comment lines, which explain the standard paths, stay."""
    pattern = re.compile("|".join(re.escape(p) for p in sorted(places, key=len, reverse=True)))
    return "".join(
        line if line.lstrip().startswith("#") else pattern.sub(lambda m: places[m[0]], line)
        for line in text.splitlines(keepends=True)
    )


def _read(resource: Traversable) -> str:
    return resource.read_text(encoding="utf-8")


def _write(path: Path, text: str, mode: int) -> None:
    """Create the file with its mode from the start (a secrets file is never world-readable)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise InitError(f"{path}: cannot write: {exc.strerror}") from exc
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
