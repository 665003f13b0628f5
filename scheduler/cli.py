"""The `postventa` command line: the domain commands. `web.cli` adds the ones that serve HTTP."""

from __future__ import annotations

import json
import logging
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

from scheduler.lifecycle import Role

if TYPE_CHECKING:  # the commands import what they use when they run: --help stays instant
    from sqlalchemy import Engine

    from scheduler.config import Config
    from scheduler.sending import csv_import
    from scheduler.settings import LiveSettings

log = logging.getLogger(__name__)


class CliError(click.ClickException):
    """A failure the person at the terminal can act on: printed as one line, no traceback."""


class ConfigProblem(CliError):
    """The configuration is unusable: exit 2, like any other unusable input."""

    exit_code = 2


class Runtime:
    """What commands share: the configuration and the engine, loaded on first use."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path

    @cached_property
    def config(self) -> Config:
        from scheduler.config import ConfigError, load_config

        try:
            return load_config(self.config_path)
        except ConfigError as error:
            raise ConfigProblem(str(error)) from None

    @cached_property
    def engine(self) -> Engine:
        """The database's engine, once it has answered: else one line says what to check."""

        from scheduler.db import DatabaseUnreachable, open_engine

        try:
            return open_engine(self.config.database.url)
        except DatabaseUnreachable as error:
            raise CliError(str(error)) from None

    def close(self) -> None:
        """Release database connections (cached_property stores the engine in __dict__)."""
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.dispose()

    def current_engine(self) -> Engine:
        """The engine, after checking the schema is at head (commands other than migrations)."""

        from scheduler import schema

        try:
            schema.require_current(self.engine)
        except schema.SchemaError as error:
            raise CliError(str(error)) from None
        return self.engine

    def start_logging(self) -> None:
        """Log to standard error as `[logging]` says (commands that run for long, or report
        what they sent)."""
        from scheduler import logs

        logs.configure(self.config.logging)

    @cached_property
    def settings(self) -> LiveSettings:
        """The settings in force: the file's, with what owners saved in the admin, as the web
        app and the worker read them."""
        from scheduler.settings import LiveSettings

        return LiveSettings.from_engine(self.current_engine(), self.config)


