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
from scheduler.figures.period import Period, PeriodError, period_from
from scheduler.figures.summary import Figures, figures
from scheduler.lifecycle import PENDING, CaseStatus
from scheduler.models import Cadence, Case, Customer, FollowUp, Sale
from web.api_stats import stats_csv, stats_json
from web.auth import owner_only
from web.charts import score_bars
from web.database import db_session, services
from web.domain_texts import translated

blueprint = Blueprint("home", __name__)
DAYS = (7, 30, 90)  # the periods offered at one click


class UnreadablePeriod(ValueError):
    """The period or cadence asked for cannot be read: the message says which field and why."""


def _asked() -> tuple[Period, str | None, int | None]:
    """The period (`days`, or `from` and `to`) and the cadence the query asks for."""
    config, args = services().config, request.args
    today = utcnow().astimezone(config.business.tz).date()
    first, last = args.get("from") or None, args.get("to") or None
    days = args.get("days")
    if days is not None and first is None and last is None:
        if days not in {str(choice) for choice in DAYS}:
            raise UnreadablePeriod(_("Days: choose 7, 30 or 90."))
        first = (today - timedelta(days=int(days) - 1)).isoformat()
    try:
        period = period_from(first, last, tz=config.business.tz, today=today)
    except PeriodError as problem:
        label = _("From") if problem.field == "from" else _("To")
        raise UnreadablePeriod(f"{label}: {translated(problem)}") from None
    name = args.get("cadence") or None
    cadence_id = None
    if name is not None:
        cadence_id = db_session().scalar(select(Cadence.id).where(Cadence.name == name))
        if cadence_id is None:
            raise UnreadablePeriod(_("Cadence: there is no cadence named %(name)s.", name=name))
    return period, name, cadence_id


def _figures(period: Period, cadence_id: int | None) -> Figures:
    config = services().config
    return figures(
        db_session(),
        period,
        now=utcnow(),
        opening=config.cases.opening_hours,
        cadence_id=cadence_id,
    )


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
        period, cadence, cadence_id = _asked()
        found = _figures(period, cadence_id)
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
        period, cadence, cadence_id = _asked()
    except UnreadablePeriod as unreadable:
        return str(unreadable), 400
    document = stats_json(_figures(period, cadence_id), cadence)
    name = f"postventa-figures-{document['from']}-{document['to']}.csv"
    return Response(
        stats_csv(document),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
