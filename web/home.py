"""The front page. Owners land on the dashboard: what this Postventa holds, and the figures of
a period (see `scheduler.figures`) and what customers complained about, a click from the
customers at risk; staff land on the inbox, where their work is."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import TypeVar

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, sessionmaker
from werkzeug.wrappers import Response as BaseResponse

from scheduler.casework.recipients import recipients
from scheduler.clock import utcnow
from scheduler.collector import collections_paused
from scheduler.db import side_by_side
from scheduler.figures.complaints import ThemeCount, complaint_themes
from scheduler.figures.period import Period, PeriodError
from scheduler.figures.scope import Scope
from scheduler.figures.summary import (
    Figures,
    StepFunnel,
    asked_scope,
    assembled,
    figure_parts,
    figures,
)
from scheduler.figures.tallies import tallied_now
from scheduler.lifecycle import PENDING, CaseStatus
from scheduler.listening.themes import vocabulary
from scheduler.models import Cadence, Case, Customer, Product, Sale
from web.api_stats import csv_download, stats_json
from web.auth import owner_only
from web.charts import funnel_bars, score_bars
from web.database import db_session, reading_session, services
from web.domain_texts import translated
from web.figure_files import complaints_csv

T = TypeVar("T")
blueprint = Blueprint("home", __name__)
DAYS = (7, 30, 90)  # the periods offered at one click
THEME_ROWS = 12  # the most complained-of products and themes shown; the download has them all


class UnreadablePeriod(ValueError):
    """The period or scope asked for cannot be read: the message says which field and why."""


@dataclass(frozen=True)
class Asked:
    """The period and scope a page's query asks for, and the names it gave them."""

    period: Period
    scope: Scope
    cadence: str | None
    product: str | None

    def query(self) -> dict[str, str | None]:
        """The query that asks for the same again (for links and downloads)."""
        return self.days() | {"cadence": self.cadence, "product": self.product}

    def days(self) -> dict[str, str | None]:
        """The same days alone: the customers at risk are of every cadence and product."""
        return {"from": self.period.first.isoformat(), "to": self.period.last.isoformat()}


def read_asked() -> Asked:
    """What the query asks for: `days`, or `from` and `to` (30 days to today by default); a
    cadence and a product (by SKU), or all. UnreadablePeriod says which field is wrong."""
    config, args = services().config, request.args
    now = utcnow()
    first, last = args.get("from") or None, args.get("to") or None
    days = args.get("days")
    if days is not None and first is None and last is None:
        if days not in {str(choice) for choice in DAYS}:
            raise UnreadablePeriod(_("Days: choose 7, 30 or 90."))
        today = now.astimezone(config.business.tz).date()
        first = (today - timedelta(days=int(days) - 1)).isoformat()
    cadence, product = args.get("cadence") or None, args.get("product") or None
    try:
        period, scope = asked_scope(
            db_session(), first, last, cadence, product, config=config, now=now
        )
    except PeriodError as problem:
        labels = {
            "from": _("From"),
            "to": _("To"),
            "cadence": _("Cadence"),
            "product": _("Product"),
        }
        raise UnreadablePeriod(f"{labels[problem.field]}: {translated(problem)}") from None
    return Asked(period, scope, cadence, product)


READERS = 2  # connections the dashboard reads on at once: the cores of a small server


Looked = tuple[Figures, list[ThemeCount]]


def _looking_after(asked: Asked, pool: ThreadPoolExecutor) -> Callable[[], Looked]:
    """Starts reading the dashboard's figures (in their parts) and the themes of complaints on
    the pool's connections, the slowest parts first, and returns the wait for them: the page
    waits for about half their sum, and reads what surrounds them meanwhile. (The customers
    at risk are a page of their own: one of their signs looks up each customer messaged in
    the period.)"""
    now, sessions = utcnow(), services().sessions
    opening = services().config.cases.opening_hours
    parts = figure_parts(asked.period, now=now, opening=opening, scope=asked.scope)

    def themes(session: Session) -> list[ThemeCount]:
        return complaint_themes(session, asked.period, vocabulary(session), scope=asked.scope)

    slowest = pool.submit(_read, sessions, parts[0])
    said = pool.submit(_read, sessions, themes)
    rest = [pool.submit(_read, sessions, part) for part in parts[1:]]

    def looked() -> Looked:
        found = assembled(asked.period, [slowest.result(), *(part.result() for part in rest)])
        return found, said.result()

    return looked


