"""Installed from its wheel, away from the checkout, Postventa sets itself up and sends.

The wheel is built from a copy of the checkout with the setuptools of this environment (no
build isolation, no network) and installed into a fresh virtual environment in a temporary
folder. That environment takes its dependencies from this one through a `.pth` file, which adds
their folder after its own: `scheduler` and `web` can only come from the wheel, and a test says
so. Every command runs there, in a folder of its own with its own `config.toml`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "message_templates"
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", "instance"
)
SHIPPED_SUFFIXES = {".py", ".txt", ".html", ".md"}

CONFIG = """\
[database]
url = "sqlite:///{db}"

[business]
name = "Tienda Rueda"
timezone = "UTC"
send_window = "00:00-24:00"
send_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
"""

# Run by the installed interpreter: the API as an integration calls it, through the app factory.
# The clock is read here, as `postventa dispatch` reads it, not in the test process (which
# POSTVENTA_TEST_CLOCK may have moved): day 1's thanks is due two hours ago, within the grace.
RECORD_SALES = """\
import json, sys
from datetime import UTC, datetime, timedelta

import scheduler, web
from web import create_app

sold_at = (datetime.now(UTC) - timedelta(days=1, hours=2)).isoformat()
customers = [
    {"name": "Rosa Quispe", "phone": "+51987654321"},
    {"name": "Luis Ramos", "email": "luis@example.com"},
]
client = create_app().test_client()
answers = [
    client.post(
        "/api/sales",
        headers={"Authorization": f"Bearer {sys.argv[1]}"},
        json={
            "external_id": f"W-{number}",
            "sold_at": sold_at,
            "customer": customer,
            "product": {"sku": "LAV-8", "name": "Lavadora 8 kg"},
            "amount": "1299.00",
            "currency": "PEN",
        },
    )
    for number, customer in enumerate(customers, 1)
]
print(json.dumps({
    "modules": [scheduler.__file__, web.__file__],
    "answers": [[answer.status_code, answer.get_json()] for answer in answers],
}))
"""


def shipped_files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and path.suffix in SHIPPED_SUFFIXES and "__pycache__" not in path.parts
    )


def as_pattern(template: str) -> re.Pattern[str]:
    """The template's own words, any value where it has a `{{ variable }}`."""
    parts = re.split(r"\{\{.*?\}\}", template.strip("\n"))
    return re.compile(".+?".join(re.escape(part) for part in parts), re.DOTALL)


def pip(*args: str | Path) -> None:
    """This environment's pip, offline: nothing is downloaded, the dependencies are here."""
    command = [sys.executable, "-m", "pip", *map(str, args), "--no-index", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "postventa"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)  # a build writes build/ and egg-info
    dist = tmp_path_factory.mktemp("dist")
    pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, source)
    (built,) = dist.glob("postventa-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin folder."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    ask = "import sysconfig; print(sysconfig.get_path('purelib'))"
    found = subprocess.run([python, "-c", ask], check=True, capture_output=True, text=True)
    site_packages = Path(found.stdout.strip())
    dependencies = dict.fromkeys(sysconfig.get_path(kind) for kind in ("purelib", "platlib"))
    (site_packages / "postventa-test-dependencies.pth").write_text("\n".join(dependencies))
    pip("--python", python, "install", "--no-deps", wheel)
    return venv / "bin"


def test_the_wheel_carries_every_module_template_and_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {
        f"scheduler/message_templates/{path.relative_to(TEMPLATES).as_posix()}"
        for path in shipped_files(TEMPLATES)
    }
    assert "scheduler/message_templates/sms/es/check_in.txt" in templates
    assert "scheduler/message_templates/email/layout.html" in templates
    migrations = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "scheduler" / "migrations" / "versions").glob("*.py")
    }
    assert "scheduler/migrations/versions/0001_initial_schema.py" in migrations
    modules = {
        path.relative_to(ROOT).as_posix()
        for top in ("scheduler", "web")
        for path in shipped_files(ROOT / top)
        if path.suffix == ".py"
    }
    assert sorted(templates - names) == []
    assert sorted(migrations - names) == []
    assert sorted(modules - names) == [], "a package missing from pyproject.toml's list?"
    assert "scheduler/migrations/script.py.mako" in names


def test_installed_from_the_wheel_it_sets_up_and_sends(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG.format(db=tmp_path / "postventa.db"))
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("POSTVENTA_", "PYTHON", "VIRTUAL_ENV"))
    }

    def run(*command: str | Path) -> str:
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        return done.stdout

    postventa = installed / "postventa"
    shipped = len(list(TEMPLATES.glob("*/*/*.txt")))
    report = run(postventa, "init")
    assert "default cadence installed" in report
    assert f"{shipped} default templates installed" in report

    token = run(postventa, "token", "create", "wheel test").strip()
    recorded = json.loads(run(installed / "python", "-c", RECORD_SALES, token))
    assert all(Path(module).is_relative_to(installed.parent) for module in recorded["modules"])
    assert [status for status, _ in recorded["answers"]] == [201, 201]
    first_steps = [answer["follow_ups"][0] for _, answer in recorded["answers"]]
    assert [(step["step"], step["channel"]) for step in first_steps] == [
        ("day1-thanks", "sms"),
        ("day1-thanks", "email"),
    ]

    summary = json.loads(run(postventa, "dispatch", "--once", "--json"))
    assert (summary["sent"], summary["failed"], summary["skipped"]) == (2, 0, 0)

    with sqlite3.connect(tmp_path / "postventa.db") as db:
        sms, email = db.execute(
            "SELECT to_address, subject, body, html_body FROM outbox ORDER BY channel DESC"
        ).fetchall()
    assert sms[0] == "+51987654321"
    assert sms[2].startswith("Hola Rosa, gracias por comprar Lavadora 8 kg en Tienda Rueda.")
    assert as_pattern((TEMPLATES / "sms" / "es" / "thanks.txt").read_text()).fullmatch(sms[2])

    subject_line, _, body = (TEMPLATES / "email" / "es" / "thanks.txt").read_text().partition("\n")
    assert email[0] == "luis@example.com"
    assert as_pattern(subject_line.removeprefix("Subject:").strip()).fullmatch(email[1])
    assert as_pattern(body).fullmatch(email[2])
    layout = (TEMPLATES / "email" / "layout.html").read_text()
    assert all(line.strip() in email[3] for line in layout.splitlines() if "{" not in line)
