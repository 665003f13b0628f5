"""Backups and restores (`postventa backup`, `postventa restore`), and `db upgrade` refusing a
database a newer Postventa migrated: on SQLite and PostgreSQL, each in a database of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, func, select, text

from scheduler import heartbeats, schema
from scheduler.clock import utcnow
from scheduler.config import defaults
from scheduler.db import make_session_factory
from scheduler.models import Customer, Sale
from scheduler.sending.sales import record_sale
from tests.dispatching import setup_sales
from tests.factories import NOW, sale_input
from tests.migrating import blank  # noqa: F401 - fixture

__all__ = ["blank"]


def postventa(engine: Engine, tmp_path: Path, *args: str, input: str | None = None) -> Result:
    """The command line, with a configuration naming `engine`'s database."""
    from web.cli import cli

    path = tmp_path / "config.toml"
    url = engine.url.render_as_string(hide_password=False)
    path.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    return CliRunner().invoke(cli, ["--config", str(path), *args], input=input)


def customers(engine: Engine) -> list[str]:
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(Customer.name).order_by(Customer.name)))


@pytest.fixture
def shop(blank: Engine) -> Engine:
    """A database at the newest schema with one customer's sale."""
    schema.upgrade(blank)
    setup_sales(blank, defaults(), sale_input())
    return blank


def test_a_backup_taken_while_running_restores_what_was_there(shop: Engine, tmp_path: Path) -> None:
    file = tmp_path / "postventa.backup"
    done = postventa(shop, tmp_path, "backup", str(file))
    assert done.exit_code == 0, done.output
    assert f"backed up the database (schema {schema.head_revision()}) to {file}" in done.output
    assert file.stat().st_size > 0 and not list(tmp_path.glob(".*.partial"))
    sessions = make_session_factory(shop, writer=True)
    with sessions.begin() as session:  # after the backup: lost by the restore, as it should be
        record_sale(
            session,
            sale_input("S-2", customer_name="Luis Soto", phone="+51911111111"),
            config=defaults(),
            now=NOW,
            actor="test",
        )
        session.execute(text("UPDATE customers SET name = 'Rosa Q.' WHERE name = 'Rosa Quispe'"))
    assert customers(shop) == ["Luis Soto", "Rosa Q."]
    restored = postventa(shop, tmp_path, "restore", str(file), "--yes")
    assert restored.exit_code == 0, restored.output
    assert restored.output.strip() == f"restored {file} (schema {schema.head_revision()})"
    assert customers(shop) == ["Rosa Quispe"]
    with make_session_factory(shop)() as session:
        assert session.scalar(select(func.count()).select_from(Sale)) == 1
    schema.require_current(shop)


def test_a_backup_never_replaces_a_file_unasked(shop: Engine, tmp_path: Path) -> None:
    file = tmp_path / "kept.backup"
    file.write_bytes(b"last week's backup")
    refused = postventa(shop, tmp_path, "backup", str(file))
    assert refused.exit_code == 1
    assert f"{file} exists: name a new file, or add --force to replace it" in refused.output
    assert file.read_bytes() == b"last week's backup"
    assert postventa(shop, tmp_path, "backup", str(file), "--force").exit_code == 0
    assert file.read_bytes() != b"last week's backup"
    missing = postventa(shop, tmp_path, "backup", str(tmp_path / "no" / "such.backup"))
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_restore_refuses_what_is_not_a_backup_and_keeps_the_database(
    shop: Engine, tmp_path: Path
) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("no es una copia\n" * 100, encoding="utf-8")
    refused = postventa(shop, tmp_path, "restore", str(junk), "--yes")
    assert refused.exit_code == 1 and "not a" in refused.output, refused.output
    assert customers(shop) == ["Rosa Quispe"]
    absent = postventa(shop, tmp_path, "restore", str(tmp_path / "absent.backup"), "--yes")
    assert absent.exit_code == 1 and "no such file" in absent.output


def test_restore_refuses_a_backup_from_a_newer_postventa(shop: Engine, tmp_path: Path) -> None:
    with shop.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    file = tmp_path / "newer.backup"
    assert postventa(shop, tmp_path, "backup", str(file)).exit_code == 0
    with shop.begin() as connection:
        connection.execute(
            text(f"UPDATE alembic_version SET version_num = '{schema.head_revision()}'")
        )
        connection.execute(text("UPDATE customers SET name = 'Rosa Q.'"))
    refused = postventa(shop, tmp_path, "restore", str(file), "--yes")
    assert refused.exit_code == 1
    assert "is at schema 9999, newer than this version of Postventa" in refused.output
    assert customers(shop) == ["Rosa Q."]  # nothing was replaced


def test_restore_waits_for_the_workers_to_stop_and_asks_first(shop: Engine, tmp_path: Path) -> None:
    file = tmp_path / "postventa.backup"
    assert postventa(shop, tmp_path, "backup", str(file)).exit_code == 0
    sessions = make_session_factory(shop, writer=True)
    with sessions.begin() as session:
        heartbeats.started(session, "w-1", tick_seconds=30, now=utcnow())
        heartbeats.pass_ended(session, "w-1", now=utcnow(), seconds=0.1, sent=0)
    busy = postventa(shop, tmp_path, "restore", str(file), "--yes")
    assert busy.exit_code == 1 and "a worker is sending" in busy.output
    with sessions.begin() as session:
        heartbeats.stopped(session, "w-1", now=NOW)
    declined = postventa(shop, tmp_path, "restore", str(file), input="n\n")
    assert declined.exit_code == 1 and "Replace everything in the database" in declined.output
    assert postventa(shop, tmp_path, "restore", str(file), input="y\n").exit_code == 0


def test_db_upgrade_refuses_a_database_a_newer_postventa_migrated(
    shop: Engine, tmp_path: Path
) -> None:
    with shop.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for command in (("db", "upgrade"), ("init",)):
        refused = postventa(shop, tmp_path, *command)
        assert refused.exit_code == 1, refused.output
        assert "is at revision 9999, newer than this version of Postventa" in refused.output
        assert "Traceback" not in refused.output
    assert schema.current_revision(shop) == "9999"