pass_runtime = click.make_pass_decorator(Runtime)


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Configuration file (default: $POSTVENTA_CONFIG, else ./config.toml, else defaults).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Postventa: follow up after every sale, and never ignore a complaint."""
    ctx.obj = Runtime(config_path)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.option("--demo", is_flag=True, help="Also add demo customers and sales.")
@pass_runtime
def init(runtime: Runtime, demo: bool) -> None:
    """Migrate the database to the newest schema and install defaults. Safe to run again."""
    from scheduler import bootstrap, schema
    from scheduler.clock import utcnow
    from scheduler.defaults import MissingTemplates

    try:
        report = bootstrap.initialise(runtime.engine, runtime.config, demo=demo, now=utcnow())
    except (MissingTemplates, schema.SchemaError) as error:
        raise CliError(str(error)) from None
    for line in report:
        click.echo(line)


@cli.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@pass_runtime
def db_upgrade(runtime: Runtime) -> None:
    """Apply every pending migration (Alembic upgrade to head), and add the default templates
    the new version's steps need (the owner's edited ones are left alone)."""
    from scheduler import schema
    from scheduler.clock import utcnow
    from scheduler.db import make_session_factory
    from scheduler.defaults import MissingTemplates, install_templates

    before = schema.current_revision(runtime.engine)
    try:
        schema.upgrade(runtime.engine)
        with make_session_factory(runtime.engine).begin() as session:
            installed = install_templates(session, utcnow())
    except (schema.SchemaError, MissingTemplates) as error:
        raise CliError(str(error)) from None
    after = schema.current_revision(runtime.engine)
    click.echo(f"database at {after}" + (f" (was {before or 'empty'})" if before != after else ""))
    for line in installed:
        click.echo(line)


@cli.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@pass_runtime
def backup_command(runtime: Runtime, file: Path, force: bool) -> None:
    """Back up the whole database to FILE while Postventa runs (SQLite: a consistent copy;
    PostgreSQL: pg_dump's custom format, for pg_restore or `postventa restore`)."""
    from scheduler import backups

    if file.exists() and not force:
        raise CliError(f"{file} exists: name a new file, or add --force to replace it")
    try:
        click.echo(backups.backup(runtime.engine, file))
    except backups.BackupError as error:
        raise CliError(str(error)) from None


@cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask: replace the database's contents.")
@pass_runtime
def restore_command(runtime: Runtime, file: Path, yes: bool) -> None:
    """Replace everything in the database with the backup FILE. Stop the web app and every
    worker first: refused while a worker is sending."""
    from scheduler import backups, heartbeats, schema
    from scheduler.clock import utcnow
    from scheduler.db import make_session_factory

    with make_session_factory(runtime.engine)() as session:
        busy = schema.current_revision(runtime.engine) == schema.head_revision() and any(
            state.passing for state in heartbeats.workers(session, now=utcnow())
        )
    if busy:
        raise CliError("a worker is sending: stop every worker (and the web app), then restore")
    if not yes:
        click.confirm(f"Replace everything in the database with {file}?", abort=True)
    try:
        click.echo(backups.restore(runtime.engine, file))
    except backups.BackupError as error:
        raise CliError(str(error)) from None


@cli.group()
def customer() -> None:
    """A customer's data on request: export it, or erase it."""


def customer_number(text: str) -> int:
    """A customer's id as typed at the terminal; exit 2 with why when it is not one."""
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 18):
        raise UnusableInput(f"{text!r} is not a customer number (the ID on their page)")
    return int(text)


@customer.command("erase")
@click.argument("customer_id")
@click.option(
    "--reason",
    default="the customer asked",
    show_default=True,
    help="Why, for the audit log (not the person's name).",
)
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_runtime
def customer_erase(runtime: Runtime, customer_id: str, reason: str, yes: bool) -> None:
    """Erase customer CUSTOMER_ID: who they are and every word to or from them; what the shop
    counts stays, and nothing can be sent to them again. Cannot be undone."""
    from scheduler import erasure
    from scheduler.clock import utcnow
    from scheduler.db import make_session_factory
    from scheduler.models import Customer

    wanted = customer_number(customer_id)
    with make_session_factory(runtime.current_engine(), writer=True).begin() as session:
        found = session.get(Customer, wanted)
        if found is None:
            raise CliError(f"no customer {wanted}")
        if not yes:
            click.confirm(
                f"Erase customer {wanted} ({found.name})? This cannot be undone", abort=True
            )
        try:
            done = erasure.erase(session, found, actor="cli", reason=reason, now=utcnow())
        except erasure.ErasureError as error:
            raise CliError(str(error)) from None
    click.echo(
        f"customer {wanted} erased: {done.messages} messages, {done.cases} cases, "
        f"{done.follow_ups_cancelled} follow-ups cancelled"
    )


@cli.command("retention")
@click.option("--dry-run", is_flag=True, help="Say what would be erased; erase nothing.")
@pass_runtime
def retention_command(runtime: Runtime, dry_run: bool) -> None:
    """Erase the words of messages and of closed cases older than
    privacy.retention_months (the worker does it every hour)."""
    from scheduler import retention
    from scheduler.clock import utcnow
    from scheduler.db import make_session_factory

    months = runtime.config.privacy.retention_months
    if not months:
        raise CliError("privacy.retention_months is 0: everything is kept; nothing to do")
    sessions = make_session_factory(runtime.current_engine(), writer=True)
    if dry_run:
        with sessions() as session:
            found = retention.count(session, months=months, now=utcnow())
        said = "would erase"
    else:
        found = retention.sweep_all(sessions, months=months, now=utcnow(), actor="cli")
        said = "erased"
    click.echo(
        f"{said} the words of {found.messages} messages, {found.outbox} outbox copies and "
        f"{found.cases} closed cases from before {found.before:%Y-%m-%d %H:%M} UTC"
    )


