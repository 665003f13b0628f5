"""The front page: what this Postventa holds and what it is doing."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from scheduler.casework.recipients import recipients
from scheduler.lifecycle import PENDING, CaseStatus
from scheduler.models import Case, Customer, FollowUp, Sale
from web.database import db_session, services

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
def index() -> str:
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
    return render_template(
        "index.html",
        config=config,
        counts=counts,
        recent=recent,
        told=recipients(session, config),
    )
