"""Errors a person can act on: a database that does not answer is one line naming where it was
looked for and what to check; a shop's usual From address, with its name, is accepted and sent."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from scheduler.config import ConfigError, defaults, load_config
from scheduler.db import DatabaseUnreachable, open_engine
from scheduler.sending.transports.smtp_email import SmtpEmail, build_email
from tests.conftest import Cli
from tests.smtp_server import EMAIL, Mailbox, smtp  # noqa: F401 - the SMTP server fixture

REFUSED = (
    "Error: cannot reach the database at 127.0.0.1:1 (connection refused): is PostgreSQL "
    "running, and is database.url right?\n"
)


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "command", [["init"], ["dispatch", "--once"], ["db", "upgrade"], ["web"], ["run"], ["worker"]]
)
def test_a_stopped_postgresql_is_one_line_and_a_failed_exit(
    tmp_path: Path, command: list[str]
) -> None:
    cli = Cli(_config(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/x"))
    result = cli(*command)
    assert result.exit_code == 1
    assert result.stderr.endswith(REFUSED) and "Traceback" not in result.output


def test_a_missing_postgresql_database_names_it(postgres_url: str, tmp_path: Path) -> None:
    url = postgres_url.rpartition("/")[0] + "/postventa_no_such_database"
    result = Cli(_config(tmp_path, url))("dispatch", "--once")
    assert result.exit_code == 1
    assert result.stderr == (
        'Error: cannot reach the database at 127.0.0.1:5432 (database "postventa_no_such_database" '
        "does not exist): check the database name, user and password in database.url\n"
    )


def test_an_sqlite_file_that_cannot_be_made_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = Cli(_config(tmp_path, f"sqlite:///{blocker}/postventa.db"))("init")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: cannot open the SQLite database {blocker}/postventa.db"
    )
    assert result.stderr.endswith("Check database.url\n") and result.stderr.count("\n") == 1


def test_the_web_app_refuses_to_start_on_an_unreachable_database() -> None:
    from web import create_app

    config = defaults().replace(database={"url": "postgresql+psycopg://postgres@127.0.0.1:1/x"})
    with pytest.raises(DatabaseUnreachable, match=r"at 127\.0\.0\.1:1 \(connection refused\)"):
        create_app(config)


def test_a_reachable_database_opens(postgres_url: str, tmp_path: Path) -> None:
    for url in (postgres_url, f"sqlite:///{tmp_path / 'x.db'}"):
        engine = open_engine(url)
        engine.dispose()


# --- the From address --------------------------------------------------------------------------


def _from(tmp_path: Path, value: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f"[email]\nfrom_address = {json.dumps(value)}\n", encoding="utf-8")
    return load_config(path, environ={}).email.from_address


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("Mi Tienda <postventa@example.com>", "Mi Tienda <postventa@example.com>"),
        ('"Mi Tienda" <Postventa@Example.COM>', "Mi Tienda <Postventa@example.com>"),
        ("Tienda, Ñandú <hola@mitienda.pe>", '"Tienda, Ñandú" <hola@mitienda.pe>'),
        ("postventa@example.com", "postventa@example.com"),
        ("<postventa@example.com>", "postventa@example.com"),
    ],
)
def test_a_from_address_may_carry_the_shops_name(tmp_path: Path, given: str, kept: str) -> None:
    assert _from(tmp_path, given) == kept


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("Mi Tienda <>", "the address between < and > is missing"),
        ("Mi Tienda <postventa>", "email.from_address 'Mi Tienda <postventa>': "),
        ("Mi Tienda postventa@example.com", "email.from_address"),
        ("a@example.com\nBcc: b@example.com", "must be one line, without control characters"),
    ],
)
def test_a_bad_from_address_is_named(tmp_path: Path, given: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _from(tmp_path, given)
    assert problem in str(refused.value)


def test_the_readme_example_is_accepted() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert 'from_address = "Mi Tienda <postventa@example.com>"' in readme
    config = defaults().replace(
        email={"transport": "smtp", "from_address": "Mi Tienda <postventa@example.com>"}
    )
    assert config.email.from_address == "Mi Tienda <postventa@example.com>"


def test_smtp_sends_the_name_in_from_and_the_address_in_the_envelope(
    smtp: tuple[Mailbox, int],  # noqa: F811 - the fixture imported above
) -> None:
    mailbox, port = smtp
    config = defaults().replace(
        email={
            "transport": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "starttls": False,
            "from_address": "Tienda Ñandú <hola@mitienda.pe>",
        }
    )
    SmtpEmail(config.email, 5.0).send(EMAIL)
    [envelope] = mailbox.received
    assert envelope.mail_from == "hola@mitienda.pe"
    email = message_from_bytes(envelope.content, policy=policy.default)
    assert email["From"] == "Tienda Ñandú <hola@mitienda.pe>"
    assert email["From"].addresses[0].addr_spec == "hola@mitienda.pe"
    assert b"=?utf-8?" in envelope.content.split(b"\r\n\r\n")[0]  # the name encoded (RFC 2047)
    assert email["Message-ID"].endswith("@mitienda.pe>")
    built = build_email(EMAIL, "Mi Tienda <postventa@example.com>")
    assert built["Message-ID"].endswith("@example.com>")
