"""A reply from an address that is no customer's, dealt with by a person: linked to the
customer who wrote from another phone, made into a new customer, or dismissed with a reason."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import NumberRange

from scheduler.casework.staff_actions import CaseworkError
from scheduler.clock import utcnow
from scheduler.db import MAX_ID
from scheduler.listening.unmatched import customer_from_reply, dismiss_reply, link_reply
from scheduler.models import Case, Customer, Message
from web.auth import my_name
from web.customers import find_customers
from web.database import db_session, get_or_404, services
from web.domain_texts import translated

blueprint = Blueprint("replies", __name__)
MATCHES = 20


class LinkForm(FlaskForm):  # type: ignore[misc]
    customer_id = IntegerField("customer_id", validators=[NumberRange(1, MAX_ID)])
    open_case = BooleanField("open_case")


class NewCustomerForm(FlaskForm):  # type: ignore[misc]
    name = StringField("name")
    open_case = BooleanField("open_case")


class DismissForm(FlaskForm):  # type: ignore[misc]
    reason = StringField("reason")


@blueprint.get("/replies/<int:message_id>")
def show(message_id: int) -> str:
    message = get_or_404(Message, message_id)
    return _page(db_session(), message)


def _page(
    session: Session,
    message: Message,
    *,
    new: NewCustomerForm | None = None,
    dismiss: DismissForm | None = None,
) -> str:
    query_text = request.args.get("q", "").strip()
    return render_template(
        "inbox/reply.html",
        message=message,
        q=query_text,
        matches=find_customers(session, query_text, MATCHES) if query_text else [],
        link=LinkForm(),
        new=new or NewCustomerForm(),
        dismiss=dismiss or DismissForm(),
    )


def _done(session: Session, case: Case | None, customer: Customer, text: str) -> BaseResponse:
    session.commit()
    flash(text)
    if case is not None:
        return redirect(url_for("inbox.case_page", case_id=case.id))
    return redirect(url_for("customers.show", customer_id=customer.id))


def _refused(
    session: Session, message: Message, error: CaseworkError | str, **forms: FlaskForm
) -> tuple[str, int]:
    session.rollback()
    flash(translated(error), "error")
    return _page(session, session.get_one(Message, message.id), **forms), 422


@blueprint.post("/replies/<int:message_id>/link")
def link(message_id: int) -> BaseResponse | tuple[str, int]:
    session, message = db_session(), get_or_404(Message, message_id, lock=True)
    form = LinkForm()
    customer = session.get(Customer, form.customer_id.data) if form.validate() else None
    if customer is None:
        return _refused(session, message, _("Choose the customer who wrote it."))
    try:
        case = link_reply(
            session,
            message,
            customer,
            open_case=form.open_case.data,
            config=services().config,
            now=utcnow(),
            actor=my_name(),
        )
    except CaseworkError as error:
        return _refused(session, message, error)
    return _done(session, case, customer, _("The reply is now %(name)s's.", name=customer.name))


@blueprint.post("/replies/<int:message_id>/customer")
def new_customer(message_id: int) -> BaseResponse | tuple[str, int]:
    session, message = db_session(), get_or_404(Message, message_id, lock=True)
    form = NewCustomerForm()
    config, now = services().config, utcnow()
    try:
        customer = customer_from_reply(
            session, message, name=form.name.data or "", config=config, now=now, actor=my_name()
        )
        case = link_reply(
            session,
            message,
            customer,
            open_case=form.open_case.data,
            config=config,
            now=now,
            actor=my_name(),
        )
    except CaseworkError as error:
        return _refused(session, message, error, new=form)
    return _done(session, case, customer, _("Customer %(name)s created.", name=customer.name))


@blueprint.post("/replies/<int:message_id>/dismiss")
def dismiss(message_id: int) -> BaseResponse | tuple[str, int]:
    session, message = db_session(), get_or_404(Message, message_id, lock=True)
    form = DismissForm()
    try:
        dismiss_reply(
            session, message, reason=form.reason.data or "", now=utcnow(), actor=my_name()
        )
    except CaseworkError as error:
        return _refused(session, message, error, dismiss=form)
    session.commit()
    flash(_("Reply dismissed."))
    return redirect(url_for("inbox.index", tab="unmatched"))
