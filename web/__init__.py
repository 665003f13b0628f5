"""The Flask app: admin pages, Twilio's and the shops' webhooks and the JSON API, over the
`scheduler` domain."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by create_app: `postventa --help` does not load the app
    from flask import Flask

    from scheduler.config import Config


def _secret_key(config: Config, instance: Path) -> str:
    """The configured key, else one generated once and kept in the instance folder.

    A key made up per process would log people out on every restart and break CSRF tokens
    between gunicorn workers.
    """
    if config.web.secret_key:
        return config.web.secret_key
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def create_app(config: Config | None = None) -> Flask:
    """Build the app; without `config`, read it as the CLI does (`$POSTVENTA_CONFIG`, ...).

    Refuses to start on a database whose schema is not current (SchemaError says what to run)
    or that does not answer (DatabaseUnreachable says what to check).
    """
    # Flask and the app's modules are imported here, not with the package: `postventa worker`
    # (`web.cli`), restarted after every crash, starts without them.
    from flask import Flask
    from flask_wtf import CSRFProtect
    from werkzeug.middleware.proxy_fix import ProxyFix

    from scheduler import schema
    from scheduler.config import load_config
    from scheduler.db import make_session_factory, open_engine
    from scheduler.settings import LiveSettings
    from web.database import IdConverter, Postventa, close_session
    from web.reply_intake import ReplyIntake

    config = config or load_config()
    engine = open_engine(config.database.url)
    try:
        schema.require_current(engine)
        settings = LiveSettings.from_engine(engine, config)
        # Read once here, where a server that forks its workers from the app (gunicorn's
        # `preload_app`) builds it: the models' mappers are set up and the settings' query
        # compiled once, not in each worker at its first request (0.11 s of CPU each time
        # one is replaced).
        settings.current()
    finally:
        # The checks' connection is not kept: a server that builds the app once and forks its
        # workers from it must not hand them one connection to share.
        engine.dispose()

    app = Flask(__name__, instance_path=str(Path("instance").resolve()))
    app.url_map.converters["int"] = IdConverter  # before any route is added
    # Browsers ask for /favicon.ico where no page links an icon (/healthz, the API): the SVG is
    # served there as a static file, public like the others; url_for builds this URL for it.
    app.add_url_rule("/favicon.ico", endpoint="static", defaults={"filename": "favicon.svg"})
    https = config.business.base_url.startswith("https://")
    app.config.update(
        SECRET_KEY=_secret_key(config, Path(app.instance_path)),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=https,
        WTF_CSRF_TIME_LIMIT=None,  # valid for the session: a long reply must not be lost
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    if config.web.proxies:
        hops = config.web.proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    sessions = make_session_factory(engine, writer=True)
    app.extensions["postventa"] = Postventa(settings, engine, sessions)
    app.wsgi_app = ReplyIntake(app.wsgi_app, engine, settings)  # type: ignore[method-assign]
    app.teardown_appcontext(close_session)

    from web import (
        admin,
        api,
        api_cadences,  # noqa: F401 - these add their routes to api's blueprint
        api_customers,  # noqa: F401
        api_document,  # noqa: F401
        api_people,  # noqa: F401
        api_products,  # noqa: F401
        api_stats,  # noqa: F401
        at_risk,
        auth,
        customer_data,
        customers,
        errors,
        health,
        home,
        i18n,
        inbox,
        metrics,
        outbox,
        products,
        replies,
        saved_answers,
        shop_webhooks,
        unsubscribe,
        upcoming,
        webhooks,
    )

    auth.init_auth(app)
    metrics.init_metrics(app)
    i18n.init_i18n(app)
    app.before_request(customers.allow_big_upload)  # before the CSRF check reads the form
    csrf = CSRFProtect(app)
    for public in (
        webhooks.blueprint,
        shop_webhooks.blueprint,
        api.blueprint,
        unsubscribe.blueprint,
    ):
        csrf.exempt(public)  # signed by Twilio or a shop, bearer tokens, one-click unsubscribe
    errors.init_errors(app)  # 403, 404, 405, a refused CSRF token, 500: pages in the layout
    app.context_processor(lambda: {"settings": app.extensions["postventa"].config})
    for blueprint in (
        health.blueprint,
        metrics.blueprint,
        auth.blueprint,
        home.blueprint,
        at_risk.blueprint,
        inbox.blueprint,
        outbox.blueprint,
        upcoming.blueprint,
        customers.blueprint,
        customer_data.blueprint,
        products.blueprint,
        replies.blueprint,
        saved_answers.blueprint,
        admin.blueprint,
        webhooks.blueprint,
        shop_webhooks.blueprint,
        api.blueprint,
        unsubscribe.blueprint,
    ):
        app.register_blueprint(blueprint)
    return app
