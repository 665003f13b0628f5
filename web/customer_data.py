"""A customer's data on request, for owners: a copy of everything (JSON, or a page to read,
print or save as PDF), and erasure. Each is in the audit log (`scheduler.customer_data`,
`scheduler.erasure`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import StringField

from scheduler import customer_data, erasure
from scheduler.clock import utcnow
from scheduler.config import Config
from scheduler.db import begin_writing
from scheduler.models import Customer
from web.auth import my_name, owner_only
from web.database import db_session, get_or_404
from web.domain_texts import translated

blueprint = Blueprint("customer_data", __name__)
REASON_MOST = 500


class EraseForm(FlaskForm):  # type: ignore[misc]
    reason = StringField()
    confirm = StringField()  # the customer's number, typed: no erasure by a stray click


def _export(customer_id: int) -> dict[str, Any]:
    session = db_session()
    begin_writing(session)  # it reads, then notes the copy in the audit log
    get_or_404(Customer, customer_id)
    data = customer_data.export(session, customer_id, now=utcnow())
    customer_data.record_export(session, customer_id, actor=my_name(), now=utcnow())
    session.commit()
    return data


@blueprint.get("/customers/<int:customer_id>/data.json")
@owner_only
def as_json(customer_id: int) -> Response:
    body = json.dumps(_export(customer_id), ensure_ascii=False, indent=2)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f"attachment; filename=customer-{customer_id}.json"},
    )


def page(data: dict[str, Any], config: Config) -> str:
    """The export as one page to read, print or save as PDF, in the customer's language (the
    business's when theirs is not known), times in their time zone. Needs a request context."""
    locale = data["customer"]["language"] or config.business.locale
    zone = ZoneInfo(data["customer"]["time_zone"] or config.business.timezone)

    def at(moment: str | None) -> str:
        if not moment:
            return "—"
        return format_datetime(datetime.fromisoformat(moment), "medium", tzinfo=zone, locale=locale)

    with force_locale(locale):
        return str(
            render_template(
                "customers/data.html",
                data=data,
                business=config.business.name,
                exported_at=data["exported_at"],
                at=at,
            )
        )


@blueprint.get("/customers/<int:customer_id>/data")
@owner_only
def as_page(customer_id: int) -> Response:
    config = current_app.extensions["postventa"].config
    return Response(page(_export(customer_id), config), mimetype="text/html")


@blueprint.route("/customers/<int:customer_id>/erase", methods=["GET", "POST"])
@owner_only
def erase(customer_id: int) -> BaseResponse | str | tuple[str, int]:
    session = db_session()
    if request.method == "POST":
        begin_writing(session)
    customer = get_or_404(Customer, customer_id)
    form = EraseForm()
    if customer.erased_at is not None:
        flash(_("This customer was erased already."), "error")
        return redirect(url_for("customers.show", customer_id=customer_id))
    if not form.is_submitted():
        return render_template("customers/erase.html", customer=customer, form=form)
    problems = []
    reason = (form.reason.data or "").strip()
    if not reason:
        problems.append(_("Say why (for the audit log; not the customer's name)."))
    elif len(reason) > REASON_MOST:
        problems.append(_("The reason is too long: at most %(most)d characters.", most=REASON_MOST))
    if (form.confirm.data or "").strip() != str(customer_id):
        problems.append(_("Type the customer's number, %(id)d, to confirm.", id=customer_id))
    if problems or not form.validate():
        for problem in problems:
            flash(problem, "error")
        return render_template("customers/erase.html", customer=customer, form=form), 400
    try:
        done = erasure.erase(session, customer, actor=my_name(), reason=reason, now=utcnow())
    except erasure.ErasureError as error:
        flash(translated(error), "error")
        return redirect(url_for("customers.show", customer_id=customer_id))
    session.commit()
    flash(
        _(
            "Customer erased: %(messages)d messages and %(cases)d cases kept without their "
            "words; %(cancelled)d follow-ups cancelled. Nothing can be sent to them again.",
            messages=done.messages,
            cases=done.cases,
            cancelled=done.follow_ups_cancelled,
        )
    )
    return redirect(url_for("customers.show", customer_id=customer_id))
