"""The settings page: the keys an owner may change, each shown with where its value comes from
(the file, or an edit here), checked like the file before anything is saved."""

from __future__ import annotations

import json
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse

from scheduler.casework.recipients import recipients
from scheduler.clock import utcnow
from scheduler.config import WEEKDAYS, Config
from scheduler.settings import (
    EDITABLE,
    Overrides,
    SettingsError,
    apply,
    load_overrides,
    raw_value,
    save,
)
from web.admin import blueprint
from web.auth import my_name
from web.database import db_session, services

LABELS = {
    "business.name": _l("Business name"),
    "business.timezone": _l("Time zone (such as America/Lima)"),
    "business.locale": _l("Language of the business (es or en)"),
    "business.send_window": _l("Send messages between (HH:MM-HH:MM, customer's time)"),
    "business.send_days": _l("Send on"),
    "business.review_url": _l("Review page (asked of customers who score 9 or 10)"),
    "cases.first_response_hours": _l("First answer within (opening hours)"),
    "cases.opening_hours": _l("Opening hours (empty: closed)"),
    "cases.notify_emails": _l("Tell these staff by email when a case opens (one per line)"),
    "cases.notify_sms": _l("Tell these staff by SMS too (E.164, one per line)"),
    "cases.escalate_to": _l("Owner(s) told when a case passes its deadline (one per line)"),
    "cases.escalation_levels": _l("Reminders to the owner per case"),
    "cases.acknowledge": _l("Tell the customer at once when a person will answer"),
    "cases.routine_words": _l(
        "Routine questions, answered without a promise (words, one per line)"
    ),
    "sms.keyword_replies": _l("Who answers STOP, HELP and the like"),
    "whatsapp.prefer_over_sms": _l("Send SMS steps by WhatsApp to customers who said yes to it"),
    "whatsapp.content_sids": _l(
        "Approved WhatsApp Content templates, one per line: template/language = HX..."
    ),
    "cadences.min_gap_hours": _l("At least this many hours between two messages to a customer"),
    "cadences.late_grace_hours": _l("Send a late follow-up up to this many hours late"),
    "remedies.staff_max_discount_percent": _l("Staff may give a discount up to (%)"),
    "remedies.staff_max_refund": _l("Staff may refund up to (amount; 0: always ask)"),
    "remedies.staff_may_replace": _l("Staff may replace the product without asking"),
}
SECTIONS = {
    "business": _l("Business"),
    "cases": _l("Cases"),
    "sms": _l("SMS"),
    "whatsapp": _l("WhatsApp"),
    "cadences": _l("Pacing"),
    "remedies": _l("Remedies staff may give"),
}
KEYWORD_CHOICES = {
    "twilio-gaps": _l("Twilio answers STOP and HELP; Postventa answers the Spanish words"),
    "all": _l("Postventa answers every keyword (Twilio's own answers are off)"),
    "none": _l("Nobody answers from Postventa"),
}


def _number(text: str) -> Any:
    text = text.strip().replace(",", ".")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text  # the validator says what is wrong with it


def _lines(text: str) -> list[str]:
    return [item.strip() for item in text.replace(",", "\n").splitlines() if item.strip()]


def _pairs(text: str) -> dict[str, str]:
    """Lines of "name = value" (quotes allowed, as in the file); the validator judges them."""
    pairs = {}
    for line in text.splitlines():
        if line.strip():
            name, _equals, value = line.partition("=")
            pairs[name.strip().strip('"')] = value.strip().strip('"')
    return pairs


def edits_from(form: Any, current: Any) -> Overrides:
    """The posted values in the file's shapes, guided by each key's current value."""
    edits: Overrides = {}
    for section, keys in EDITABLE.items():
        for key in keys:
            name, value = f"{section}.{key}", raw_value(current, section, key)
            posted: Any
            if isinstance(value, bool):
                posted = form.get(name) == "on"
            elif isinstance(value, int | float):
                posted = _number(form.get(name, ""))
            elif key == "content_sids":
                posted = _pairs(form.get(name, ""))
            elif isinstance(value, dict):  # opening hours, a window per day
                posted = {
                    day: form.get(f"{name}.{day}", "").strip()
                    for day in WEEKDAYS
                    if form.get(f"{name}.{day}", "").strip()
                }
            elif key == "send_days":
                posted = form.getlist(name)
            elif isinstance(value, list):
                posted = _lines(form.get(name, ""))
            else:
                posted = form.get(name, "").strip()
            edits.setdefault(section, {})[key] = posted
    return edits


def _changed(edits: Overrides, loaded: str) -> Overrides:
    """Only the keys the owner changed from what the page showed: a page opened before another
    owner's save must not put the old values back."""
    try:
        before = json.loads(loaded)
    except ValueError:
        before = {}
    before = before if isinstance(before, dict) else {}
    changed: Overrides = {}
    for section, values in edits.items():
        for key, value in values.items():
            if before.get(section, {}).get(key, object()) != value:
                changed.setdefault(section, {})[key] = value
    return changed


def _file_value(base: Config, section: str, key: str) -> str:
    """What the file says, as a person reads it: a list as its items, nothing as "nothing"."""
    value = raw_value(base, section, key)
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if isinstance(value, list):
        value = ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        value = ", ".join(f"{name} = {item}" for name, item in value.items())
    return str(value) if value not in ("", None) else str(_("nothing"))


@blueprint.route("/settings", methods=["GET", "POST"])
def settings_page() -> BaseResponse | str | tuple[str, int]:
    live, session = services().settings, db_session()
    current = apply(live.base, load_overrides(session))  # this moment's, not a cached copy
    form, problems, values = FlaskForm(), {}, None  # the CSRF token; the fields: EDITABLE
    shown = {s: {k: raw_value(current, s, k) for k in keys} for s, keys in EDITABLE.items()}
    loaded = json.dumps(shown)
    if form.validate_on_submit():
        edits = edits_from(request.form, current)
        loaded = request.form.get("loaded", "")
        try:
            save(session, live.base, _changed(edits, loaded), actor=my_name(), now=utcnow())
        except SettingsError as error:
            problems, values = error.problems, edits
        else:
            session.commit()
            live.forget()
            flash(_("Settings saved. Every process follows them within seconds."))
            return redirect(url_for("admin.settings_page"))
    page = render_template(
        "admin/settings.html",
        form=form,
        editable=EDITABLE,
        shown=values or shown,
        problems=problems,
        labels=LABELS,
        sections=SECTIONS,
        keyword_choices=KEYWORD_CHOICES,
        weekdays=WEEKDAYS,
        overridden=load_overrides(session),
        base=live.base,
        file_value=_file_value,
        loaded=loaded,
        told=recipients(session, current),
    )
    return (page, 422) if problems else page
