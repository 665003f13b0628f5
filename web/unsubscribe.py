"""`/unsubscribe/<token>`: the one-click email unsubscribe link (RFC 8058) in every email.

The token in the link is the only credential: the customer has no login. A GET only shows a
button, because mail security scanners open every link in a message; the opt-out happens on the
POST, which mail clients send by themselves with the body `List-Unsubscribe=One-Click`.
"""

from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template
from sqlalchemy import select

from scheduler.clock import utcnow
from scheduler.consent import opt_out
from scheduler.lifecycle import Channel, ConsentSource
from scheduler.models import Customer
from web.database import db_session, services

blueprint = Blueprint("unsubscribe", __name__)

VIA = "one-click unsubscribe link"


def _page(state: str, status: int = 200, token: str | None = None) -> Response:
    """The page for `state` (confirm, done, unknown), kept out of caches and referrers."""
    html = render_template("unsubscribe.html", config=services().config, state=state, token=token)
    response = make_response(html, status)
    # The token in the URL is a credential: neither a cache nor a followed link should keep it.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _customer(token: str) -> Customer | None:
    return db_session().scalar(select(Customer).where(Customer.unsubscribe_token == token))


@blueprint.get("/unsubscribe/<token>")
def confirm(token: str) -> Response:
    """Ask before unsubscribing: a link scanner's GET must change nothing."""
    if _customer(token) is None:
        return _page("unknown", 404)
    return _page("confirm", token=token)


@blueprint.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> Response:
    """Stop the customer's emails, the pending ones at once. Repeating is harmless."""
    session = db_session()
    customer = _customer(token)
    if customer is None:
        return _page("unknown", 404)
    opt_out(
        session,
        customer,
        channel=Channel.EMAIL,
        source=ConsentSource.UNSUBSCRIBE_LINK,
        via=VIA,
        now=utcnow(),
        actor="customer",
    )
    session.commit()
    return _page("done")
