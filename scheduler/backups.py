"""Backups and restores of the whole database, taken while Postventa runs.

SQLite: its online backup API copies a consistent snapshot (WAL lets the app write meanwhile)
to a new file, checked before it replaces anything. PostgreSQL: `pg_dump` in its custom format
(compressed, restored selectively by `pg_restore`) inside one serializable snapshot; the
password goes through the environment, never the command line that `ps` shows.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from scheduler import schema

# `pg_dump` flags: the custom format; no owner or grants (restored as whoever restores it, on
# any server); one snapshot that waits for no conflict rather than failing part way.
PG_DUMP_FLAGS = ("--format=custom", "--no-owner", "--no-privileges", "--serializable-deferrable")
# `pg_restore` flags: drop what is there first, all or nothing, stop at the first error.
PG_RESTORE_FLAGS = (
    "--clean",
    "--if-exists",
    "--no-owner",
    "--no-privileges",
    "--single-transaction",
    "--exit-on-error",
)


class BackupError(RuntimeError):
    """A backup or restore that could not be made; the message says what to do."""


def _partial(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


def backup(engine: Engine, target: Path) -> str:
    """Write a backup of the database to `target` (replacing it only once the copy is whole);
    returns a line saying what was written."""
    if target.is_dir():
        raise BackupError(f"{target} is a folder: name the backup file")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} does not exist")
    partial = _partial(target)
    try:
        if engine.dialect.name == "sqlite":
            revision = _sqlite_backup(engine, partial)
        else:
            revision = schema.current_revision(engine)
            _pg_run("pg_dump", [*PG_DUMP_FLAGS, "--file", str(partial)], engine.url)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    size = target.stat().st_size
    return f"backed up the database (schema {revision}) to {target}: {size:,} bytes"


def _sqlite_backup(engine: Engine, partial: Path) -> str | None:
    partial.unlink(missing_ok=True)
    copy = sqlite3.connect(partial)
    try:
        with engine.connect() as connection:
            live = connection.connection.driver_connection
            assert isinstance(live, sqlite3.Connection)
            live.backup(copy)
        return _check_sqlite(copy, partial)
    finally:
        copy.close()


def _check_sqlite(database: sqlite3.Connection, path: Path) -> str | None:
    """The file's schema revision, once SQLite finds the file whole."""
    try:
        (verdict,) = database.execute("PRAGMA quick_check").fetchone()
        if verdict != "ok":
            raise BackupError(f"{path} is damaged: {verdict}")
        row = database.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} is not a Postventa database: {error}") from None
    return None if row is None else str(row[0])


def _pg_run(program: str, arguments: list[str], url: URL | None) -> str:
    """Run a PostgreSQL client program against `url` (or none); its output."""
    found = shutil.which(program)
    if found is None:
        raise BackupError(
            f"{program} not found: install the PostgreSQL client of the server's version "
            "(Debian: apt install postgresql-client)"
        )
    target = ["--dbname", _libpq_uri(url)] if url is not None else []
    done = subprocess.run(
        [found, *arguments, *target],
        env=os.environ | (_libpq_secrets(url) if url is not None else {}),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise BackupError(f"{program} failed: {said[-1] if said else f'exit {done.returncode}'}")
    return done.stdout


def _libpq_uri(url: URL) -> str:
    """The database's address as libpq reads it, without the password or SQLAlchemy's driver."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _libpq_secrets(url: URL) -> Mapping[str, str]:
    return {"PGPASSWORD": str(url.password)} if url.password else {}


def restore(engine: Engine, source: Path) -> str:
    """Replace the database's contents with the backup `source`: refused for a file that is not
    a Postventa backup, or is one from a newer Postventa. Returns a line saying what was
    restored (and whether `db upgrade` is needed next)."""
    if not source.is_file():
        raise BackupError(f"{source}: no such file")
    head, known = schema.revisions()
    if engine.dialect.name == "sqlite":
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as backup_file:
            revision = _check_sqlite(backup_file, source)
            _refuse_newer(revision, known, head, source)
            with engine.connect() as connection:
                live = connection.connection.driver_connection
                assert isinstance(live, sqlite3.Connection)
                backup_file.backup(live)
    else:
        revision = _pg_backup_revision(source)
        _refuse_newer(revision, known, head, source)
        _pg_run("pg_restore", [*PG_RESTORE_FLAGS, str(source)], engine.url)
    then = "" if revision == head else ": run `postventa db upgrade` before starting Postventa"
    return f"restored {source} (schema {revision}){then}"


def _pg_backup_revision(source: Path) -> str | None:
    """The schema revision a `pg_dump` file holds, read from the file alone (its
    `alembic_version` table's one row, as the COPY text pg_restore prints)."""
    try:
        text = _pg_run(
            "pg_restore",
            ["--data-only", "--table=alembic_version", "--file=-", str(source)],
            None,
        )
    except BackupError as error:
        raise BackupError(f"{source} is not a PostgreSQL backup of Postventa: {error}") from None
    lines = text.splitlines()
    for number, line in enumerate(lines[:-1]):
        if line.startswith("COPY ") and "alembic_version" in line:
            following = lines[number + 1]
            return None if following == "\\." else following.strip()
    return None


def _refuse_newer(revision: str | None, known: frozenset[str], head: str, source: Path) -> None:
    if revision is None:
        raise BackupError(f"{source} has no Postventa schema: not a Postventa backup")
    if revision not in known:
        raise BackupError(
            f"{source} is at schema {revision}, newer than this version of Postventa "
            f"(which knows up to {head}): restore it with the Postventa that made it"
        )
