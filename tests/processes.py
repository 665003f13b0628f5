"""For tests that start `postventa` processes: a config file for them, a backlog of due
follow-ups in real time (a process cannot be frozen), the worker processes themselves (killed
and replaced as a supervisor would), and waiting on what they do."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import TracebackType

from sqlalchemy import ColumnElement, Engine, false, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.clock import utcnow
from scheduler.config import WEEKDAYS, Config
from scheduler.defaults import templates_root
from scheduler.lifecycle import WAITING, FollowUpStatus
from scheduler.models import CadenceStep, FollowUp, Message
from scheduler.sending.sales import record_sales
from scheduler.sending.whatsapp import content_form
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


def _toml(value: object) -> str:
    """A value as TOML writes it: JSON's spelling, but a table inline as `{ "k" = v }`."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def process_config(tmp_path: Path, engine: Engine, **sections: dict[str, object]) -> Path:
    """A config file for worker processes, at ANY_TIME (not named as the tests' sessions)."""
    url = engine.url.set(query={}).render_as_string(hide_password=False)
    lines = [f'[database]\nurl = "{url}"\n']
    for name, values in {**ANY_TIME, **sections}.items():
        lines.append(f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()))
    path = tmp_path / "worker.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


WHATSAPP_SENDER = "whatsapp:+14155238886"
THANKS_CONTENT = "HX" + "5a" * 16  # the day-1 thanks as an approved Content template


def whatsapp_section(fake: FakeTwilio) -> dict[str, object]:
    """WhatsApp through the fake, the day-1 thanks approved as a Content template there (its
    text numbered as the template editor shows it)."""
    body = (templates_root() / "sms" / "es" / "thanks.txt").read_text(encoding="utf-8")
    fake.add_content(THANKS_CONTENT, content_form(body).text)
    return {
        "transport": "twilio",
        "from_number": WHATSAPP_SENDER,
        "content_sids": {"thanks/es": THANKS_CONTENT},
        "max_per_second": 0,
    }


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


def due_backlog(
    engine: Engine, config: Config, count: int, *, whatsapp_every: int = 0
) -> sessionmaker[Session]:
    """`count` customers whose day-1 thank-you is due now (real time: processes can't be frozen);
    with `whatsapp_every`, every such one of them said yes to WhatsApp."""
    sold = utcnow() - timedelta(days=1, minutes=5)
    sales = [
        sale_input(
            f"S-{n}",
            phone=f"+519{n:08d}",
            sold_at=sold,
            customer_name=f"Cliente {n}",
            whatsapp_opt_in=bool(whatsapp_every) and n % whatsapp_every == 0,
        )
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
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, all different: each is held until all are found (asked one
    at a time, the system may give the same port twice, and a server given it twice refuses
    to start)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class Workers:
    """`postventa worker` processes; one killed is replaced at once, as a supervisor would."""

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self.live: list[subprocess.Popen[bytes]] = []
        self.killed: list[int] = []
        self.logs: list[Path] = []
        self.log_of: dict[int, Path] = {}  # by pid
        for _ in range(count):
            self.start()

    def start(self) -> None:
        log = self.path.parent / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as stderr:
            command = [POSTVENTA, "--config", str(self.path), "worker"]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        self.live.append(process)
        self.log_of[process.pid] = log

    def all_up(self) -> bool:
        """Whether every live worker has started its scheduler: a SIGTERM before that ends it
        as the signal's default does, not through its own handler."""
        return all(
            "a pass every" in self.log_of[process.pid].read_text(errors="replace")
            for process in self.live
        )

    def kill_one(self, rng: random.Random) -> None:
        victim = self.live.pop(rng.randrange(len(self.live)))
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        self.killed.append(victim.pid)
        self.start()

    def stop(self) -> list[int | None]:
        """SIGTERM to all; their exit codes (None: still running after 30 s, then killed)."""
        for worker in self.live:
            worker.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for worker in self.live:
            try:
                codes.append(worker.wait(timeout=30))
            except subprocess.TimeoutExpired:
                worker.kill()
                codes.append(None)
        return codes

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        """Whatever happened, no worker outlives its test."""
        for worker in self.live:
            worker.kill()
            worker.wait(timeout=30)

    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.logs)


class FastForward:
    """Lets the time pass that the workers would otherwise wait for: a retry's backoff, and the
    lease of a killed worker. Locked rows are skipped, so it never waits on a worker."""

    def __init__(self, sessions: sessionmaker[Session], killed: list[int]) -> None:
        self.sessions = sessions
        self.killed = killed  # the pids of the dead workers, as they die
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fast-forward", daemon=True)

    def __enter__(self) -> FastForward:
        self.thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stopping.wait(0.2):
            self.step()

    def step(self) -> None:
        """One sweep over follow-ups and queued messages alike."""
        now = utcnow()
        tables: list[tuple[type[FollowUp] | type[Message], ColumnElement[bool]]] = [
            (FollowUp, FollowUp.status == FollowUpStatus.SCHEDULED),
            (Message, Message.status.in_(WAITING)),
        ]
        with self.sessions.begin() as session:
            for table, waiting in tables:
                dead = or_(false(), *(table.lease_owner.like(f"%:{pid}:%") for pid in self.killed))
                retries = (waiting, table.lease_owner.is_(None), table.attempts > 0)
                orphans = (table.lease_owner.isnot(None), dead)
                for where, values in (
                    (retries, {"due_at": now}),
                    (orphans, {"lease_expires_at": now - timedelta(seconds=1)}),
                ):
                    ids = select(table.id).where(*where).with_for_update(skip_locked=True)
                    session.execute(
                        update(table).where(table.id.in_(ids.scalar_subquery())).values(values)
                    )
