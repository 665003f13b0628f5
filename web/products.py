"""The product catalogue in the admin: everyone may look (which cadence a product's customers
hear from, and why); only owners change a product."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from scheduler.clock import utcnow
from scheduler.models import Cadence
from scheduler.sending.products import (
    FIELDS,
    ProductError,
    ProductView,
    list_products,
    product_view,
    update_product,
)
from web.auth import my_name
from web.database import db_session, services
from web.domain_texts import translated

blueprint = Blueprint("products", __name__)
PAGE = 50


@blueprint.get("/products")
def index() -> str:
    """A page of products by SKU, searched by SKU or name; `after` is the last SKU shown."""
    query_text = request.args.get("q", "").strip()[:200]
    after = request.args.get("after") or None
    views = list_products(db_session(), search=query_text, after=after, limit=PAGE + 1)
    return render_template(
        "products/index.html",
        products=views[:PAGE],
        more=views[PAGE - 1].sku if len(views) > PAGE else None,
        q=query_text,
        after=after,
    )


def _page(view: ProductView, values: dict[str, str], problems: dict[str, list[str]]) -> str:
    cadences = db_session().scalars(select(Cadence.name).order_by(Cadence.name)).all()
    return render_template(
        "products/edit.html",
        product=view,
        values=values,
        problems=problems,
        cadences=cadences,
        form=FlaskForm(),
        editable=current_user.is_owner,
    )


@blueprint.route("/products/<path:sku>", methods=["GET", "POST"])
def edit(sku: str) -> BaseResponse | str | tuple[str, int]:
    if request.method == "POST" and not current_user.is_owner:
        abort(403)
    view = product_view(db_session(), sku)
    if view is None:
        abort(404)
    if request.method == "GET" or not FlaskForm().validate_on_submit():
        current = {
            "name": view.name,
            "category": view.category or "",
            "renewal_days": str(view.renewal_days or ""),
            "cadence": view.cadence or "",
        }
        return _page(view, current, {})
    values = {key: request.form.get(key, "") for key in FIELDS}
    session = db_session()
    try:
        updated = update_product(
            session, sku, values, config=services().config, now=utcnow(), actor=my_name()
        )
    except ProductError as refused:
        session.rollback()
        problems: dict[str, list[str]] = {}
        for field, message in refused.problems:
            problems.setdefault(field, []).append(translated(message))
        return _page(view, values, problems), 422
    if updated is None:  # products are never deleted; a database restored meanwhile
        abort(404)
    session.commit()
    counts = {"redated": 0, "cancelled": 0, "added": 0, "already_sent": 0} | updated[1]
    flash(
        _(
            "Product saved. Follow-ups already planned: %(redated)d re-dated, %(cancelled)d "
            "cancelled, %(added)d added (%(already_sent)d of them skipped: already sent for "
            "that sale).",
            **counts,
        )
    )
    return redirect(url_for("products.edit", sku=sku))
