"""`GET /api/stats`: the dashboard's figures for a period, as JSON or as CSV.

Routes on `web.api.blueprint` (bearer tokens, JSON errors). The period is the business's
local days `from`..`to`, both included (30 days to today by default); `cadence` (a name) and
`product` (a SKU) narrow the follow-ups, replies, ratings, checks and steps to one cadence's
steps and one product's sales. Each figure is defined in
`scheduler.figures.summary` and in the README.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from flask import Response, jsonify, request

from scheduler.clock import utcnow
from scheduler.figures.period import Period, PeriodError
from scheduler.figures.summary import Figures, Nps, asked
from scheduler.lifecycle import Channel, FollowUpStatus
from scheduler.sending.csv_cells import spreadsheet_safe
from web.api import blueprint, error
from web.database import reading_session, services
from web.figure_files import csv_file

FORMATS = ("json", "csv")
_NUMBER = re.compile(r"-?\d+(\.\d+)?(e-?\d+)?")


def nps_json(nps: Nps) -> dict[str, Any]:
    return {
        "promoters": nps.promoters,
        "passives": nps.passives,
        "detractors": nps.detractors,
        "ratings": nps.ratings,
        "score": nps.score,
    }


def stats_json(found: Figures, cadence: str | None, product: str | None) -> dict[str, Any]:
    period: Period = found.period
    statuses = [status.value for status in FollowUpStatus]
    channels = [channel.value for channel in Channel]
    by_status = {status: sum(found.follow_ups.get(status, {}).values()) for status in statuses}
    by_channel = {
        channel: {status: found.follow_ups.get(status, {}).get(channel, 0) for status in statuses}
        for channel in channels
    }
    return {
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "time_zone": period.tz.key,
        "cadence": cadence,
        "product": product,
        "follow_ups": by_status
        | {"by_channel": by_channel, "skipped_because": found.skipped_because},
        "replies": found.replies,
        "reply_rate": found.reply_rate,
        "replied_within_7_days": {"sent": found.sent, "answered": found.answered},
        "nps": nps_json(found.nps)
        | {
            "by_week": [{"week": day.isoformat()} | nps_json(nps) for day, nps in found.nps_by_week]
        },
        "cases": {
            "opened": found.cases.opened,
            "resolved": found.cases.resolved,
            "open_now": found.cases.open_now,
            "overdue_now": found.cases.overdue_now,
            "open_by_age": found.cases.open_by_age,
        },
        "checks": {
            "asked": found.checks.asked,
            "solved": found.checks.solved,
            "not_solved": found.checks.not_solved,
            "no_answer": found.checks.no_answer,
        },
        "opt_outs": {
            "customers": found.opt_outs.customers,
            "by_channel": found.opt_outs.by_channel,
            "messaged": found.opt_outs.messaged,
            "share": found.opt_outs.share,
        },
        "first_response_business_minutes": {
            "p50": found.first_answers.percentile(0.5),
            "p90": found.first_answers.percentile(0.9),
            "answered": len(found.first_answers.minutes),
            "on_time_share": found.first_answers.on_time_share,
        },
        "remedies": {
            kind: {
                "given": given.given,
                "value": str(given.value),
                "needed_owner": given.needed_owner,
            }
            for kind, given in found.remedies.items()
        },
        "steps": [
            {
                "cadence": step.cadence,
                "step": step.step,
                "sent": step.sent,
                "delivered": step.delivered,
                "replied": step.replied,
                "objections": step.objections,
                "resolved": step.resolved,
            }
            for step in found.steps
        ],
    }


def _rows(value: Any, name: str) -> list[tuple[str, str]]:
    """A figure and its parts as (dotted name, value) rows; a week's figures under its date."""
    if isinstance(value, dict):
        return [row for key, part in value.items() for row in _rows(part, f"{name}.{key}")]
    if isinstance(value, list):  # weeks by their first day, steps by cadence and key
        return [row for item in value for row in _rows(_unnamed(item), f"{name}.{_name(item)}")]
    return [(name, "" if value is None else str(value))]


def _name(item: dict[str, Any]) -> str:
    return str(item["week"]) if "week" in item else f"{item['cadence']}.{item['step']}"


def _unnamed(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key not in ("week", "cadence", "step")}


def stats_rows(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """One figure per line (`figure,value`), as a spreadsheet opens it."""
    for key, value in document.items():
        for name, text in _rows(value, key):
            # A figure stays a number (-25 is a score, not a formula); text is made safe.
            cell = text if _NUMBER.fullmatch(text) else spreadsheet_safe(text)
            yield spreadsheet_safe(name), cell


def csv_download(document: dict[str, Any], name: str) -> Response:
    """The figures as a CSV file to save, named after what and which days."""
    return csv_file(
        ("figure", "value"), stats_rows(document), name, document["from"], document["to"]
    )


@blueprint.get("/stats")
def stats_route() -> tuple[Response, int] | Response:
    """The figures of the period (see the module's docstring)."""
    answer_format = request.args.get("format", "json")
    if answer_format not in FORMATS:
        return error(400, f"{answer_format[:20]!r} is not one of json, csv", "format")
    cadence, product = request.args.get("cadence"), request.args.get("product")
    try:
        found = asked(
            reading_session(),
            request.args.get("from"),
            request.args.get("to"),
            cadence,
            product=product,
            config=services().config,
            now=utcnow(),
        )
    except PeriodError as problem:
        return error(400, str(problem), problem.field)
    document = stats_json(found, cadence, product)
    if answer_format == "csv":
        return csv_download(document, "postventa-stats")
    return jsonify(document), 200
