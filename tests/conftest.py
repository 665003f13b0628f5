"""Fixtures: every database test runs twice, on SQLite and on PostgreSQL.

PostgreSQL is the local server on 127.0.0.1:5432 (user postgres, trust auth). A fresh database
is created for each test session and dropped afterwards. With CI=true an unreachable server
stops the run loudly: the PostgreSQL tests must never be skipped there.

POSTVENTA_TEST_CLOCK=<ISO 8601 instant> moves the wall clock of the whole run to that instant
(it keeps ticking), so that a test that depends on today's date fails here rather than on the
day the calendar reaches it; `make test` runs the suite a second time that way.
"""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import time_machine
from argon2 import PasswordHasher
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from scheduler import accounts, logs, schema
from scheduler.accounts import add_user, create_api_token
from scheduler.config import Config, defaults
from scheduler.db import make_engine, make_session_factory
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Role
from scheduler.models import Base, User
from tests.browsing import log_in
from tests.factories import NOW
from web import create_app

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
MOVED_CLOCK = os.environ.get("POSTVENTA_TEST_CLOCK")
TESTS_APPLICATION = "postventa-tests"  # application_name of the tests' own PostgreSQL sessions


def pytest_configure(config: pytest.Config) -> None:
    # Real argon2, at its cheapest: the hundreds of log-ins of the suite would otherwise spend
    # a minute of both cores hashing (the product keeps argon2-cffi's own parameters).
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    if MOVED_CLOCK:
        destination = datetime.fromisoformat(MOVED_CLOCK)
        if destination.tzinfo is None:
            raise pytest.UsageError("POSTVENTA_TEST_CLOCK needs an offset, e.g. +00:00")
        time_machine.travel(destination, tick=True).start()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that start processes first: on both cores (`-n 2 --dist worksteal`) the short
    tests then fill in around them, instead of one long test running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_report_header() -> str | None:
    if MOVED_CLOCK:
        return f"wall clock moved to {datetime.now(UTC).isoformat(timespec='seconds')}"
    return None


def _postgres_reachable() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _start_postgres() -> None:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    for version in versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )


def _require_postgres() -> None:
    if _postgres_reachable():
        return
    _start_postgres()
    if _postgres_reachable():
        return
    message = "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started"
    if os.environ.get("CI") == "true":
        pytest.exit(f"{message}: the PostgreSQL tests must run in CI", returncode=3)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A brand-new PostgreSQL database for this test session."""
    _require_postgres()
    name = f"postventa_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'postventa.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def migrated_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    schema.upgrade(engine)
    yield engine
    engine.dispose()


def _empty_tables(engine: Engine) -> None:
    """Every row deleted and, on PostgreSQL, every id counting from 1 again. DELETE and setval,
    not TRUNCATE: on a test's few rows TRUNCATE costs sixteen times as much (it makes new
    files), which was a minute of every suite run."""
    tables = list(reversed(Base.metadata.sorted_tables))
    tables.sort(key=lambda table: table.name == "follow_up_tallies")  # last: deleting the
    # follow-ups writes to it
    with engine.begin() as connection:
        for table in tables:
            connection.execute(table.delete())
        if engine.dialect.name == "postgresql":
            for name in schema.POSTGRESQL_ONLY_TABLES:
                connection.execute(text(f"DELETE FROM {name}"))
            connection.execute(
                text(
                    "SELECT setval(s.oid, 1, false) FROM pg_class s "
                    "JOIN pg_namespace n ON n.oid = s.relnamespace "
                    "WHERE s.relkind = 'S' AND n.nspname = current_schema()"
                )
            )


@pytest.fixture
def engine(migrated_engine: Engine) -> Iterator[Engine]:
    """The session's migrated database, emptied after each test."""
    yield migrated_engine
    _empty_tables(migrated_engine)


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """PostgreSQL alone, for what only it can show (workers on several machines, connections
    cut by the server); the test's own connections are named, so it can spare them."""
    engine = make_engine(f"{postgres_url}?application_name={TESTS_APPLICATION}")
    schema.upgrade(engine)
    yield engine
    _empty_tables(engine)
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with make_session_factory(engine)() as db_session:
        yield db_session


@pytest.fixture
def config(engine: Engine) -> Config:
    url = engine.url.render_as_string(hide_password=False)
    return defaults().replace(database={"url": url})


@pytest.fixture
def config_file(tmp_path: Path, engine: Engine) -> Path:
    """A config.toml pointing at the test database, for the command line."""
    url = engine.url.render_as_string(hide_password=False)
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    return path


class EnglishBrowser(FlaskClient):
    """A browser that asks for English, as the tests read the pages (a test may say otherwise
    with its own Accept-Language)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


class CompiledOnce(BytecodeCache):
    """The admin's templates compiled once per test process, not once per test's app: each
    app has its own Jinja environment, and compiling its pages was a tenth of the suite's time.
    Jinja checks each template's source against the code it kept, so an edit still shows."""

    def __init__(self) -> None:
        self.codes: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if (code := self.codes.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.codes[bucket.key] = bucket.bytecode_to_string()


COMPILED = CompiledOnce()


@pytest.fixture
def app(config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.chdir(tmp_path)  # the instance folder (secret key) goes into the test's tmp dir
    flask_app = create_app(config)
    flask_app.config["TESTING"] = True
    flask_app.jinja_env.bytecode_cache = COMPILED
    flask_app.test_client_class = EnglishBrowser
    yield flask_app
    flask_app.extensions["postventa"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Cli:
    """Runs `postventa` in-process with a given config file, as a person would type it."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file

    def __call__(self, *args: str, input: str | None = None) -> Any:
        from web.cli import cli

        prefix = ["--config", str(self.config_file)] if self.config_file else []
        return CliRunner().invoke(cli, [*prefix, *args], input=input, catch_exceptions=False)


@pytest.fixture
def postventa(config_file: Path) -> Cli:
    return Cli(config_file)


@pytest.fixture
def token(session: Session) -> str:
    """The default cadence installed and an API token for the shop's system."""
    install_defaults(session, NOW)
    secret = create_api_token(session, name="tienda-online", now=NOW, actor="test")
    session.commit()
    return secret


# Figures tests want shown at the end of the run (precision and recall of the classifier).
REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("figures")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def logging_as_found() -> Iterator[None]:
    """A test that configures logging as a process does (`postventa worker`, `run`) leaves
    the root logger as it found it: the next test's output is not the log's."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if isinstance(handler, logs.StderrHandler) and handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)


OWNER = ("owner@example.com", "owner password 1")
STAFF = ("staff@example.com", "staff password 1")


def _user(session: Session, login: tuple[str, str], role: Role, locale: str = "en") -> User:
    user = add_user(
        session,
        email=login[0],
        role=role,
        password=login[1],
        now=datetime(2026, 11, 1, tzinfo=UTC),
        actor="test",
    )
    user.locale = locale
    session.commit()
    return user


@pytest.fixture
def owner(session: Session) -> User:
    return _user(session, OWNER, Role.OWNER)


@pytest.fixture
def staff(session: Session, owner: User) -> User:
    return _user(session, STAFF, Role.STAFF)


@pytest.fixture
def owner_client(app: Flask, owner: User) -> FlaskClient:
    """A browser logged in as the owner (interface in English)."""
    browser = app.test_client()
    assert log_in(browser, *OWNER).status_code == 302
    return browser


@pytest.fixture
def staff_client(app: Flask, staff: User) -> FlaskClient:
    browser = app.test_client()
    assert log_in(browser, *STAFF).status_code == 302
    return browser
