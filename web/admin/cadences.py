"""Cadences: the list, and the editor of one cadence's steps with a picture of its timeline."""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from scheduler.clock import utcnow
from scheduler.lifecycle import Anchor, Channel
from scheduler.listening.inbound import ANSWER_TEMPLATES
from scheduler.models import Cadence, CadenceStep, MessageTemplate, Product
from scheduler.sending.cadence_editing import (
    CadenceError,
    CadenceInput,
    StepInput,
    offset_parts,
    save_cadence,
)
from web.admin import blueprint
from web.auth import my_name
from web.database import as_id, db_session, services
from web.domain_texts import translated

BLANK_ROWS = 3
STEP_FIELDS = (
    "key",
    "anchor",
    "offset_days",
    "offset_hours",
    "channel",
    "template_name",
    "condition",
)
LANES = {
    Anchor.SALE.value: _l("after the sale"),
    Anchor.SCORE.value: _l("after a score"),
    Anchor.CASE.value: _l("after a case is resolved"),
    Anchor.RENEWAL.value: _l("renewal"),
}


@dataclass(frozen=True)
class Marker:
    lane: str
    left: float  # percent of the lane's width
    label: str
    when: str


def _when(minutes: int) -> str:
    days, rest = divmod(abs(minutes), 24 * 60)
    text = (f"{days} d " if days else "") + (f"{rest // 60} h" if rest // 60 or not days else "")
    return ("-" if minutes < 0 else "+") + text.strip()


def timeline(steps: list[StepInput]) -> list[Marker]:
    """Where each active step sits on its lane: a square-root scale, so that day 1 and day 90
    are both readable; renewal steps count back from the renewal date at the right."""
    offsets = []
    for step in steps:
        try:
            minutes = round(
                (float(step.offset_days or 0) * 24 + float(step.offset_hours or 0)) * 60
            )
        except ValueError:
            continue
        offsets.append((step, minutes))
    longest = max([abs(m) for _s, m in offsets] + [24 * 60])
    markers = []
    for step, minutes in offsets:
        if not step.active or step.anchor not in LANES:
            continue
        share = math.sqrt(abs(minutes) / longest) * 92
        left = 96 - share if step.anchor == Anchor.RENEWAL.value else 2 + share
        markers.append(Marker(step.anchor, round(left, 1), step.key, _when(minutes)))
    return markers


def _as_input(row: CadenceStep) -> StepInput:
    days, hours = offset_parts(row.offset_minutes)
    return StepInput(
        row.key,
        row.anchor.value,
        str(days),
        f"{hours:g}" if hours else "",
        row.channel.value,
        row.template_name,
        row.condition or "",
        row.active,
    )


def _posted_steps() -> list[StepInput]:
    columns = {name: request.form.getlist(f"step_{name}") for name in STEP_FIELDS}
    paused = set(request.form.getlist("step_off"))  # new rows have no box: they start on
    steps = []
    for index in range(len(columns["key"])):
        values = {
            name: (columns[name][index] if index < len(columns[name]) else "").strip()
            for name in STEP_FIELDS
        }
        if not values["key"] and not values["template_name"]:
            continue  # a blank row left for adding
        steps.append(StepInput(**values, active=values["key"] not in paused))
    return steps


def _page(cadence: Cadence | None, edit: CadenceInput, problems: dict[str, str]) -> str:
    session = db_session()
    templates = session.execute(
        select(MessageTemplate.name, MessageTemplate.channel)
        .where(MessageTemplate.name.not_in(ANSWER_TEMPLATES))
        .distinct()
        .order_by(MessageTemplate.name)
    ).all()
    products = session.scalars(select(Product).order_by(Product.name)).all()
    category = edit.product_category.strip()
    by_category = [
        p for p in products if category and p.category == category and p.cadence_id is None
    ]
    rows = list(edit.steps) + [StepInput("", "sale", "", "", "sms", "", "")] * BLANK_ROWS
    return render_template(
        "admin/cadence.html",
        cadence=cadence,
        edit=edit,
        rows=rows,
        problems=problems,
        templates=templates,
        products=products,
        anchors=[a.value for a in Anchor],
        channels=[c.value for c in Channel],
        markers=timeline(list(edit.steps)),
        lanes=LANES,
        form=FlaskForm(),
        by_category=by_category,
    )


@blueprint.get("/cadences")
def cadences() -> str:
    session = db_session()
    rows = session.scalars(select(Cadence).order_by(Cadence.is_default.desc(), Cadence.name)).all()
    chosen = dict(
        session.execute(select(Product.cadence_id, func.count()).group_by(Product.cadence_id)).all()
    )
    by_category = dict(
        session.execute(
            select(Product.category, func.count())
            .where(Product.cadence_id.is_(None), Product.category.isnot(None))
            .group_by(Product.category)
        ).all()
    )
    products = {  # those that chose it, and those that follow it through their category
        c.id: chosen.get(c.id, 0) + by_category.get(c.product_category, 0) for c in rows
    }
    pictures = {c.id: timeline([_as_input(step) for step in c.steps]) for c in rows}
    return render_template(
        "admin/cadences.html", cadences=rows, products=products, pictures=pictures, lanes=LANES
    )


@blueprint.route("/cadences/new", methods=["GET", "POST"])
@blueprint.route("/cadences/<int:cadence_id>", methods=["GET", "POST"])
def cadence(cadence_id: int | None = None) -> BaseResponse | str | tuple[str, int]:
    session = db_session()
    row = session.get(Cadence, cadence_id) if cadence_id is not None else None
    if cadence_id is not None and row is None:
        abort(404)
    # The CSRF token; the steps are rows of same-named fields, read by _posted_steps.
    if request.method == "GET" or not FlaskForm().validate_on_submit():
        steps = [_as_input(step) for step in row.steps] if row else []
        owned = (
            [p.id for p in session.scalars(select(Product).where(Product.cadence_id == row.id))]
            if row
            else []
        )
        current = CadenceInput(
            row.name if row else "",
            (row.product_category or "") if row else "",
            row.active if row else True,
            steps,
            owned,
        )
        return _page(row, current, {})
    edit = CadenceInput(
        request.form.get("name", ""),
        request.form.get("product_category", ""),
        request.form.get("active") == "on",
        _posted_steps(),
        [n for n in map(as_id, request.form.getlist("products")) if n is not None],
    )
    try:
        saved, counts = save_cadence(
            session, row, edit, config=services().config, now=utcnow(), actor=my_name()
        )
    except CadenceError as error:
        session.rollback()
        problems = {field: translated(text) for field, text in error.problems.items()}
        return _page(row, edit, problems), 422
    session.commit()
    flash(
        _(
            "Cadence saved. Follow-ups already planned: %(redated)d re-dated, %(cancelled)d "
            "cancelled, %(added)d added.",
            **counts,
        )
    )
    return redirect(url_for("admin.cadence", cadence_id=saved.id))