def _read(sessions: sessionmaker[Session], part: Callable[[Session], T]) -> T:
    with sessions() as session:
        side_by_side(session)  # SQLite: no write lock, so the parts read side by side
        return part(session)


@blueprint.get("/")
def index() -> BaseResponse | str | tuple[str, int]:
    if current_user.is_authenticated and not current_user.is_owner:
        return redirect(url_for("inbox.index"))
    session = reading_session()
    config = services().config
    asked, problem = None, None
    try:
        asked = read_asked()
    except UnreadablePeriod as unreadable:
        problem = str(unreadable)
    with (  # a quarter's figures are read as some 300 000 values: collected once, after
        collections_paused(),
        ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="dashboard") as pool,
    ):
        looked = _looking_after(asked, pool) if asked is not None else None
        counted = {  # meanwhile, on the request's connection, in one round trip
            "customers": select(func.count()).select_from(Customer),
            "sales": select(func.count()).select_from(Sale),
            "scheduled": tallied_now(PENDING),  # held ones too: they wait for a case, then go
            "open_cases": select(func.count()).where(Case.status == CaseStatus.OPEN),
        }
        row = session.execute(select(*(q.scalar_subquery() for q in counted.values()))).one()
        counts = dict(zip(counted, row, strict=True))
        recent = session.scalars(  # with whom and what: the page names them, not one by one
            select(Sale)
            .options(joinedload(Sale.customer), joinedload(Sale.product))
            .order_by(Sale.sold_at.desc())
            .limit(10)
        ).all()
        told = recipients(session, config)
        cadences = session.scalars(select(Cadence.name).order_by(Cadence.name)).all()
        products = session.execute(select(Product.sku, Product.name).order_by(Product.name)).all()
        found, themes = looked() if looked is not None else (None, None)
    page = render_template(
        "index.html",
        config=config,
        counts=counts,
        recent=recent,
        told=told,
        asked=asked,
        found=found,
        themes=themes,
        theme_rows=THEME_ROWS,
        cadences=cadences,
        products=products,
        days=DAYS,
        problem=problem,
        nps_chart=_nps_chart(found) if found else None,
        funnels=[_funnel_chart(step) for step in found.steps] if found else [],
    )
    return (page, 400) if problem else page


def _nps_chart(found: Figures) -> str:
    points = [
        (
            week.strftime("%d/%m"),
            nps.score,
            _("%(count)d ratings", count=nps.ratings),
        )
        for week, nps in found.nps_by_week
    ]
    return score_bars(_("NPS by week"), points)


def for_the_period(
    view: Callable[[Asked], Response],
) -> Callable[[], Response]:
    """A download of what the query asks for; a 400 saying which field is wrong."""

    @wraps(view)
    def download() -> Response:
        try:
            asked = read_asked()
        except UnreadablePeriod as unreadable:  # plain text: it quotes what was asked
            return Response(str(unreadable), 400, mimetype="text/plain")
        return view(asked)

    return download


def _funnel_chart(step: StepFunnel) -> str:
    stages = [
        (_("sent"), step.sent),
        (_("delivered"), step.delivered),
        (_("replied"), step.replied),
        (_("objections"), step.objections),
        (_("resolved"), step.resolved),
    ]
    told = ", ".join(f"{label} {count}" for label, count in stages)
    return funnel_bars(f"{step.cadence} · {step.step}: {told}", stages)


@blueprint.get("/admin/figures.csv")
@owner_only
@for_the_period
def figures_csv(asked: Asked) -> Response:
    """The dashboard's figures as `figure,value` lines, as `GET /api/stats?format=csv`."""
    opening = services().config.cases.opening_hours
    found = figures(
        reading_session(), asked.period, now=utcnow(), opening=opening, scope=asked.scope
    )
    return csv_download(stats_json(found, asked.cadence, asked.product), "postventa-figures")


@blueprint.get("/admin/complaints.csv")
@owner_only
@for_the_period
def complaints_download(asked: Asked) -> Response:
    """What customers complained about: one line per product, theme and example reply."""
    session = reading_session()
    themes = complaint_themes(session, asked.period, vocabulary(session), scope=asked.scope)
    return complaints_csv(themes, asked.period)
