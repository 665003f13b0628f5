"""The `postventa` entry point: the domain commands plus the ones that serve HTTP."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from scheduler.cli import CliError, Runtime, cli, customer, customer_number, pass_runtime

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["cli", "main"]
log = logging.getLogger(__name__)


def _serving(runtime: Runtime, host: str, port: int) -> None:
    """Without `business.public_url`, links in notices and emails point at the address served
    here, which Twilio cannot reach: say so once, at start."""
    if runtime.config.business.public_url:
        return
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    runtime.config = runtime.config.replace(business={"public_url": url})
    log.warning(
        "business.public_url is not set: links use %s. Twilio needs the real public address "
        "(https://...) in business.public_url to deliver replies and delivery reports.",
        url,
    )


def _app(runtime: Runtime) -> Flask:
    # Imported here: `postventa worker` (restarted after every crash) and the domain commands
    # start without loading the web app.
    from scheduler import schema
    from scheduler.db import DatabaseUnreachable
    from web import create_app

    try:
        return create_app(runtime.config)
    except (schema.SchemaError, DatabaseUnreachable) as error:
        raise CliError(str(error)) from None


# Requests served at once by `run` and `web`: a small shop's admin, webhooks and API.
WEB_THREADS = 8


def _listen(app: Flask, host: str, port: int) -> None:
    """Serve with Waitress, a production WSGI server that runs wherever Python does, until
    Ctrl-C (or SIGTERM, which `run` turns into one): requests in progress then finish.
    `[web] proxies` reads the forwarded headers (ProxyFix), so Waitress must pass them on."""
    from waitress.server import create_server

    server = create_server(
        app, host=host, port=port, threads=WEB_THREADS, clear_untrusted_proxy_headers=False
    )
    log.info("serving on http://%s:%d", f"[{host}]" if ":" in host else host, port)
    server.run()


def _serve(runtime: Runtime, host: str, port: int) -> None:
    runtime.start_logging()
    _serving(runtime, host, port)
    _listen(_app(runtime), host, port)


_host = click.option("--host", default="127.0.0.1", show_default=True)
_port = click.option("--port", default=5000, show_default=True, type=int)


@cli.command()
@_host
@_port
@pass_runtime
def run(runtime: Runtime, host: str, port: int) -> None:
    """Everything in one process: the web app and the dispatch worker."""
    from scheduler.worker import Worker

    runtime.start_logging()
    _serving(runtime, host, port)
    app = _app(runtime)
    worker = Worker(runtime.current_engine(), runtime.settings)
    scheduler = worker.start_in_background()
    signal.signal(signal.SIGTERM, _interrupt)  # stop like Ctrl-C: the worker's batch finishes
    try:
        _listen(app, host, port)
    finally:
        worker.stop(scheduler)
        log.info("stopped")


def _interrupt(_number: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@cli.command()
@_host
@_port
@pass_runtime
def web(runtime: Runtime, host: str, port: int) -> None:
    """The web app alone, without a worker (on PostgreSQL, gunicorn serves it: see the
    Procfile)."""
    _serve(runtime, host, port)


@customer.command("export")
@click.argument("customer_id")
@click.option("--html", "as_html", is_flag=True, help="A page to read or print, not JSON.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file (default: standard output).",
)
@pass_runtime
def customer_export(runtime: Runtime, customer_id: str, as_html: bool, output: Path | None) -> None:
    """Everything kept about customer CUSTOMER_ID: sales, messages both ways, cases with their
    notes and remedies, consent and its history (the page: in their language). Recorded in the
    audit log."""
    from scheduler import customer_data
    from scheduler.clock import utcnow
    from scheduler.db import make_session_factory

    wanted = customer_number(customer_id)
    with make_session_factory(runtime.current_engine(), writer=True).begin() as session:
        try:
            data = customer_data.export(session, wanted, now=utcnow())
        except customer_data.NoSuchCustomer as error:
            raise CliError(str(error)) from None
        customer_data.record_export(session, wanted, actor="cli", now=utcnow())
    if as_html:
        from web.customer_data import page

        app = _app(runtime)
        try:
            with app.test_request_context():
                text = page(data, app.extensions["postventa"].config)
        finally:
            app.extensions["postventa"].engine.dispose()
    else:
        text = json.dumps(data, ensure_ascii=False, indent=2)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"customer {wanted}: written to {output}", err=True)


def main() -> None:
    cli(prog_name="postventa")