@cli.group()
def user() -> None:
    """Logins for owners and staff."""


@user.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_runtime
def user_add(runtime: Runtime, email: str, role: str, password_stdin: bool) -> None:
    """Create a login for EMAIL."""
    from scheduler import accounts
    from scheduler.clock import utcnow
    from scheduler.db import make_session_factory

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    factory = make_session_factory(runtime.current_engine())
    try:
        with factory.begin() as session:
            created = accounts.add_user(
                session, email=email, role=Role(role), password=password, now=utcnow(), actor="cli"
            )
            click.echo(f"user {created.email} ({created.role}) created")
    except accounts.AccountError as error:
        raise CliError(str(error)) from None


@cli.group()
def token() -> None:
    """API tokens for the JSON API."""


@token.command("create")
@click.argument("name")
@pass_runtime
def token_create(runtime: Runtime, name: str) -> None:
    """Create an API token called NAME and print it (it is stored hashed: copy it now)."""
    from scheduler import accounts
    from scheduler.clock import utcnow
    from scheduler.db import make_session_factory

    factory = make_session_factory(runtime.current_engine())
    try:
        with factory.begin() as session:
            secret = accounts.create_api_token(session, name=name, now=utcnow(), actor="cli")
    except accounts.AccountError as error:
        raise CliError(str(error)) from None
    click.echo(secret)


