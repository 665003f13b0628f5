"""Replies: classifier throughput, and the SMS webhook under gunicorn with PostgreSQL.

(a) `classify` over the labelled replies of `tests/data/` (552 texts), repeated: replies per
    second (target >= 5 000).
(b) the real app under gunicorn (4 sync workers; BENCH_WORKERS / BENCH_THREADS) on a
    temporary PostgreSQL database at 127.0.0.1:5432: 2 000 signed `POST /webhooks/twilio/sms`
    from 50 concurrent callers (one asyncio loop, a new connection per request), a mix of
    praise, complaints opening cases, questions, STOP/BAJA and unknown senders: p50 and p99
    latency (target p99 < 100 ms), one request at a time, and every reply stored once.
(c) the webhook at the server's limit: the Procfile's own gunicorn command (`--config
    python:web.gunicorn_config`: its sync workers, as many as it sets here) serving, in turn,
    the real app and `bench/bare/webhook.py`, a bare WSGI function that does the same INSERT
    into the same database and answers the same TwiML. Real, bare, real, bare, real, bare: 3 000
    requests a round from 50 concurrent callers, replies that are not consent keywords (a STOP
    is an opt-out on top of the INSERT, which the bare function does not do); requests per
    second (min, median, max), errors (an answer other than 200, or a connection that failed),
    and the ratio of the medians, real / bare (target >= 90%, with no error). Then the real app
    from 10 concurrent callers, as many requests as a round: p50 and p99 (target p99 < 100 ms).

The machine is printed first: CPU, cores, load average, PostgreSQL and Python.

    .venv/bin/python bench/replies.py            # 20 000 classifications, 2 000 requests
    .venv/bin/python bench/replies.py --quick    # 5 000 and 500; (c) 1 000 a round
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from common import PG_ADMIN, ROOT, fresh_database, record, temporary_postgres
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from scheduler.config import defaults
from scheduler.listening.classify import classify
from scheduler.listening.keywords import read_consent
from scheduler.models import Message

TOKEN = "0123456789abcdef0123456789abcdef"
BODIES = (
    "gracias, todo bien",
    "la lavadora no prende 😡",
    "como se limpia el filtro",
    "10/10",
    "un 3",
    "BAJA",
    "STOP",
    "ok",
)
REPLIES = tuple(body for body in BODIES if read_consent(body) is None)  # (c): no STOP, no BAJA


def machine() -> None:
    cpu = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    model = next(line.split(":", 1)[1].strip() for line in cpu if line.startswith("model name"))
    with psycopg.connect(PG_ADMIN, connect_timeout=3) as admin:
        server = admin.execute("SHOW server_version").fetchone()
    print(
        f"machine: {model}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the "
        f"start; PostgreSQL {server[0] if server else '?'} (127.0.0.1:5432); "
        f"Python {platform.python_version()}"
    )


def classifier_rate(count: int) -> None:
    texts = [
        row["text"]
        for name in ("replies.csv", "replies_holdout.csv")
        for row in csv.DictReader((ROOT / "tests" / "data" / name).open(encoding="utf-8"))
    ]
    began, done = time.perf_counter(), 0
    while done < count:
        for text in texts:
            classify(text)
        done += len(texts)
    rate = done / (time.perf_counter() - began)
    print(
        f"(a) classify: {done} replies in {time.perf_counter() - began:.2f} s: {rate:.0f}/s "
        f"(target >= 5000); target met: {'yes' if rate >= 5000 else 'no'}"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PATH = "/webhooks/twilio/sms"
# Sync workers, one request at a time each: on two cores they beat threads, which take turns at
# Python's lock (measured: 4x1 sync p99 106-156 ms, 3x4 threads 352-398 ms, 2x16 311 ms).
WORKERS = os.environ.get("BENCH_WORKERS", "4")
THREADS = os.environ.get("BENCH_THREADS", "1")  # more than 1: gthread workers
PROCFILE = ["--config", "python:web.gunicorn_config"]  # (c): the Procfile's `web` command
ANSWER_SECONDS = 30  # a request not answered by then is an error (gunicorn's own timeout)


def signed(public: str, n: int, bodies: Sequence[str] = BODIES) -> bytes:
    """A request as Twilio would send it, whole, built before the clock starts."""
    params = {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "From": f"+5199{n % 300:07d}" if n % 10 else f"+5198{n:07d}",  # customers, strangers
        "To": "+15005550006",
        "Body": bodies[n % len(bodies)],
    }
    signature = RequestValidator(TOKEN).compute_signature(public + PATH, params)
    body = urllib.parse.urlencode(params).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {public.split('//')[1]}\r\n"
        f"X-Twilio-Signature: {signature}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def post(port: int, request: bytes) -> float | None:
    """Send one prepared request on a new connection, as Twilio does; seconds it took, or None
    when it was not answered 200."""
    began = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), ANSWER_SECONDS)  # to the end: it closes
        writer.close()
    except (OSError, TimeoutError):
        return None
    return time.perf_counter() - began if answer.startswith(b"HTTP/1.1 200") else None


@dataclass(frozen=True)
class Load:
    latencies: list[float]  # of the requests answered 200, sorted
    errors: int  # requests answered otherwise, or not at all
    seconds: float

    @property
    def rate(self) -> float:
        return (len(self.latencies) + self.errors) / self.seconds

    def ms(self, share: float) -> float:
        """The latency below which `share` of the answered requests came, in milliseconds."""
        return self.latencies[max(0, int(len(self.latencies) * share) - 1)] * 1000


async def _load(port: int, requests: list[bytes], clients: int) -> Load:
    waiting = list(reversed(requests))
    latencies: list[float] = []
    errors = 0

    async def caller() -> None:
        nonlocal errors
        while waiting:
            took = await post(port, waiting.pop())
            if took is None:
                errors += 1
            else:
                latencies.append(took)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(clients)))
    return Load(sorted(latencies), errors, time.perf_counter() - began)


def load(port: int, requests: list[bytes], clients: int) -> Load:
    """`clients` callers, each sending its next request as soon as its last was answered.

    One event loop instead of a thread per client: the load generator shares the two cores with
    gunicorn and PostgreSQL, and threads cost it several times more of them."""
    return asyncio.run(_load(port, requests, clients))


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def public(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> int:
        """How many worker processes gunicorn's master runs now."""
        pid = self.process.pid
        return len(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


@contextmanager
def served(app: str, options: list[str], url: str) -> Iterator[Server]:
    """gunicorn serving `app` (the real one, or `bench/bare/`'s) on the database at `url`, from
    a configuration file of its own (Twilio signs for the server's address), once it answers."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-replies-") as tmp:
        path = Path(tmp) / "config.toml"
        path.write_text(
            f'[database]\nurl = "{url}"\n[business]\npublic_url = "{public}"\n'
            f'[twilio]\nauth_token = "{TOKEN}"\n',
            encoding="utf-8",
        )
        command = [str(Path(sys.executable).parent / "gunicorn"), app, *options]
        command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
        env = {
            **os.environ,
            "POSTVENTA_CONFIG": str(path),
            "BARE_WEBHOOK_DATABASE": url,
            "PYTHONPATH": str(ROOT / "bench"),  # for bare.webhook
        }
        server = Server(port, subprocess.Popen(command, cwd=tmp, env=env))
        try:
            wait_until_up(server)
            yield server
        finally:
            server.process.terminate()
            server.process.wait(timeout=30)


def wait_until_up(server: Server) -> None:
    """Until a signed reply is answered 200 (the bare function has no health check)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"gunicorn stopped: {server.process.args}")
        if load(server.port, [signed(server.public, 1)], 1).latencies:
            return
        time.sleep(0.1)
    raise SystemExit("gunicorn did not start")


