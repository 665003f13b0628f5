"""`/healthz`: for load balancers and uptime checks. `?deep=1` also asks whether a worker is
sending (`scheduler.heartbeats`): an uptime check on it pages someone before a customer
notices that nobody followed up."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from scheduler import heartbeats
from scheduler.clock import utcnow
from web.database import db_session

blueprint = Blueprint("health", __name__)


def _at(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    session = db_session()
    try:
        session.execute(text("SELECT 1"))
        health = heartbeats.health(session, now=utcnow()) if request.args.get("deep") else None
    except SQLAlchemyError:
        return jsonify(status="error", database="unreachable"), 503
    if health is None:
        return jsonify(status="ok", database="ok"), 200
    wait = health.oldest_wait
    answer = {
        "status": "ok" if health.ok else "error",
        "database": "ok",
        "worker": "late" if health.workers_late else "ok",
        "workers_passing": health.workers_passing,
        "last_pass_at": _at(health.last_pass_at),
        "backlog": "late" if health.backlog_late else "ok",
        "oldest_due_at": _at(health.oldest_due_at),
        "oldest_wait_seconds": None if wait is None else round(wait.total_seconds()),
    }
    return jsonify(answer), 200 if health.ok else 503
