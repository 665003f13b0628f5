"""The front page. Owners land on the dashboard: what this Postventa holds, and the figures of
a period (see `scheduler.figures`); staff land on the inbox, where their work is."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from scheduler.casework.recipients import recipients
from scheduler.clock import utcnow
from scheduler.figures.period import PeriodError
from scheduler.figures.summary import Figures, asked
from scheduler.lifecycle import PENDING, CaseStatus
from scheduler.models import Cadence, Case, Customer, FollowUp, Sale
from web.api_stats import csv_download, stats_json
from web.auth import owner_only
from web.charts import score_bars
from web.database import db_session, services
from web.domain_texts import translated

blueprint = Blueprint("home", __name__)
DAYS = (7, 30, 90)  # the periods offered at one click


class UnreadablePeriod(ValueError):
    """The period or cadence asked for cannot be read: the message says which field and why."""


def _asked() -> tuple[Figures, str | None]:
    """The figures the query asks for (`days`, or `from` and `to`; a cadence or all), and
    the cadence's name."""
    config, args = services().config, request.args
    now = utcnow()
    first, last = args.get("from") or None, args.get("to") or None
    days = args.get("days")
    if days is not None and first is None and last is None:
        if days not in {str(choice) for choice in DAYS}:
            raise UnreadablePeriod(_("Days: choose 7, 30 or 90."))
        today = now.astimezone(config.business.tz).date()
        first = (today - timedelta(days=int(days) - 1)).isoformat()
    cadence = args.get("cadence") or None
    try:
        return asked(db_session(), first, last, cadence, config=config, now=now), cadence
    except PeriodError as problem:
        labels = {"from": _("From"), "to": _("To"), "cadence": _("Cadence")}
        raise UnreadablePeriod(f"{labels[problem.field]}: {translated(problem)}") from None


@blueprint.get("/")
def index() -> BaseResponse | str | tuple[str, int]:
    if current_user.is_authenticated and not current_user.is_owner:
        return redirect(url_for("inbox.index"))
    session = db_session()
    config = services().config
    counts = {
        "customers": session.scalar(select(func.count()).select_from(Customer)),
        "sales": session.scalar(select(func.count()).select_from(Sale)),
        "scheduled": session.scalar(  # held ones too: they wait for a case, then go
            select(func.count()).where(FollowUp.status.in_(PENDING))
        ),
        "open_cases": session.scalar(select(func.count()).where(Case.status == CaseStatus.OPEN)),
    }
    recent = session.scalars(select(Sale).order_by(Sale.sold_at.desc()).limit(10)).all()
    found, cadence, problem = None, None, None
    try:
        found, cadence = _asked()
    except UnreadablePeriod as unreadable:
        problem = str(unreadable)
    page = render_template(
        "index.html",
        config=config,
        counts=counts,
        recent=recent,
        told=recipients(session, config),
        found=found,
        cadence=cadence,
        cadences=session.scalars(select(Cadence.name).order_by(Cadence.name)).all(),
        days=DAYS,
        problem=problem,
        nps_chart=_nps_chart(found) if found else None,
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


@blueprint.get("/admin/figures.csv")
@owner_only
def figures_csv() -> Response | tuple[str, int]:
    """The dashboard's figures as `figure,value` lines, as `GET /api/stats?format=csv`."""
    try:
        found, cadence = _asked()
    except UnreadablePeriod as unreadable:
        return str(unreadable), 400
    return csv_download(stats_json(found, cadence), "postventa-figures")
