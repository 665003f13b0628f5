"""The JSON API's cadences: read them, and replace one with the same checks as the admin's editor
(`scheduler.sending.cadence_editing`), pending follow-ups re-planned as the editor does.

Routes on `web.api.blueprint`, so the same bearer tokens and JSON errors apply.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Response, jsonify
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from scheduler.clock import utcnow
from scheduler.db import begin_writing
from scheduler.models import Cadence, CadenceStep, Product
from scheduler.sending.cadence_editing import (
    CadenceError,
    CadenceInput,
    StepInput,
    offset_parts,
    save_cadence,
)
from scheduler.typed_text import unfit_character
from web.api import api_actor, blueprint, error, errors, json_body
from web.api_paging import page, read_paging
from web.database import db_session, services

CADENCE_ORDER = (Cadence.name,)  # unique
MAX_STEPS = 100
MAX_NAME = 100  # cadences.name
Problem = tuple[str | None, str]
# A step's fields in the API: (type, required); the editor's own names differ for two.
STEP_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "key": (str, True),
    "anchor": (str, True),
    "offset": (dict, True),
    "channel": (str, True),
    "template": (str, True),
    "condition": ((str, type(None)), False),
    "active": (bool, False),
}
TYPE_NAMES = {str: "text", dict: 'an object such as {"days": 7, "hours": 0}', bool: "true or false"}
EDITOR_NAMES = {"template_name": "template"}
_STEP_PATH = re.compile(r"steps\.(\d+)\.(\w+)")


def step_json(step: CadenceStep) -> dict[str, Any]:
    days, hours = offset_parts(step.offset_minutes)
    return {
        "key": step.key,
        "anchor": str(step.anchor),
        "offset": {"days": days, "hours": hours},
        "channel": str(step.channel),
        "template": step.template_name,
        "condition": step.condition,
        "active": step.active,
    }


def cadence_json(cadence: Cadence) -> dict[str, Any]:
    """The cadence and every step, the paused ones too, earliest first."""
    return {
        "name": cadence.name,
        "is_default": cadence.is_default,
        "active": cadence.active,
        "product_category": cadence.product_category,
        "steps": [step_json(step) for step in cadence.steps],
    }


@blueprint.get("/cadences")
def list_cadences() -> tuple[Response, int]:
    """Every cadence by name, with its steps, a page at a time."""
    problems: list[Problem] = []
    paging = read_paging(CADENCE_ORDER, problems)
    if problems:
        return errors(400, problems)
    rows, next_cursor = page(db_session(), select(Cadence), paging)
    return jsonify(cadences=[cadence_json(row) for (row,) in rows], next_cursor=next_cursor), 200


def _find(name: str, *, lock: bool = False) -> Cadence | None:
    """The cadence called `name`; None without asking when no cadence could be called so (a
    NUL in the address would be PostgreSQL's error, not a 404)."""
    if len(name) > MAX_NAME or unfit_character(name):
        return None
    query = select(Cadence).where(Cadence.name == name)
    return db_session().scalar(query.with_for_update() if lock else query)


@blueprint.get("/cadences/<path:name>")
def get_cadence(name: str) -> tuple[Response, int]:
    cadence = _find(name)
    if cadence is None:
        return error(404, f"no cadence called {name[:100]!r}")
    return jsonify(cadence_json(cadence)), 200


def _type_problem(value: Any, kind: type | tuple[type, ...]) -> str | None:
    if isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool):
        return None
    first = kind[0] if isinstance(kind, tuple) else kind
    return f"must be {TYPE_NAMES[first]}" + (" or null" if isinstance(kind, tuple) else "")


def _offset(value: dict[str, Any], where: str, problems: list[Problem]) -> tuple[str, str]:
    """The offset's days and hours as the editor's text, which the editor then checks."""
    parts = {"days": "0", "hours": "0"}
    for unit, amount in value.items():
        if unit not in parts:
            problems.append((f"{where}.{unit[:40]}", "an offset has days and hours only"))
        elif isinstance(amount, bool) or not isinstance(amount, int | float):
            problems.append((f"{where}.{unit}", "must be a number, such as 7 or -14"))
        else:
            parts[unit] = str(amount)
    return parts["days"], parts["hours"]


