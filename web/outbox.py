"""What the outbox transport kept instead of sending, and, while SMS go to the outbox, a way to
answer as a customer would: the whole loop with `make run` and no Twilio account."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from scheduler.addresses import normalise_phone
from scheduler.clock import utcnow
from scheduler.lifecycle import Channel
from scheduler.listening.inbound import InboundMessage, triage
from scheduler.models import Customer, OutboxEntry
from scheduler.sending.transports.outbox import SENDERS
from web.database import db_session, services
from web.domain_texts import translated
from web.webhooks import receive

blueprint = Blueprint("outbox", __name__)
PAGE = 200


class SimulateForm(FlaskForm):  # type: ignore[misc]
    sender = StringField("from", validators=[DataRequired(), Length(max=32)])
    body = TextAreaField("body", validators=[DataRequired(), Length(max=1600)])


def _simulating() -> bool:
    return services().config.sms.transport == "outbox"


@blueprint.get("/outbox")
def index() -> str:
    session = db_session()
    entries = session.scalars(select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(PAGE)).all()
    people = session.scalars(
        select(Customer).where(Customer.phone.isnot(None)).order_by(Customer.name).limit(PAGE)
    ).all()
    return render_template(
        "outbox.html",
        entries=entries,
        form=SimulateForm(),
        simulating=_simulating(),
        customers=people,
    )


@blueprint.post("/outbox/simulate")
def simulate() -> BaseResponse | tuple[str, int]:
    """Store the reply exactly as the Twilio webhook would, then read it as the worker would."""
    if not _simulating():
        return _('Only while SMS go to the outbox (sms.transport = "outbox").'), 409
    form = SimulateForm()
    if not form.validate_on_submit():
        flash(_("Say who writes and what."), "error")
        return redirect(url_for("outbox.index"))
    config, now = services().config, utcnow()
    try:  # a customer's number: short codes and alphanumeric senders are nobody's customer
        sender = normalise_phone(form.sender.data, config.business.country)
    except ValueError as error:
        flash(translated(error), "error")
        return redirect(url_for("outbox.index"))
    sms = InboundMessage(f"SIM{uuid.uuid4().hex}", sender, SENDERS[Channel.SMS], form.body.data)
    answer = receive(db_session(), sms)
    triage(services().sessions, config, now=now)
    flash(_("Reply received as if by SMS."))
    if answer:
        flash(_("Answered at once: %(text)s", text=answer))
    return redirect(url_for("outbox.index"))
