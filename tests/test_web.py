"""The web app: the overview page and the health check."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.db import make_engine, make_session_factory
from scheduler.defaults import install_defaults
from scheduler.demo import add_demo_data
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import FollowUp
from scheduler.sending.sales import SaleInput, record_sale


def test_healthz_reports_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_is_503_when_the_database_is_unreachable(app: Flask) -> None:
    unreachable = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    services = app.extensions["postventa"]
    app.extensions["postventa"] = dataclasses.replace(
        services, engine=unreachable, sessions=make_session_factory(unreachable)
    )
    try:
        response = app.test_client().get("/healthz")
    finally:
        app.extensions["postventa"] = services
        unreachable.dispose()
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "unreachable"}


def test_overview_shows_the_business_and_its_sales(
    owner_client: FlaskClient, session: Session, config: Config
) -> None:
    add_demo_data(session, config, datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
    session.commit()
    page = owner_client.get("/").get_data(as_text=True)
    assert "<h1>Mi Tienda</h1>" in page
    assert "<strong>6</strong><span>customers</span>" in page
    assert "Rosa Quispe" in page and "Lavadora EcoWash 9 kg" in page
    assert "09:00-20:00" in page and "America/Lima" in page


def test_overview_shows_sale_times_in_the_business_time_and_counts_held_follow_ups(
    owner_client: FlaskClient, session: Session, config: Config
) -> None:
    sold = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in Lima
    install_defaults(session, sold)
    sale, _new = record_sale(
        session,
        SaleInput("S-9", sold, "Rosa Quispe", "+51987654321"),
        config=config,
        now=sold,
        actor="test",
    )
    held = session.scalars(select(FollowUp).where(FollowUp.sale_id == sale.id)).all()
    held[0].status = FollowUpStatus.HELD
    session.commit()
    page = owner_client.get("/").get_data(as_text=True)
    assert "10:00" in page and "15:00" not in page
    assert f"<strong>{len(held)}</strong><span>follow-ups scheduled</span>" in page
    assert "4 business hours" in page and "4.0" not in page


def test_overview_with_no_sales_says_how_to_add_them(owner_client: FlaskClient) -> None:
    page = owner_client.get("/").get_data(as_text=True)
    assert "No sales yet" in page and "POST /api/sales" in page


def test_customer_text_is_escaped(
    owner_client: FlaskClient, session: Session, config: Config
) -> None:
    sale = SaleInput(
        external_id="X-1",
        sold_at=datetime(2026, 11, 1, tzinfo=UTC),
        customer_name="<script>alert(1)</script>",
        phone="+51987654321",
    )
    record_sale(session, sale, config=config, now=datetime(2026, 11, 1, tzinfo=UTC), actor="test")
    session.commit()
    page = owner_client.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_stylesheet_is_served_locally(owner_client: FlaskClient) -> None:
    page = owner_client.get("/").get_data(as_text=True)
    assert "http" not in page.split("<body>")[0]  # no CDN in the head
    response = owner_client.get("/static/postventa.css")
    assert response.status_code == 200 and b".counts" in response.data
    response.close()


def test_favicon_is_linked_and_served_without_a_log_in(
    owner_client: FlaskClient, client: FlaskClient
) -> None:
    page = owner_client.get("/").get_data(as_text=True)
    assert '<link rel="icon" type="image/svg+xml" href="/favicon.ico">' in page
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert response.data.startswith(b"<svg")
    response.close()


def test_secret_key_persists_across_app_instances(app: Flask) -> None:
    from web import create_app

    again = create_app(app.extensions["postventa"].config)
    assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]
    assert len(app.config["SECRET_KEY"]) == 64
    again.extensions["postventa"].engine.dispose()


def test_the_app_is_built_with_no_connection_left_for_forks_to_share(app: Flask) -> None:
    """Built once and forked by gunicorn (which reads the settings while it builds it): no
    database connection is left open, idle or in use."""
    from web import create_app

    built = create_app(app.extensions["postventa"].config)
    pool = built.extensions["postventa"].engine.pool
    assert pool.checkedout() == 0 and pool.checkedin() == 0
    built.extensions["postventa"].engine.dispose()