@cli.command()
@click.option(
    "--once",
    is_flag=True,
    required=True,
    help="Do one pass and exit (required: the worker is what keeps sending).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@pass_runtime
def dispatch(runtime: Runtime, once: bool, as_json: bool) -> None:
    """One pass: send what is due, escalate overdue cases, send staff notices; print a summary.

    `--once` is required and so never read: a bare `postventa dispatch` in a crontab or a
    Procfile could be taken for the loop that keeps sending, which is `postventa worker`.
    """
    from scheduler import worker

    dispatcher = worker.make_dispatcher(runtime.current_engine(), runtime.settings)
    summary = worker.run_pass(dispatcher)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(", ".join(f"{key} {value}" for key, value in summary.items()))


@cli.command("worker")
@pass_runtime
def worker_command(runtime: Runtime) -> None:
    """The dispatch worker alone: a pass every worker.tick_seconds, until SIGTERM."""
    from scheduler import worker
    from scheduler.config import LOCAL_URL

    runtime.start_logging()
    if not runtime.config.business.public_url:
        log.warning(
            "business.public_url is not set: links in notices point at %s, which opens only "
            "on this machine",
            LOCAL_URL,
        )
    worker.Worker(runtime.current_engine(), runtime.settings).run_forever()


@cli.command("classify")
@click.argument("text", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
def classify_command(text: str | None, as_json: bool) -> None:
    """Classify TEXT, or each line of standard input, as the inbox would."""
    from scheduler.listening.classify import classify

    lines = [text] if text is not None else [line.rstrip("\r\n") for line in sys.stdin]
    for line in lines:
        if not line.strip():
            continue
        reading = classify(line)
        if as_json:
            click.echo(json.dumps(reading.as_dict(), ensure_ascii=False))
        else:
            score = "-" if reading.score is None else str(reading.score)
            person = "a person reads it" if reading.needs_human else "automatic"
            click.echo(
                f"{reading.label.value:<9} score {score:>2}  {reading.confidence:.2f}  "
                f"{person:<17}  {line}"
            )


class UnusableInput(CliError):
    exit_code = 2


def _reason(problem: csv_import.RowProblem) -> str:
    return f"{problem.field}: {problem.message}" if problem.field else problem.message


@cli.command("import-sales")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--dry-run", is_flag=True, help="Check every row; save nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option(
    "--rejected",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the rejected rows here, as a CSV with the reason in a last column.",
)
@pass_runtime
def import_sales_command(
    runtime: Runtime, file: str, dry_run: bool, as_json: bool, rejected: str | None
) -> None:
    """Import a CSV of sales. Exit 0: every row was good; 1: some were rejected (the good ones
    are kept); 2: the file is unusable; 3: the database failed part way (what was stored
    before the failure stays). Columns are found by name, or as mapped on the import page."""
    from scheduler.clock import utcnow
    from scheduler.collector import freeze_loaded
    from scheduler.db import make_session_factory
    from scheduler.sending import column_mappings, columns, csv_import

    config, now = runtime.settings.current(), utcnow()
    freeze_loaded()  # the collector's full passes took 15 % of a big import
    with open(file, "rb") as handle:
        text, _encoding = csv_import.decode(handle.read())
    if rejected is not None:  # a path that cannot be written stops here, before anything is stored
        try:
            open(rejected, "a", encoding="utf-8").close()
        except OSError as error:
            raise UnusableInput(f"--rejected {rejected}: {error.strerror}") from None
    with make_session_factory(runtime.current_engine())() as session:  # commits per chunk
        storing = (
            None if dry_run else csv_import.Storing(session, config=config, now=now, actor="cli")
        )
        try:
            table = csv_import.read_table(text)
            mapping = column_mappings.saved_mapping(session, table.header)
            session.commit()  # the read ends: each chunk stored is a writer's transaction
            check = csv_import.check_table(table, config, now=now, mapping=mapping, storing=storing)
        except csv_import.NeedsMapping as error:
            raise UnusableInput(
                f"{file}: {error}: map its columns once on the import page (/sales/import), "
                "or name them as the README says"
            ) from None
        except csv_import.UnusableFile as error:
            raise UnusableInput(f"{file}: {error}") from None
    if rejected is not None:
        with open(rejected, "w", encoding="utf-8-sig", newline="") as out:
            out.write(csv_import.rejected_csv(check, _reason, columns.REJECTED_BECAUSE))
    done = storing.result() if storing else csv_import.Imported(0, 0, 0)
    report = {
        "rows": check.rows,
        "valid": len(check.sales),
        "rejected": len(check.rejected_lines),
        "created": done.created,
        "existing": done.existing,
        "skipped_follow_ups": done.skipped_late,
        "dry_run": dry_run,
        "problems": [vars(problem) for problem in check.problems],
        "differing": [vars(problem) for problem in done.differing],
        "stopped_at_line": done.stopped_at_line,
        "failure": done.failure,
    }
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        for problem in check.problems:
            where = f", {problem.field}" if problem.field else ""
            click.echo(f"{file}: line {problem.line}{where}: {problem.message}", err=True)
        for problem in done.differing:
            click.echo(
                f"{file}: line {problem.line}, {problem.field}: already recorded with other "
                f"content, left as recorded: {problem.message}",
                err=True,
            )
        said = f"imported {done.created} new, {done.existing} known"
        if done.skipped_late:
            grace = config.cadences.late_grace_hours
            said += (
                f"; {done.skipped_late} follow-ups skipped: their time had passed more "
                f"than {grace:g} h before the sale was recorded"
            )
        click.echo(
            f"{check.rows} rows: {len(check.sales)} good, "
            f"{len(check.rejected_lines)} rejected; "
            f"{'nothing saved (dry run)' if dry_run else said}"
        )
    if done.failure:
        said = (
            f"{file}: stopped at line {done.stopped_at_line}: {done.failure}; the lines before "
            "it are stored: import the file again to store the rest (sales already stored are "
            "not doubled)"
        )
        click.echo(said, err=True)
        sys.exit(3)
    if check.problems or done.differing:
        sys.exit(1)