@contextmanager
def replies_database() -> Iterator[tuple[str, sessionmaker[Session]]]:
    """A temporary PostgreSQL database whose 300 customers (+5199000000..) got their day-1
    thanks: its URL and sessions."""
    with temporary_postgres() as url:
        sessions = fresh_database(url)
        record(sessions, defaults().replace(database={"url": url}), 300)
        yield url, sessions


def stored(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(Message).where(Message.direction == "inbound")
            )
            or 0
        )


def webhook_latency(requests: int, clients: int) -> None:
    gthread = ["--threads", THREADS, "--worker-class", "gthread" if THREADS != "1" else "sync"]
    with replies_database() as (url, sessions):
        with served("web:create_app()", ["--workers", WORKERS, *gthread], url) as server:
            public = server.public
            warm = load(server.port, [signed(public, n) for n in range(4 * clients)], clients)
            alone = load(server.port, [signed(public, n) for n in range(200)], 1)  # one at a time
            loaded = load(server.port, [signed(public, n) for n in range(requests)], clients)
        answered = 1 + sum(len(part.latencies) for part in (warm, alone, loaded))  # + the first
        errors = sum(part.errors for part in (warm, alone, loaded))
        print(
            f"(b) webhook, gunicorn {WORKERS}x{THREADS} threads, PostgreSQL, "
            f"{clients} concurrent clients: {requests} requests in {loaded.seconds:.1f} s "
            f"({loaded.rate:.0f}/s), {loaded.errors} errors"
        )
        print(
            f"    latency p50 {loaded.ms(0.5):.1f} ms, p99 {loaded.ms(0.99):.1f} ms, "
            f"max {loaded.latencies[-1] * 1000:.1f} ms "
            f"(target p99 < 100 ms); target met: {'yes' if loaded.ms(0.99) < 100 else 'no'}"
        )
        print(
            f"    one request at a time (200): p50 {alone.ms(0.5):.1f} ms, "
            f"p99 {alone.ms(0.99):.1f} ms (Twilio wants an answer well within its 15 s; "
            "the issue asks for 200 ms)"
        )
        print(
            f"    replies stored: {stored(sessions)} (answered 200: {answered}, warm-up "
            f"included; {errors} errors)"
        )


