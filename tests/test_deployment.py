"""The Procfile as a platform runs it: `release` migrates an empty database, `web` serves under
gunicorn with several worker processes, `worker` sends; `/healthz?deep=1` turns healthy once
the worker passes, and `/metrics` adds up what every gunicorn process counted."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
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
