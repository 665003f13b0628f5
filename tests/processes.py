"""For tests that start `postventa` processes: a config file for them, a backlog of due
follow-ups in real time (a process cannot be frozen), and waiting on what they do."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.clock import utcnow
from scheduler.config import WEEKDAYS, Config
from scheduler.models import CadenceStep, FollowUp
from scheduler.sending.sales import record_sales
from tests.dispatching import setup_sales
from tests.factories import sale_input
from tests.twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

POSTVENTA = str(Path(sys.executable).parent / "postventa")
DAY1 = "day1-thanks"  # the default cadence's first step: what a backlog has due

# Any hour, any day, no gap between messages: what is due goes now, whenever the test runs.
ANY_TIME: dict[str, dict[str, object]] = {
    "business": {"send_window": "00:00-24:00", "send_days": list(WEEKDAYS)},
    "cadences": {"min_gap_hours": 0},
}


def process_config(tmp_path: Path, engine: Engine, **sections: dict[str, object]) -> Path:
    """A config file for worker processes, at ANY_TIME (not named as the tests' sessions)."""
    url = engine.url.set(query={}).render_as_string(hide_password=False)
    lines = [f'[database]\nurl = "{url}"\n']
    for name, values in {**ANY_TIME, **sections}.items():
        lines.append(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    path = tmp_path / "worker.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def twilio_sections(fake: FakeTwilio, concurrency: int) -> dict[str, dict[str, object]]:
    return {
        "sms": {"transport": "twilio"},
        "twilio": {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "from_number": "+15005550006",
            "api_base_url": fake.url,
            "max_per_second": 0,
        },
        "worker": {"concurrency": concurrency, "batch_size": 10, "lease_seconds": 30},
    }


def due_backlog(engine: Engine, config: Config, count: int) -> sessionmaker[Session]:
    """`count` customers whose day-1 thank-you is due now (real time: processes can't be frozen)."""
    sold = utcnow() - timedelta(days=1, minutes=5)
    sales = [
        sale_input(f"S-{n}", phone=f"+519{n:08d}", sold_at=sold, customer_name=f"Cliente {n}")
        for n in range(count)
    ]
    config, now = config.replace(**ANY_TIME), sold + timedelta(minutes=1)
    sessions = setup_sales(engine, config, now=now)
    with sessions.begin() as session:  # as an import records them: in one batch
        record_sales(session, sales, config=config, now=now, actor="test")
    return sessions


def day1(session: Session) -> list[FollowUp]:
    """Every day-1 thank-you, by id."""
    return list(
        session.scalars(
            select(FollowUp)
            .join(CadenceStep)
            .where(CadenceStep.key == "day1-thanks")
            .order_by(FollowUp.id)
        )
    )


def wait_for(condition: Callable[[], object], what: str, seconds: float = 60) -> None:
    """Poll for something another process does (not a schedule: it happens as fast as it can)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
