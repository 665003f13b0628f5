"""Saved answers in the admin: owners and staff list, add, change and delete them; each
change is audited. Inserting one into a case's reply box is the inbox's (`inbox.draft`)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from scheduler.casework.saved_answers import check_answer, delete_answer, save_answer
from scheduler.casework.staff_actions import CaseworkError
from scheduler.clock import utcnow
from scheduler.config import LOCALES
from scheduler.models import SavedAnswer, User
from web.auth import me, my_name
from web.database import db_session, get_or_404, services
from web.domain_texts import translated

blueprint = Blueprint("answers", __name__)
FIELDS = ("title", "locale", "body")


@blueprint.get("/answers")
def index() -> str:
    session = db_session()
    answers = session.scalars(
        select(SavedAnswer).order_by(SavedAnswer.locale, SavedAnswer.title)
    ).all()
    return render_template(
        "answers/index.html",
        answers=answers,
        users={user.id: user.email for user in session.scalars(select(User))},
        delete=FlaskForm(),
    )


@blueprint.route("/answers/new", methods=["GET", "POST"])
def new() -> BaseResponse | str | tuple[str, int]:
    return _edit(None)


@blueprint.route("/answers/<int:answer_id>", methods=["GET", "POST"])
def edit(answer_id: int) -> BaseResponse | str | tuple[str, int]:
    return _edit(get_or_404(SavedAnswer, answer_id, lock=request.method == "POST"))


def _edit(answer: SavedAnswer | None) -> BaseResponse | str | tuple[str, int]:
    """The answer's form; saved when its text renders for a made-up customer, else shown
    again with what was typed and each problem beside its field."""
    form = FlaskForm()
    if not form.validate_on_submit():
        values = {
            "title": answer.title if answer else "",
            "locale": answer.locale if answer else services().config.business.locale,
            "body": answer.body if answer else "",
        }
        return _form(answer, form, values, {})
    values = {name: request.form.get(name, "") for name in FIELDS}
    config, now, session = services().config, utcnow(), db_session()
    checked = check_answer(*(values[name] for name in FIELDS), config=config, now=now)
    problems = checked if isinstance(checked, list) else []
    if not isinstance(checked, list):
        try:
            save_answer(session, checked, answer=answer, user_id=me().id, now=now, actor=my_name())
        except CaseworkError as error:
            problems = [("title", str(error))]
        else:
            session.commit()
            flash(_("Saved answer “%(title)s” kept.", title=checked.title))
            return redirect(url_for("answers.index"))
    by_field: dict[str, list[str]] = {}
    for field, message in problems:
        by_field.setdefault(field, []).append(translated(message))
    return _form(answer, form, values, by_field), 422


def _form(
    answer: SavedAnswer | None,
    form: FlaskForm,
    values: dict[str, str],
    problems: dict[str, list[str]],
) -> str:
    return render_template(
        "answers/edit.html",
        answer=answer,
        form=form,
        values=values,
        problems=problems,
        locales=LOCALES,
    )


@blueprint.post("/answers/<int:answer_id>/delete")
def delete(answer_id: int) -> BaseResponse:
    """Delete an answer (the form's CSRF token is checked for every POST, by CSRFProtect)."""
    answer = get_or_404(SavedAnswer, answer_id, lock=True)
    session = db_session()
    delete_answer(session, answer, now=utcnow(), actor=my_name())
    session.commit()
    flash(_("Saved answer “%(title)s” deleted.", title=answer.title))
    return redirect(url_for("answers.index"))
