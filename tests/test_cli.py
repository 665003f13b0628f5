"""The command line: init, db upgrade, user add, token create, and errors a person can act on."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from scheduler import accounts, defaults, schema
from scheduler.cli import Runtime
from scheduler.clock import utcnow
from scheduler.defaults import default_templates
from scheduler.lifecycle import Anchor, FollowUpStatus, Role
from scheduler.models import (
    ApiToken,
    AuditEntry,
    Cadence,
    CadenceStep,
    Customer,
    FollowUp,
    MessageTemplate,
    Product,
    Sale,
    User,
)
from tests.conftest import Cli
from tests.processes import POSTVENTA
from web.cli import _serving


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_init_demo_is_idempotent(postventa: Cli, session: Session) -> None:
    first = postventa("init", "--demo")
    assert first.exit_code == 0, first.output
    assert "default cadence installed (8 steps)" in first.output
    assert "42 default templates installed" in first.output
    assert "demo data: 6 sales added" in first.output
    second = postventa("init", "--demo")
    assert second.exit_code == 0, second.output
    assert "demo data already present" in second.output
    assert "installed" not in second.output
    assert count(session, Sale) == 6
    assert count(session, Customer) == 6
    assert count(session, Product) == 3


def test_init_without_demo_adds_no_sales(postventa: Cli, session: Session) -> None:
    result = postventa("init")
    assert result.exit_code == 0, result.output
    assert f"database already at {schema.head_revision()}" in result.output
    assert count(session, Sale) == 0


def test_init_migrates_an_empty_database(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "new.db"}"\n')
    result = Cli(config)("init")
    assert result.exit_code == 0, result.output
    assert f"database migrated from empty to {schema.head_revision()}" in result.output


@pytest.mark.parametrize("files", [True, False], ids=["files-left-out", "package-left-out"])
def test_init_stops_when_the_install_ships_no_templates(
    postventa: Cli, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: bool
) -> None:
    # As `pip install .` once did: every follow-up would then fail for want of its template.
    if files:
        (tmp_path / "bare_templates").mkdir()
        (tmp_path / "bare_templates" / "__init__.py").write_text("")
        monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(defaults, "TEMPLATES_PACKAGE", "bare_templates")
    try:
        result = postventa("init")
    finally:
        sys.modules.pop("bare_templates", None)
    assert result.exit_code == 1
    assert result.output == (
        "Error: no default templates found in the package bare_templates: "
        "this installation of Postventa is incomplete; reinstall it\n"
    )
    assert count(session, Cadence) == 0 and count(session, MessageTemplate) == 0


def test_db_upgrade_reports_the_revision_and_adds_the_templates_steps_need(
    postventa: Cli, session: Session
) -> None:
    """The release step runs `db upgrade` alone: a template a new version's step uses (0006's
    "did we solve it?") must not wait for someone to run `init`."""
    result = postventa("db", "upgrade")
    assert result.exit_code == 0
    shipped = len(default_templates())
    assert result.output.splitlines() == [
        f"database at {schema.head_revision()}",
        f"{shipped} default templates installed",
    ]
    assert count(session, MessageTemplate) == shipped
    again = postventa("db", "upgrade")
    assert again.output.strip() == f"database at {schema.head_revision()}"


def test_user_add_reads_the_password_from_stdin(postventa: Cli, session: Session) -> None:
    result = postventa(
        "user",
        "add",
        "Dueña@Tienda.pe",
        "--role",
        "owner",
        "--password-stdin",
        input="una clave muy larga\n",
    )
    assert result.exit_code == 0, result.output
    user = session.scalars(select(User)).one()
    assert user.email == "dueña@tienda.pe"
    assert user.role == Role.OWNER
    assert user.password_hash.startswith("$argon2")
    assert accounts.verify_password(user.password_hash, "una clave muy larga")
    assert not accounts.verify_password(user.password_hash, "otra clave")
    entry = session.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.actor, entry.entity_id) == ("user.add", "cli", user.id)


def test_user_add_prompts_for_a_confirmed_password(postventa: Cli, session: Session) -> None:
    result = postventa(
        "user", "add", "staff@tienda.pe", "--role", "staff", input="abcdefghij\n" * 2
    )
    assert result.exit_code == 0, result.output
    assert session.scalars(select(User.role)).one() == Role.STAFF


def test_user_add_refuses_duplicates_short_passwords_and_bad_emails(
    postventa: Cli, session: Session
) -> None:
    def add(email: str, password: str, role: str = "staff") -> tuple[int, str]:
        result = postventa(
            "user", "add", email, "--role", role, "--password-stdin", input=password + "\n"
        )
        return result.exit_code, result.output

    assert add("a@tienda.pe", "long enough pw")[0] == 0
    assert add("A@TIENDA.PE", "long enough pw") == (
        1,
        "Error: a user with the email a@tienda.pe already exists\n",
    )
    assert add("b@tienda.pe", "short") == (
        1,
        "Error: the password must have at least 10 characters\n",
    )
    code, output = add("not-an-email", "long enough pw")
    assert code == 1 and "'not-an-email' is not a valid email address" in output
    code, output = add("c@tienda.pe", "long enough pw", role="admin")
    assert code == 2 and "'admin' is not one of 'owner', 'staff'" in output
    assert count(session, User) == 1


def test_token_create_prints_a_token_stored_only_hashed(postventa: Cli, session: Session) -> None:
    result = postventa("token", "create", "tienda online")
    assert result.exit_code == 0, result.output
    secret = result.output.strip()
    assert secret.startswith("pv_") and len(secret) > 40
    row = session.scalars(select(ApiToken)).one()
    assert row.name == "tienda online"
    assert secret not in (row.token_hash, row.prefix)
    assert accounts.find_api_token(session, secret, utcnow()) is not None
    assert accounts.find_api_token(session, secret + "x", utcnow()) is None


def test_revoked_token_is_not_accepted(postventa: Cli, session: Session) -> None:
    secret = postventa("token", "create", "old").output.strip()
    session.execute(text("UPDATE api_tokens SET revoked_at = created_at"))
    assert accounts.find_api_token(session, secret, utcnow()) is None


def test_commands_refuse_a_database_that_is_behind(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "old.db"}"\n')
    result = Cli(config)("token", "create", "x")
    assert result.exit_code == 1
    assert "has no Postventa tables: run `postventa db upgrade`" in result.output


def test_bad_configuration_exits_2_with_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[business]\nsend_window = '20:00-09:00'\n")
    result = Cli(config)("init")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {config}: business.send_window '20:00-09:00': start must be before end\n"
    )


def test_web_refuses_to_start_on_a_stale_database(tmp_path: Path, engine: Engine) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "stale.db"}"\n')
    result = Cli(config)("web", "--port", "0")
    assert result.exit_code == 1
    assert "run `postventa db upgrade`" in result.output


@pytest.mark.parametrize(
    ("host", "link"),
    [
        ("0.0.0.0", "http://127.0.0.1:8080"),
        ("192.0.2.7", "http://192.0.2.7:8080"),
        ("::1", "http://[::1]:8080"),
    ],
)
def test_serving_without_a_public_url_links_to_the_served_address_and_says_so(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    link: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.toml: the built-in defaults
    monkeypatch.delenv("POSTVENTA_CONFIG", raising=False)
    runtime = Runtime(None)
    _serving(runtime, host, 8080)
    assert runtime.config.business.public_url == link
    assert runtime.config.business.base_url == link
    assert "Twilio needs the real public address" in caplog.text


def test_serving_keeps_a_configured_public_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[business]\npublic_url = "https://tienda.example.pe/"\n', encoding="utf-8")
    runtime = Runtime(str(path))
    _serving(runtime, "0.0.0.0", 8080)
    assert runtime.config.business.base_url == "https://tienda.example.pe"
    assert caplog.text == ""


def test_the_scheduler_says_only_its_problems() -> None:
    Runtime(None).start_logging()
    ticker = logging.getLogger("apscheduler.executors.default")
    assert not ticker.isEnabledFor(logging.INFO) and ticker.isEnabledFor(logging.WARNING)


def test_init_installs_a_renewal_reminder_14_days_before(postventa: Cli, session: Session) -> None:
    assert postventa("init").exit_code == 0
    step = session.scalars(select(CadenceStep).where(CadenceStep.key == "renewal-reminder")).one()
    assert (step.anchor, step.offset_minutes, step.active) == (Anchor.RENEWAL, -14 * 24 * 60, True)
    assert step.cadence.is_default


def test_the_demo_has_a_renewing_product_whose_reminder_shows_on_the_customer(
    postventa: Cli, session: Session, owner_client: FlaskClient
) -> None:
    assert postventa("init", "--demo").exit_code == 0
    plan = session.scalars(select(Product).where(Product.sku == "MANT-1Y")).one()
    assert plan.renewal_days == 365
    reminders = session.scalars(
        select(FollowUp).join(FollowUp.step).where(CadenceStep.key == "renewal-reminder")
    ).all()
    assert len(reminders) == 2  # both buyers of the yearly plan
    assert {row.status for row in reminders} == {FollowUpStatus.SCHEDULED}
    reminder = reminders[0]
    sold = reminder.sale.sold_at
    assert sold + timedelta(days=351) <= reminder.due_at < sold + timedelta(days=353)
    page = owner_client.get(f"/customers/{reminder.customer_id}").get_data(as_text=True)
    assert "renewal-reminder" in page


HEAVY = (
    "sqlalchemy",
    "alembic",
    "flask",
    "twilio",
    "apscheduler",
    "phonenumbers",
    "email_validator",
    "babel",
    "jinja2",
)


def loaded_after(tmp_path: Path, *args: str) -> set[str]:
    """The heavy libraries a fresh process has loaded after `postventa ARGS` (in-process, so
    that its modules can be listed)."""
    script = (
        "import sys\n"
        "from web.cli import cli\n"
        f"try:\n    cli.main({list(args)!r}, prog_name='postventa')\n"
        "except SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_help_loads_no_library_a_command_may_not_need(tmp_path: Path) -> None:
    """`postventa --help` (and a typo) answer at once: each command loads what it uses."""
    assert loaded_after(tmp_path, "--help") == set()
    assert loaded_after(tmp_path, "worker", "--help") == set()


@pytest.mark.slow
def test_a_dispatch_pass_on_the_outbox_loads_neither_the_web_app_nor_twilio(
    tmp_path: Path, config_file: Path
) -> None:
    """Nor what only an address in the configuration (email_validator), a date in a message
    or a notice (Babel) or a template to render (Jinja) needs: a pass with nothing due starts
    without them."""
    assert (
        subprocess.run(
            [POSTVENTA, "--config", str(config_file), "init"], capture_output=True, timeout=120
        ).returncode
        == 0
    )
    loaded = loaded_after(tmp_path, "--config", str(config_file), "dispatch", "--once")
    assert "sqlalchemy" in loaded  # it did run the pass
    unused = {"flask", "alembic", "twilio", "apscheduler", "email_validator", "babel", "jinja2"}
    assert not loaded & unused, loaded
