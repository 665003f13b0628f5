"""The customers at risk: who may leave without a word, why, and a case for a person in one
click. Owners and staff both see it; the dashboard shows the first few."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from scheduler.casework.cases import open_case_by_hand
from scheduler.casework.staff_actions import CaseworkError
from scheduler.clock import utcnow
from scheduler.figures.at_risk import at_risk, described
from scheduler.models import Customer
from web.auth import me
from web.database import as_id, db_session, get_or_404, reading_session, services
from web.domain_texts import translated
from web.figure_files import at_risk_csv
from web.forms import OpenCaseForm
from web.home import DAYS, Asked, UnreadablePeriod, for_the_period, read_asked

blueprint = Blueprint("at_risk", __name__)
PAGE = 100  # customers a page shows; the CSV holds them all


@blueprint.get("/at-risk")
def page() -> str | tuple[str, int]:
    try:
        asked = read_asked()
    except UnreadablePeriod as unreadable:
        return render_template("at_risk.html", problem=str(unreadable), days=DAYS), 400
    number = request.args.get("page", "1")
    page = as_id(number)
    if not page:
        problem = _("Page: a whole number from 1, not %(value)s.", value=number[:20])
        return render_template("at_risk.html", problem=problem, days=DAYS), 400
    session = reading_session()
    risks = at_risk(session, asked.period, now=utcnow())
    pages = max(1, -(-len(risks) // PAGE))
    page = min(page, pages)  # the list may have shortened since the link was made
    first = (page - 1) * PAGE
    return render_template(
        "at_risk.html",
        asked=asked,
        total=len(risks),
        risks=described(session, risks[first : first + PAGE]),
        page=page,
        pages=pages,
        days=DAYS,
        form=OpenCaseForm(),
    )


@blueprint.get("/at-risk.csv")
@for_the_period
def download(asked: Asked) -> Response:
    session = reading_session()
    risks = described(session, at_risk(session, asked.period, now=utcnow()))
    return at_risk_csv(risks, asked.period)


@blueprint.post("/customers/<int:customer_id>/case")
def open_case(customer_id: int) -> BaseResponse:
    """A case for a customer at risk, with why in its first note; their open one if any."""
    session, customer = db_session(), get_or_404(Customer, customer_id)
    form = OpenCaseForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        case, opened = open_case_by_hand(
            session, customer, why=form.why.data, by=me(), config=services().config, now=utcnow()
        )
    except CaseworkError as error:
        flash(translated(error), "error")
        return redirect(url_for("at_risk.page"))
    session.commit()
    flash(_("Case opened: it is in the inbox.") if opened else _("They already have a case open."))
    return redirect(url_for("inbox.case_page", case_id=case.id))