def _step(index: int, value: Any, problems: list[Problem]) -> StepInput | None:
    where = f"steps[{index}]"
    if not isinstance(value, dict):
        problems.append((where, "must be an object with key, anchor, offset, channel, template"))
        return None
    count = len(problems)
    for name in value:
        if name not in STEP_FIELDS:
            problems.append(
                (f"{where}.{name[:40]}", f"is not a field of a step ({', '.join(STEP_FIELDS)})")
            )
    for name, (kind, required) in STEP_FIELDS.items():
        if name not in value:
            if required:
                problems.append((f"{where}.{name}", "is required"))
        elif unfit := _type_problem(value[name], kind):
            problems.append((f"{where}.{name}", unfit))
    if len(problems) > count:
        return None
    days, hours = _offset(value["offset"], f"{where}.offset", problems)
    return StepInput(
        key=value["key"].strip(),
        anchor=value["anchor"].strip(),
        offset_days=days,
        offset_hours=hours,
        channel=value["channel"].strip(),
        template_name=value["template"].strip(),
        condition=value.get("condition") or "",
        active=value.get("active", True),
    )


def _edit(name: str, body: dict[str, Any], owned: list[int]) -> CadenceInput | list[Problem]:
    """The body as the editor's input, or what is wrong with its shape."""
    problems: list[Problem] = []
    for key in body:
        if key not in ("active", "product_category", "steps"):
            problems.append(
                (key[:100], "is not a field of a cadence (active, product_category, steps)")
            )
    active = body.get("active", True)
    if not isinstance(active, bool):
        problems.append(("active", "must be true or false"))
    category = body.get("product_category")
    if category is not None and not isinstance(category, str):
        problems.append(("product_category", "must be text or null"))
    raw_steps = body.get("steps")
    steps: list[StepInput | None] = []
    if not isinstance(raw_steps, list):
        problems.append(("steps", "must be a list of steps"))
    elif len(raw_steps) > MAX_STEPS:
        problems.append(("steps", f"at most {MAX_STEPS} steps"))
    else:
        steps = [_step(index, value, problems) for index, value in enumerate(raw_steps)]
    if problems:
        return problems
    return CadenceInput(
        name,
        category or "",
        active is True,
        [step for step in steps if step is not None],
        owned,
    )


def _api_path(field: str) -> str:
    """The editor's `steps.2.template_name` as the API names it: `steps[2].template`."""
    match = _STEP_PATH.fullmatch(field)
    if match is None:
        return field
    index, name = match.groups()
    return f"steps[{index}].{EDITOR_NAMES.get(name, name)}"


@blueprint.put("/cadences/<path:name>")
def put_cadence(name: str) -> tuple[Response, int]:
    """Replace the cadence called `name` (or create it): its steps by key, as the editor saves
    them (a step left out is paused, never deleted), and its pending follow-ups re-planned.
    The products that chose it keep it: products choose their cadence themselves."""
    body, refusal = json_body("a cadence")
    if refusal is not None:
        return refusal
    session = db_session()
    begin_writing(session)
    cadence = _find(name, lock=True)
    owned = (
        list(session.scalars(select(Product.id).where(Product.cadence_id == cadence.id)))
        if cadence
        else []
    )
    edit = _edit(name, body, owned)
    if isinstance(edit, list):
        session.rollback()
        return errors(422, edit)
    try:
        saved, counts = save_cadence(
            session, cadence, edit, config=services().config, now=utcnow(), actor=api_actor()
        )
    except CadenceError as refused:
        session.rollback()
        return errors(422, [(_api_path(field), text) for field, text in refused.problems.items()])
    except IntegrityError:  # another request created a cadence of this name meanwhile
        session.rollback()
        return error(409, f"cadence {name[:100]!r} was created meanwhile: read it and try again")
    session.commit()
    return jsonify(cadence_json(saved) | {"replanned": counts}), 200 if cadence else 201
