"""An operator's first day: `renewd init`, then a wheel installed with no checkout at all."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from renewd.cli.main import main

from support import ROOT

FILES = ["config.yaml", "renewd.service", "rules/lifecycle.yaml", "secrets.env"]


def init(tmp_path: Path) -> tuple[Path, Path]:
    etc, state = tmp_path / "etc", tmp_path / "state"
    result = CliRunner().invoke(main, ["init", str(etc), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    return etc, state


def test_init_writes_what_check_accepts(tmp_path: Path) -> None:
    etc, state = init(tmp_path)
    assert sorted(str(p.relative_to(etc)) for p in etc.rglob("*") if p.is_file()) == FILES
    assert stat.S_IMODE((etc / "secrets.env").stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700 and (state / "snapshots").is_dir()
    check = CliRunner().invoke(main, ["check", "--config", str(etc / "config.yaml")])
    assert check.exit_code == 0, check.output
    config = (etc / "config.yaml").read_text(encoding="utf-8")
    assert f"rules: {etc}/rules " in config and f"ledger: {state}/renewd.sqlite3 " in config
    assert (etc / "rules" / "lifecycle.yaml").read_bytes() == (
        ROOT / "rules" / "lifecycle.yaml"
    ).read_bytes()


def test_the_unit_runs_this_renewd_with_these_directories(tmp_path: Path) -> None:
    etc, state = init(tmp_path)
    unit = (etc / "renewd.service").read_text(encoding="utf-8").splitlines()
    assert f"ExecStart={Path(sys.executable).parent / 'renewd'} serve --log-format text" in unit
    assert f"Environment=RENEWD_CONFIG={etc}/config.yaml" in unit
    assert f"EnvironmentFile=-{etc}/secrets.env" in unit
    assert f"ReadWritePaths={state}" in unit and f"ReadOnlyPaths={etc}" in unit
    assert f"WorkingDirectory={state}" in unit
    # systemd would create /var/lib/renewd and /etc/renewd for these: not wanted elsewhere
    assert not [line for line in unit if line.startswith(("StateDirectory", "Configuration"))]


def test_the_standard_directories_keep_systemds_own(tmp_path: Path) -> None:
    from renewd.service.install import unit

    text = unit({"/etc/renewd": "/etc/renewd", "/var/lib/renewd": "/var/lib/renewd"}, Path("/x"))
    assert "StateDirectory=renewd\n" in text and "ConfigurationDirectory=renewd\n" in text


@pytest.mark.parametrize("present", FILES)
def test_init_never_overwrites_and_then_writes_nothing(tmp_path: Path, present: str) -> None:
    etc = tmp_path / "etc"
    (etc / present).parent.mkdir(parents=True, exist_ok=True)
    (etc / present).write_text("mine\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["init", str(etc), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 2
    assert f"{etc / present}: already there; renewd init never overwrites a file" in result.stderr
    assert [p for p in etc.rglob("*") if p.is_file()] == [etc / present]
    assert (etc / present).read_text(encoding="utf-8") == "mine\n"
    assert not (tmp_path / "state").exists()


def _source_tree(target: Path) -> Path:
    """The project's files as a fresh clone has them: no virtualenv, no stale build/ to leak in."""
    skipped = shutil.ignore_patterns(
        ".git", ".venv", ".peers", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
    )
    shutil.copytree(ROOT, target, symlinks=True, ignore=skipped)
    return target


def test_the_wheel_alone_is_enough(tmp_path: Path) -> None:
    """CI's check of the README's first day: build the wheel, install it into a fresh virtualenv
    outside the repository, and init, check and dry-run with nothing else."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    source = _source_tree(tmp_path / "source")
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(source)], check=True
    )
    [wheel] = (tmp_path / "dist").glob("renewd-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-compile", str(wheel)],
        check=True,
    )
    home = tmp_path / "operator"
    home.mkdir()
    shutil.copy(ROOT / "examples" / "snapshot.csv", home / "export.csv")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home)}

    def renewd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / "renewd"), *args],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import renewd; print(renewd.__file__)"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(venv)), where
    assert renewd("init", "etc", "--state-dir", "state").returncode == 0
    config = ["--config", "etc/config.yaml"]
    check = renewd("check", *config)
    assert check.returncode == 0, check.stderr
    dry = renewd("dry-run", *config, "--snapshot", "export.csv", "--date", "2026-12-01")
    assert dry.returncode == 0, dry.stderr
    assert "auto-renew" in dry.stdout and "rows read: 305, rejected: 5" in dry.stderr


def test_a_state_directory_it_cannot_make_stops_init_before_any_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["init", str(tmp_path / "etc"), "--state-dir", str(tmp_path / "file" / "state")]
    )
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path}/file/state: cannot create: Not a directory (--state-dir)\n"
    assert not (tmp_path / "etc").exists()
