"""`/metrics`, in the Prometheus text format (the official `prometheus_client`).

Two kinds of figures. The shop's state (follow-ups by status and channel, the backlog and its
age, replies, cases, each worker's passes and sends) is read from the database at each scrape
(`scheduler.figures.operations`), so every web process answers the same and workers on other
machines are counted. What happens inside the web processes (how long each webhook took) is
kept by prometheus_client; under gunicorn its multiprocess mode adds up every worker process's
share (`web.gunicorn_config` sets `PROMETHEUS_MULTIPROC_DIR` before any of them starts).

Readable by a scraper with `[metrics] token`, or from an address in `[metrics] allow_from`.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from scheduler.clock import utcnow
from scheduler.config import Config
from scheduler.figures import operations
from web.database import db_session

blueprint = Blueprint("metrics", __name__)
WEBHOOKS = {"webhooks", "shop_webhooks"}  # the blueprints whose answers are timed
WEBHOOK_SECONDS = Histogram(
    "postventa_webhook_seconds",
    "How long a webhook took to answer (Twilio's, the shops'), by path.",
    ["webhook"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def init_metrics(app: Flask) -> None:
    """Time every webhook's answer."""
    app.before_request(_start_clock)
    app.after_request(_observe)


def _start_clock() -> None:
    if request.blueprint in WEBHOOKS:
        g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is not None:
        rule = request.url_rule.rule if request.url_rule is not None else "unknown"
        WEBHOOK_SECONDS.labels(rule).observe(time.perf_counter() - started)
    return response


def _config() -> Config:
    config: Config = current_app.extensions["postventa"].config
    return config


def _allowed(config: Config) -> bool:
    """The bearer token, or an address in `allow_from` that is the caller's own: with no
    proxy counted in `web.proxies`, a request that names a forwarded client came through a
    proxy on this machine, and its address says nothing of the caller."""
    token = config.metrics.token
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    if forwarded and not config.web.proxies:
        return False
    try:
        caller = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(caller in ipaddress.ip_network(network) for network in config.metrics.allow_from)


@blueprint.get("/metrics")
def metrics() -> Response:
    config = _config()
    if not _allowed(config):
        if config.metrics.token:
            return Response(
                "metrics: a bearer token is needed ([metrics] token)\n",
                401,
                {"WWW-Authenticate": 'Bearer realm="metrics"'},
                mimetype="text/plain",
            )
        return Response(
            "metrics: not readable from this address ([metrics] allow_from)\n",
            403,
            mimetype="text/plain",
        )
    shop = CollectorRegistry(auto_describe=False)
    shop.register(_ShopFigures(operations.read(db_session(), now=utcnow())))
    # The classic text format, which every Prometheus reads; two registries' texts join into
    # one (OpenMetrics would not: each ends with its own "# EOF").
    body = generate_latest(_process_registry()) + generate_latest(shop)
    return Response(body, 200, {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def _process_registry() -> CollectorRegistry:
    """This process's figures; under gunicorn, every worker process's, added up."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


class _ShopFigures(Collector):
    """The database's figures, as Prometheus metric families."""

    def __init__(self, figures: operations.Operations) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        figures, now = self.figures, self.figures.health.now
        follow_ups = GaugeMetricFamily(
            "postventa_follow_ups",
            "Follow-ups by status and channel (every one ever planned).",
            labels=["status", "channel"],
        )
        for (status, channel), count in sorted(figures.follow_ups.items()):
            follow_ups.add_metric([status, channel], count)
        yield follow_ups
        yield GaugeMetricFamily(
            "postventa_due_backlog",
            "Follow-ups due and not yet sent (paused ones left out).",
            value=figures.backlog,
        )
        oldest = figures.health.oldest_due_at
        yield GaugeMetricFamily(
            "postventa_due_oldest_age_seconds",
            "How long the follow-up that has waited longest has been due (0: none waits).",
            value=0 if oldest is None else max(0.0, (now - oldest).total_seconds()),
        )
        yield CounterMetricFamily(
            "postventa_replies_read",
            "Customers' replies a worker has read (classified, routed).",
            value=figures.replies_read,
        )
        yield GaugeMetricFamily(
            "postventa_replies_waiting",
            "Customers' replies stored and not yet read by a worker.",
            value=figures.replies_waiting,
        )
        yield GaugeMetricFamily("postventa_cases_open", "Open cases.", value=figures.cases_open)
        yield GaugeMetricFamily(
            "postventa_cases_overdue",
            "Open cases past their first-answer deadline with no answer.",
            value=figures.cases_overdue,
        )
        yield from self._workers()

    def _workers(self) -> Iterator[Metric]:
        workers = self.figures.health.workers
        labels = ["worker"]
        up = GaugeMetricFamily(
            "postventa_worker_up",
            "1 while the worker has passed within two of its ticks (or is in a pass, alive).",
            labels=labels,
        )
        last = GaugeMetricFamily(
            "postventa_worker_last_pass_timestamp_seconds",
            "When the worker last finished a dispatch pass (Unix time).",
            labels=labels,
        )
        took = GaugeMetricFamily(
            "postventa_worker_last_pass_seconds",
            "How long the worker's last dispatch pass took.",
            labels=labels,
        )
        passes = CounterMetricFamily(
            "postventa_worker_passes",
            "Dispatch passes the worker has finished since it started.",
            labels=labels,
        )
        seconds = CounterMetricFamily(
            "postventa_worker_pass_seconds",
            "Seconds spent in dispatch passes since the worker started.",
            labels=labels,
        )
        sends = CounterMetricFamily(
            "postventa_sends",
            "Results of sends (and look-ups) since each worker started, by channel and outcome.",
            labels=["worker", "channel", "outcome"],
        )
        for state in workers:
            name = [state.worker_id]
            up.add_metric(name, 1 if state.passing else 0)
            if state.last_pass_at is not None:
                last.add_metric(name, state.last_pass_at.timestamp())
            if state.last_pass_seconds is not None:
                took.add_metric(name, state.last_pass_seconds)
            passes.add_metric(name, state.passes)
            seconds.add_metric(name, state.pass_seconds_total)
            for key, count in sorted(state.sends.items()):
                channel, _, outcome = key.partition("/")
                sends.add_metric([state.worker_id, channel, outcome], count)
        yield from (up, last, took, passes, seconds, sends)
