"""Templates: the list, and the editor with a preview on sample data (live with JavaScript, on
the Preview button without), the SMS size, the variables, errors at their line, and reset."""

from __future__ import annotations

from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from scheduler.clock import utcnow
from scheduler.models import MessageTemplate
from scheduler.sending.sandbox import TemplateSource
from scheduler.sending.template_editing import (
    VARIABLES,
    Preview,
    preview_as_sent,
    reset_template,
    save_template,
    shipped,
)
from web.admin import blueprint
from web.auth import my_name
from web.database import db_session, get_or_404, services


def _draft(row: MessageTemplate) -> TemplateSource:
    subject = request.form.get("subject") if row.channel == "email" else None
    body = request.form.get("body", "").replace("\r\n", "\n")
    return TemplateSource(row.name, row.channel, row.locale, body, subject, row.html_body)


def _as_json(result: Preview) -> dict[str, Any]:
    rendered = result.rendered
    return {
        "error": result.error,
        "line": result.line,
        "text": rendered.text if rendered else None,
        "subject": rendered.subject if rendered else None,
        "segments": result.size.segments if result.size else None,
        "encoding": result.size.encoding if result.size else None,
        "unsupported": result.size.unsupported if result.size else None,
    }


@blueprint.get("/templates")
def templates() -> str:
    rows = (
        db_session()
        .scalars(
            select(MessageTemplate).order_by(
                MessageTemplate.name, MessageTemplate.channel, MessageTemplate.locale
            )
        )
        .all()
    )
    edited = {row.id for row in rows if shipped(row) not in (None, (row.subject, row.body))}
    return render_template("admin/templates.html", templates=rows, edited=edited)


@blueprint.route("/templates/<int:template_id>", methods=["GET", "POST"])
def template(template_id: int) -> BaseResponse | str | tuple[str, int]:
    row, session, form = get_or_404(MessageTemplate, template_id), db_session(), FlaskForm()
    if not form.validate_on_submit():
        source = TemplateSource(row.name, row.channel, row.locale, row.body, row.subject)
        return _page(row, source, _checked(source), form)
    action = request.form.get("action", "preview")
    if action == "reset":
        if reset_template(session, row, now=utcnow(), actor=my_name()):
            session.commit()
            flash(_("Back to the text Postventa ships."))
        else:
            flash(
                _("This template is not one Postventa ships: there is nothing to reset to."),
                "error",
            )
        return redirect(url_for("admin.template", template_id=row.id))
    draft = _draft(row)
    if action != "save":
        return _page(row, draft, _checked(draft), form)
    result = save_template(
        session,
        row,
        subject=draft.subject,
        body=draft.body,
        config=services().config,
        now=utcnow(),
        actor=my_name(),
    )
    if result.error:
        return _page(row, draft, result, form), 422
    session.commit()
    flash(_("Template saved: the next messages use it."))
    return redirect(url_for("admin.template", template_id=row.id))


@blueprint.post("/templates/<int:template_id>/preview")
def template_preview(template_id: int) -> BaseResponse:
    """The preview as JSON, for the editor's live pane (the CSRF token in X-CSRFToken)."""
    draft = _draft(get_or_404(MessageTemplate, template_id))
    return jsonify(_as_json(_checked(draft)))


def _checked(draft: TemplateSource) -> Preview:
    return preview_as_sent(db_session(), draft, services().config, utcnow())


def _page(row: MessageTemplate, draft: TemplateSource, result: Preview, form: FlaskForm) -> str:
    return render_template(
        "admin/template.html",
        row=row,
        draft=draft,
        result=result,
        form=form,
        variables=VARIABLES,
        has_default=shipped(row) is not None,
    )