def at_the_limit(requests: int, rounds: int, clients: int = 50, few: int = 10) -> None:
    """The real app and the bare function in turn, under the same gunicorn command."""
    with (
        replies_database() as (url, sessions),
        served("web:create_app()", PROCFILE, url) as real,
        served("bare.webhook:app", PROCFILE, url) as bare,
    ):
        rates: dict[str, list[float]] = {"real": [], "bare": []}
        errors = {"real": 0, "bare": 0}
        answered = 2  # the two answers that said each server was up
        for server in (real, bare):  # every worker started, its connections open
            warm = load(server.port, make(server, 0, 4 * clients), clients)
            answered += len(warm.latencies)
        for turn in range(rounds):
            for name, server in (("real", real), ("bare", bare)):
                done = load(server.port, make(server, (turn + 1) * requests, requests), clients)
                rates[name].append(done.rate)
                errors[name] += done.errors
                answered += len(done.latencies)
        few_callers = load(real.port, make(real, 0, requests), few)
        answered += len(few_callers.latencies)
        workers = real.workers(), bare.workers()
        kept = stored(sessions)
    print(
        f"(c) the webhook at the server's limit: gunicorn {' '.join(PROCFILE)} "
        f"({workers[0]} and {workers[1]} sync workers), {clients} concurrent callers, "
        f"{rounds} rounds of {requests} replies each, alternating"
    )
    for name in ("real", "bare"):
        low, middle, high = min(rates[name]), statistics.median(rates[name]), max(rates[name])
        print(
            f"    {name}: {low:.0f} / {middle:.0f} / {high:.0f} requests/s (min / median / "
            f"max), {errors[name]} errors"
        )
    ratio = statistics.median(rates["real"]) / statistics.median(rates["bare"])
    clean = not errors["real"] and not errors["bare"]
    print(
        f"    real / bare: {ratio:.0%} (target >= 90%, no errors); target met: "
        f"{'yes' if ratio >= 0.9 and clean else 'no'}"
    )
    p99 = few_callers.ms(0.99)
    met = p99 < 100 and not few_callers.errors
    print(
        f"    real, {few} concurrent callers, {requests} replies: {few_callers.rate:.0f}/s, "
        f"p50 {few_callers.ms(0.5):.1f} ms, p99 {p99:.1f} ms, {few_callers.errors} errors "
        f"(target p99 < 100 ms); target met: {'yes' if met else 'no'}"
    )
    print(f"    replies stored: {kept} (answered 200: {answered})")


def make(server: Server, first: int, count: int) -> list[bytes]:
    """`count` signed replies, none a consent keyword, numbered from `first`."""
    return [signed(server.public, n, REPLIES) for n in range(first, first + count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    args = parser.parse_args()
    machine()
    classifier_rate(5_000 if args.quick else 20_000)
    webhook_latency(500 if args.quick else 2_000, 50)
    at_the_limit(1_000 if args.quick else 3_000, 3)


if __name__ == "__main__":
    main()
