"""Broken configs, as a careless operator writes them: `renewd check` says what and where in one
line per problem (exit 1), never a traceback, never the secret; `serve` dies on none of them
that `check` passed, and on those it cannot start with, says the same in one line (exit 2)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from renewd.cli.main import main

from support import ROOT

SECRET = "hunter2-s3cret"
HEAD = f"rules: {ROOT / 'rules'}\nledger: state/ledger.sqlite3\n"  # lines 1 and 2
SMTP = "senders:\n  email: {{backend: smtp, host: mail.example.com, from: r@example.com, {}}}\n"
PORT_HELD = "{held}"  # replaced by a port a test holds open


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# (id, config after HEAD, the lines `check` prints; {base} is the config's folder)
BROKEN = [
    (
        "locales not a list",
        "locales: 5\n",
        ["3: locales must be a list of locale names such as [en, zh-CN]"],
    ),
    (
        "locales nested",
        "locales: [[en]]\n",
        ["3: locales must be a list of locale names such as [en, zh-CN]"],
    ),
    (
        "locale a path",
        "locales: [en, ../../etc]\n",
        ["3: locales must be a list of locale names such as [en, zh-CN]"],
    ),
    (
        "default locale missing",
        "locales: [zh-CN]\n",
        ["config.yaml:1: default_locale must be one of locales"],
    ),
    (
        "days not a number",
        "catch_up_days: soon\n",
        ["3: catch_up_days must be a whole number from 0 to 366"],
    ),
    (
        "rules missing",
        None,
        ["config.yaml:1: the config needs 'rules' (a directory of policy files)"],
    ),
    (
        "unknown top key",
        "ledgr: x\n",
        ["3: unknown key 'ledgr' in the config (did you mean 'ledger'?)"],
    ),
    (
        "unknown key under messages",
        "messages:\n  brand: Example\n  brnd: Example\n",
        ["5: unknown key 'brnd' in messages (did you mean 'brand'?)"],
    ),
    (
        "message brand a list",
        "messages: {brand: [a]}\n",
        ["3: messages.brand must be a non-empty string"],
    ),
    (
        "renewal_url with another field",
        "messages: {renewal_url: 'https://x/{mailbox_id}/{secret}'}\n",
        ["3: messages.renewal_url may use {mailbox_id} and {account_id}, and no other {...}"],
    ),
    (
        "share not a number",
        "guards: {max_deletion_share: nan}\n",
        ["3: guards.max_deletion_share must be a share from 0 to 1 (0.01 is 1%)"],
    ),
    (
        "a time YAML reads as a number",
        "serve: {run_at: 2:00}\n",
        ['3: serve.run_at must be a time in quotes, such as "02:00"'],
    ),
    (
        "endless interval",
        "serve: {overdue_hours: .inf}\n",
        ["3: serve.overdue_hours must be a positive number, at most 8784"],
    ),
    (
        "unknown serve key",
        "serve: {lisen: '127.0.0.1:9464'}\n",
        ["3: unknown key 'lisen' in serve (did you mean 'listen'?)"],
    ),
    *(
        (
            f"listen {address}",
            f"serve: {{listen: '{address}'}}\n",
            [
                '3: serve.listen must be host:port with a port from 1 to 65535, such as "127.0.0.1:9464" '
                '(this machine only), "0.0.0.0:9464" or "[::1]:9464"; "" turns the listener off'
            ],
        )
        for address in ("localhost", "127.0.0.1:99999", ":9464", "http://127.0.0.1:9464")
    ),
    (
        "listen on an address not here",
        "serve: {listen: '192.0.2.1:9464'}\n",
        [
            "3: serve.listen 192.0.2.1:9464: cannot listen there: Cannot assign requested address "
            '(choose another address, or "" for no listener)'
        ],
    ),
    (
        "listen on a port in use",
        f"serve: {{listen: '127.0.0.1:{PORT_HELD}'}}\n",
        [
            f"3: serve.listen 127.0.0.1:{PORT_HELD}: cannot listen there: Address already in use "
            '(choose another address, or "" for no listener)'
        ],
    ),
    ("senders not a mapping", "senders: 5\n", ["3: senders must be a mapping"]),
    (
        "billing without a backend",
        "billing: ledger\n",
        ["3: billing must be a mapping with a 'backend' name, such as {backend: ledger}"],
    ),
    (
        "smtp without a host",
        "senders:\n  email: {backend: smtp, from: r@example.com}\n",
        ["4: senders.email: 'host' must be a non-empty string"],
    ),
    (
        "a password under port",
        SMTP.format(f"username: u, password_env: HOME, port: {SECRET}"),
        ["4: senders.email: port must be a whole number from 1 to 65535"],
    ),
    (
        "a password under timeout",
        SMTP.format(f"timeout: {SECRET}"),
        ["4: senders.email: timeout must be a number from 0.1 to 86400"],
    ),
    (
        "an inline password without a username",
        SMTP.format(f"password: {SECRET}"),
        [
            "4: senders.email: do not write password into the config; name an environment variable (password_env) or a file (password_file) that holds it"
        ],
    ),
    (
        "a password without a username",
        SMTP.format("password_env: HOME"),
        ["4: senders.email: a password is set but no username: set username"],
    ),
    (
        "a misspelt password setting",
        SMTP.format(f"username: u, pasword: {SECRET}"),
        [
            "4: senders.email: unknown setting(s) pasword (did you mean 'password'?) (known: host, port, security, username, password, password_env, password_file, from, reply_to, timeout, connections, local_hostname, ca_file, attempts, backoff, max_retry_seconds, return_path)"
        ],
    ),
    (
        "an inline twilio token",
        f"senders:\n  sms: {{backend: twilio, account_sid: AC0123, from: '+14155550000', auth_token: {SECRET}}}\n",
        [
            "4: senders.sms: do not write auth_token into the config; name an environment variable (auth_token_env) or a file (auth_token_file) that holds it"
        ],
    ),
    (
        "a twilio rate as text",
        f"senders:\n  sms: {{backend: twilio, account_sid: AC0123, from: '+14155550000', auth_token_env: HOME, rate: {SECRET}}}\n",
        ["4: senders.sms: rate must be a number from 0 to 10000"],
    ),
    (
        "an http billing timeout as text",
        f"billing: {{backend: http, url: 'https://billing.example.com', timeout: {SECRET}}}\n",
        ["3: billing: 'timeout' must be a number, 0 or more"],
    ),
    (
        "a ledger that is not a database",
        "ledger: notes.txt\n",
        ["config.yaml:2: ledger {base}/notes.txt: cannot open it: not a SQLite database"],
    ),
    (
        "an unreachable PostgreSQL",
        f"ledger: postgresql://renewd:{SECRET}@127.0.0.1:{{closed}}/renewd\n",
        [
            'config.yaml:2: ledger postgresql://renewd:***@127.0.0.1:{closed}/renewd: cannot open it: connection failed: connection to server at "127.0.0.1", port {closed} failed: Connection refused Is the server running on that host and accepting TCP/IP connections?'
        ],
    ),
    (
        "a ledger folder that is a file",
        "ledger: notes.txt/ledger.sqlite3\n",
        [
            "config.yaml:2: ledger {base}/notes.txt/ledger.sqlite3: cannot create it: {base}/notes.txt is not a directory renewd may write"
        ],
    ),
]


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def write_config(root: Path, text: str | None, held: int, closed: int) -> Path:
    """HEAD and the row's text (a row's own `ledger:` takes HEAD's place, on line 2); no text:
    a config without `rules`."""
    if text is None:
        body = "ledger: state/ledger.sqlite3\n"
    elif text.startswith("ledger:"):
        body = HEAD.replace("ledger: state/ledger.sqlite3\n", text)
    else:
        body = HEAD + text
    body = body.replace(PORT_HELD, str(held)).replace("{closed}", str(closed))
    config = root / "config.yaml"
    config.write_text(body, encoding="utf-8")
    (root / "notes.txt").write_text(f"my notes\n{SECRET}\n", encoding="utf-8")
    return config


def expected(root: Path, lines: list[str], held: int, closed: int) -> list[str]:
    full = [line if line.startswith("config.yaml") else f"config.yaml:{line}" for line in lines]
    return [
        line.replace("{base}", str(root))
        .replace(PORT_HELD, str(held))
        .replace("{closed}", str(closed))
        for line in full
    ]


@pytest.mark.parametrize(("text", "lines"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_check_says_what_and_where_in_one_line_each(
    tmp_path: Path, held_port: int, text: str | None, lines: list[str]
) -> None:
    closed = closed_port()
    config = write_config(tmp_path, text, held_port, closed)
    result = CliRunner().invoke(main, ["check", "--config", str(config)], env={"HOME": "/root"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    said = result.stderr.replace(f"{tmp_path}/config.yaml", "config.yaml").splitlines()
    assert (result.exit_code, said) == (1, expected(tmp_path, lines, held_port, closed))
    assert SECRET not in result.output
    assert not (tmp_path / "state").exists()  # check creates no ledger


def unplaced(line: str) -> str:
    """Without `config.yaml:N: `: serve says where a setting is only for the file's own problems."""
    return line.split(": ", 1)[1] if line.startswith("config.yaml:") else line


# What `serve` cannot start with: the same line, exit 2, nothing else said.
SERVE_DIES = [
    "locales not a list",
    "listen localhost",
    "listen on a port in use",
    "a ledger that is not a database",
    "an unreachable PostgreSQL",
]


@pytest.mark.parametrize("name", SERVE_DIES)
def test_serve_stops_on_what_check_reports_with_one_line(
    tmp_path: Path, held_port: int, name: str
) -> None:
    [(text, lines)] = [b[1:] for b in BROKEN if b[0] == name]
    closed = closed_port()
    config = write_config(tmp_path, text, held_port, closed)
    command = [str(Path(sys.executable).parent / "renewd"), "serve", "--config", str(config)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "RENEWD_FAKE_NOW": "2026-12-01T10:00:00+08:00"},
    )
    said = [unplaced(line.replace(f"{tmp_path}/", "")) for line in done.stderr.splitlines()]
    wanted = [
        unplaced(line.replace(f"{tmp_path}/", ""))
        for line in expected(tmp_path, lines, held_port, closed)
    ]
    assert (done.returncode, said) == (2, wanted), done.stderr
    assert SECRET not in done.stderr
