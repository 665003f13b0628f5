"""`/metrics`: who may read it, and what it says after a scripted day of work, parsed from the
real Prometheus text the app serves and checked against the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from flask.testing import FlaskClient
from freezegun import freeze_time
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import FollowUp
from scheduler.sending.courier import SENDS
from scheduler.settings import LiveSettings
from scheduler.worker import Worker, worker_id
from tests.dispatching import setup_sales
from tests.factories import NOW, sale_input
from tests.replying import config, post, sms  # noqa: F401 - fixture
from web import create_app

METRICS_TOKEN = "scrape-me-0123456789"
SMS_WEBHOOK = "/webhooks/twilio/sms"
__all__ = ["config"]  # signed webhooks: the shop's public address and Twilio token
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: FlaskClient) -> Samples:
    """Every sample of the served text, by name and labels."""
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.get_data(as_text=True))
        for sample in family.samples
    }


@contextmanager
def serving(config: Config) -> Iterator[FlaskClient]:
    """A browser on an app with this configuration; its connections closed afterwards."""
    app = create_app(config)
    try:
        yield app.test_client()
    finally:
        app.extensions["postventa"].engine.dispose()


def one(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_read_from_loopback_or_with_the_token_only(config: Config) -> None:
    cases: list[tuple[dict[str, object], str, dict[str, str], int]] = [
        ({}, "127.0.0.1", {}, 200),
        ({}, "::1", {}, 200),
        ({}, "203.0.113.9", {}, 403),
        ({}, "127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, 403),  # through a local proxy
        ({"token": METRICS_TOKEN}, "203.0.113.9", {}, 401),
        ({"token": METRICS_TOKEN}, "203.0.113.9", {"Authorization": "Bearer nope"}, 401),
        (
            {"token": METRICS_TOKEN},
            "203.0.113.9",
            {"Authorization": f"Bearer {METRICS_TOKEN}"},
            200,
        ),
        ({"allow_from": ["10.0.0.0/8"]}, "10.1.2.3", {}, 200),
        ({"allow_from": []}, "127.0.0.1", {}, 403),
    ]
    for settings, remote, headers, expected in cases:
        with serving(config.replace(metrics=settings)) as client:
            answer = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": remote})
        assert answer.status_code == expected, (settings, remote, headers)
        if expected == 401:
            assert answer.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_a_proxy_the_app_counts_gives_the_callers_address(config: Config) -> None:
    local = {"X-Forwarded-For": "127.0.0.1"}
    far = {"X-Forwarded-For": "203.0.113.9"}
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    with serving(config.replace(web={"proxies": 1})) as client:
        assert client.get("/metrics", headers=local, environ_base=proxy).status_code == 200
        assert client.get("/metrics", headers=far, environ_base=proxy).status_code == 403


def test_a_scripted_day_reads_the_same_in_the_metrics_as_in_the_database(
    engine: Engine, config: Config, client: FlaskClient, session: Session
) -> None:
    """Three sales; the worker's passes send the day-1 thank-yous; Rosa complains by SMS,
    the worker reads it and opens a case; nobody answers, and the deadline passes."""
    setup_sales(
        engine,
        config,
        sale_input("S-1"),
        sale_input("S-2", customer_name="Luis Soto", phone="+51911111111"),
        sale_input("S-3", customer_name="Ana Ruiz", phone=None, email="ana@example.pe"),
    )
    worker = Worker(engine, LiveSettings.from_engine(engine, config))
    earlier = SENDS.snapshot()  # this process's sends in earlier tests (one worker a process)
    before = scrape(client)
    webhooks_before = one(before, "postventa_webhook_seconds_count", webhook=SMS_WEBHOOK)
    day1 = NOW + timedelta(days=1)
    with freeze_time(day1):
        worker._started()
        worker.tick()
        worker.tick()  # nothing left: a second pass counts, sends nothing
        assert post(client, SMS_WEBHOOK, sms("la lavadora no prende")).status_code == 200
        worker.read()
        during = scrape(client)
    with freeze_time(day1 + timedelta(days=2)):  # the case's deadline is long past
        after = scrape(client)

    me = worker_id()
    rows = session.execute(
        select(FollowUp.channel, func.count())
        .where(FollowUp.status == FollowUpStatus.SENT)
        .group_by(FollowUp.channel)
    )
    by_channel = {str(channel): int(count) for channel, count in rows}
    assert by_channel == {"sms": 2, "email": 1}
    for channel, count in by_channel.items():
        assert one(during, "postventa_follow_ups", status="sent", channel=channel) == count
        sends = one(during, "postventa_sends_total", worker=me, channel=channel, outcome="sent")
        assert sends == earlier.get(f"{channel}/sent", 0) + count
    scheduled = session.scalar(
        select(func.count()).where(FollowUp.status == FollowUpStatus.SCHEDULED)
    )
    assert (
        sum(
            value
            for (name, labels), value in during.items()
            if name == "postventa_follow_ups" and ("status", "scheduled") in labels
        )
        == scheduled
    )
    assert one(during, "postventa_worker_passes_total", worker=me) == 2
    assert one(during, "postventa_worker_up", worker=me) == 1
    assert (
        one(during, "postventa_worker_last_pass_timestamp_seconds", worker=me) == day1.timestamp()
    )
    # Its seconds are there (a frozen clock makes them 0 here: real ones in the gunicorn test).
    assert ("postventa_worker_pass_seconds_total", (("worker", me),)) in during
    assert one(during, "postventa_due_backlog") == 0
    assert one(during, "postventa_due_oldest_age_seconds") == 0
    assert one(during, "postventa_replies_read_total") == 1
    assert one(during, "postventa_replies_waiting") == 0
    assert (one(during, "postventa_cases_open"), one(during, "postventa_cases_overdue")) == (1, 0)
    webhooks = one(during, "postventa_webhook_seconds_count", webhook=SMS_WEBHOOK)
    assert webhooks - webhooks_before == 1
    assert (
        one(during, "postventa_webhook_seconds_bucket", webhook=SMS_WEBHOOK, le="+Inf") == webhooks
    )

    assert (one(after, "postventa_cases_open"), one(after, "postventa_cases_overdue")) == (1, 1)
    assert one(after, "postventa_worker_up", worker=me) == 0  # no pass for two days
    waiting = session.scalar(
        select(func.min(FollowUp.due_at)).where(
            FollowUp.status == FollowUpStatus.SCHEDULED, FollowUp.due_at <= day1 + timedelta(days=2)
        )
    )
    backlog = one(after, "postventa_due_backlog")
    if waiting is None:
        assert backlog == 0
    else:
        age = (day1 + timedelta(days=2) - waiting).total_seconds()
        assert backlog >= 1 and one(after, "postventa_due_oldest_age_seconds") == age
