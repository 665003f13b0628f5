"""Deploying: the Procfile as a platform runs it (`release` migrates an empty database, `web`
serves under gunicorn with several worker processes, `worker` sends; `/healthz?deep=1` turns
healthy once the worker passes, and `/metrics` adds up what every gunicorn process counted),
and what can be checked here of the image, the compose file and the systemd units."""

from __future__ import annotations

import gc
import importlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from twilio.request_validator import RequestValidator

from scheduler import schema
from tests.migrating import blank  # noqa: F401 - fixture
from tests.processes import POSTVENTA, free_port, process_config, wait_for

__all__ = ["blank"]

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "12345678901234567890123456789012"
SMS = "/webhooks/twilio/sms"
REQUESTS = 40


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


@contextmanager
def started(command: str, env: dict[str, str], cwd: Path, log: Path) -> Iterator[None]:
    """A Procfile process (its words, with the venv's programs first on PATH), stopped with
    SIGTERM as a platform stops it."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            shlex.split(command), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"{command!r} did not stop on SIGTERM") from None
        assert code == 0, log.read_text(errors="replace")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def signed_sms(base: str, public: str, n: int) -> int:
    params = {
        "MessageSid": f"SM{n:032d}",
        "From": f"+5198{n:07d}",
        "To": "+15005550006",
        "Body": "todo bien, gracias",
    }
    signature = RequestValidator(TOKEN).compute_signature(public + SMS, params)
    request = urllib.request.Request(
        base + SMS,
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


@pytest.mark.slow
def test_the_procfile_releases_serves_and_sends(blank: Engine, tmp_path: Path) -> None:
    commands = procfile()
    assert set(commands) == {"release", "web", "worker"}
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    config = process_config(
        tmp_path,
        blank,
        business={"public_url": public},
        twilio={"auth_token": TOKEN},
        worker={"tick_seconds": 2},
    )
    env = os.environ | {
        "PATH": f"{Path(POSTVENTA).parent}{os.pathsep}{os.environ['PATH']}",
        "POSTVENTA_CONFIG": str(config),
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
    }
    counts = tmp_path / "metrics"  # gunicorn's processes write their counts here
    env["PROMETHEUS_MULTIPROC_DIR"] = str(counts)
    release = subprocess.run(
        shlex.split(commands["release"]), env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert release.returncode == 0, release.stderr
    assert schema.current_revision(blank) == schema.head_revision()

    with started(commands["web"], env, tmp_path, tmp_path / "web.log"):
        wait_for(lambda: get(public + "/healthz")[0] == 200, "gunicorn to answer")
        status, said = get(public + "/healthz?deep=1")
        assert status == 503 and '"worker":"late"' in said.replace(" ", "")
        with started(commands["worker"], env, tmp_path, tmp_path / "worker.log"):
            wait_for(lambda: get(public + "/healthz?deep=1")[0] == 200, "the worker's first pass")
        with ThreadPoolExecutor(8) as callers:  # spread over gunicorn's worker processes
            answers = list(callers.map(lambda n: signed_sms(public, public, n), range(REQUESTS)))
        assert answers == [200] * REQUESTS
        status, text = get(public + "/metrics")
    assert status == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("postventa_webhook_seconds_count", (("webhook", SMS),))] == REQUESTS
    # Both of gunicorn's processes answered webhooks, and /metrics added up their counts.
    assert len(list(counts.glob("histogram_*.db"))) == 2


def test_gunicorns_master_freezes_the_app_before_each_fork(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # not one of its own
    settings = importlib.import_module("web.gunicorn_config")
    try:
        settings.pre_fork(None, None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


# --- what can be checked of the deployment files without a container runtime or systemd -------


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions (continuation lines joined), as (KEYWORD, arguments)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_the_image_runs_the_procfile_as_a_user_with_a_health_check() -> None:
    steps = instructions(ROOT / "Dockerfile")
    final = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    (health,) = [rest for keyword, rest in final if keyword == "HEALTHCHECK"]
    assert "/healthz" in health and "--interval=" in health and "--timeout=" in health
    (command,) = [json.loads(rest) for keyword, rest in final if keyword == "CMD"]
    web = shlex.split(procfile()["web"])
    assert command[: len(web) - 1] == web[:-1] and command[-1] == web[-1]
    bind = command[command.index("--bind") + 1]
    assert [rest for keyword, rest in final if keyword == "EXPOSE"] == [bind.rsplit(":", 1)[1]]
    copied = {rest.split()[0] for keyword, rest in steps if keyword == "COPY"}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    tops = {name.split(".")[0] for name in packages["tool"]["setuptools"]["packages"]}
    assert tops - {"scheduler"} <= copied and {"scheduler", "message_templates"} <= copied


def test_compose_runs_release_then_web_and_worker_on_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"db", "release", "web", "worker"}
    commands = procfile()
    assert services["release"]["command"] == shlex.split(commands["release"])
    assert services["worker"]["command"] == shlex.split(commands["worker"])
    assert "command" not in services["web"]  # the image's CMD: gunicorn, as the Procfile says
    assert services["release"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {
            "release": {"condition": "service_completed_successfully"}
        }
        environment = services[name]["environment"]
        assert "@db/" in environment["POSTVENTA_DATABASE_URL"]
        assert environment["POSTVENTA_SECRET_KEY"].startswith("${POSTVENTA_SECRET_KEY:?")
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]  # behind a proxy, not open


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_the_systemd_units_are_valid(tmp_path: Path) -> None:
    """systemd's own check, with the installed programs where the units expect them."""
    programs = Path(POSTVENTA).parent
    units = sorted((ROOT / "docs" / "deploy").glob("*.service"))
    assert {unit.name for unit in units} == {
        "postventa.service",
        "postventa-web.service",
        "postventa-worker@.service",
    }
    for unit in units:
        text = unit.read_text(encoding="utf-8").replace("/opt/postventa/bin", str(programs))
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    checked = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / unit.name) for unit in units)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "Unknown" not in checked.stderr, checked.stderr
