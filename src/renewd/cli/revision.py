"""The rules as they were at a git revision (`renewd diff --against REV`), copied out of git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from renewd.core.errors import Problem, ProblemsError, RenewdError

POLICY_SUFFIXES = (".yaml", ".yml")


def rules_at(rules: Path, revision: str, into: Path) -> Path:
    """Write the policy files of `rules` (a directory, or one file) as they were at `revision`
    into the directory `into`; return what to load (`into`, or the file in it)."""
    if not revision or revision.startswith("-"):
        raise RenewdError(f"--against {revision!r}: not a git revision")
    git = shutil.which("git")
    if git is None:
        raise RenewdError("--against needs git, and git is not installed")
    rules = rules.resolve()
    folder = rules if rules.is_dir() else rules.parent
    top = _git(
        git, folder, "rev-parse", "--show-toplevel", what=f"{folder} is not in a git repository"
    )
    root = Path(top.decode().strip())
    inside = rules.relative_to(root.resolve()).as_posix()
    _git(
        git,
        root,
        "rev-parse",
        "--verify",
        "--quiet",
        f"{revision}^{{commit}}",
        what=f"--against {revision}: no such revision in {root}",
    )
    if not rules.is_dir():
        target = into / rules.name
        _blob(git, root, f"{revision}:{inside}", target, what=f"{revision}:{inside}: not there")
        return target
    listing = _git(
        git,
        root,
        "ls-tree",
        "-z",
        revision,
        "--",
        f"{inside}/" if inside != "." else ".",
        what=f"{revision}:{inside}: not there",
    )
    copied = 0
    for entry in filter(None, listing.split(b"\0")):
        meta, _, path = entry.decode().partition("\t")
        mode, kind, sha = meta.split()
        name = Path(path).name
        if kind == "blob" and mode != "120000" and Path(name).suffix in POLICY_SUFFIXES:
            _blob(git, root, sha, into / name, what=f"{revision}:{path}: cannot be read")
            copied += 1
    if not copied:
        raise ProblemsError([Problem(f"{revision}:{inside}", 0, "no policy files found")])
    return into


def shown(path: str, copy: Path, revision: str, rules: Path) -> str:
    """A path in the copy as the operator knows it: `HEAD~1:rules/lifecycle.yaml`."""
    if not path.startswith(str(copy)):
        return path
    name = path[len(str(copy)) :].lstrip("/")
    base = rules.as_posix() if rules.is_dir() else rules.parent.as_posix()
    return f"{revision}:{base}/{name}" if name else f"{revision}:{base}"


def _git(git: str, where: Path, *args: str, what: str) -> bytes:
    done = subprocess.run(  # noqa: S603 - fixed program, our arguments
        [git, "-C", str(where), *args], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise RenewdError(what)
    return done.stdout


def _blob(git: str, root: Path, name: str, target: Path, what: str) -> None:
    """Stream one file out of git (a policy file over the size limit is refused when loaded)."""
    with target.open("wb") as out:
        done = subprocess.run(  # noqa: S603 - fixed program, our arguments
            [git, "-C", str(root), "cat-file", "blob", name],
            stdout=out,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    if done.returncode != 0:
        raise RenewdError(what)
