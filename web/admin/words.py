"""The owner's own words for reading replies and for the themes of complaints, and a box to
try a reply against them."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectChoice, SelectField, StringField

from scheduler.clock import utcnow
from scheduler.listening.classify import classify
from scheduler.listening.owner_words import (
    EXTENSIBLE,
    VocabularyError,
    add_word,
    owner_lexicon,
    remove_word,
)
from scheduler.listening.themes import Theme, themes_of, vocabulary
from scheduler.models import LexiconWord
from web.admin import blueprint
from web.auth import my_name
from web.database import db_session, get_or_404
from web.domain_texts import NAMES, translated
from web.forms import named_options


class WordForm(FlaskForm):  # type: ignore[misc]
    label = SelectField(
        "label",
        choices=[
            *named_options(EXTENSIBLE),
            *(
                SelectChoice(
                    theme.value, _l("complaint about: %(theme)s", theme=NAMES["Theme"][theme])
                )
                for theme in Theme
            ),
        ],
    )
    word = StringField("word")


@blueprint.route("/words", methods=["GET", "POST"])
def words() -> BaseResponse | str:
    session, form = db_session(), WordForm()
    if form.validate_on_submit():
        try:
            add_word(session, form.label.data, form.word.data or "", now=utcnow(), actor=my_name())
            session.commit()
            flash(_("Added: replies are read with it from now on."))
        except VocabularyError as error:
            session.rollback()
            flash(translated(error), "error")
        return redirect(url_for("admin.words"))
    if request.method == "POST":
        problems = [f"{name}: {'; '.join(errors)}" for name, errors in form.errors.items()]
        flash("; ".join(problems), "error")
    trial = request.args.get("try", "").strip()
    reading = classify(trial, owner_lexicon(session)) if trial else None
    themes = themes_of(trial, vocabulary(session)) if trial else []
    rows = session.scalars(select(LexiconWord).order_by(LexiconWord.label, LexiconWord.word)).all()
    return render_template(
        "admin/words.html",
        form=form,
        rows=rows,
        trial=trial,
        reading=reading,
        themes=themes,
        theme_labels=[theme.value for theme in Theme],
        remove=FlaskForm(),
    )


@blueprint.post("/words/<int:word_id>/remove")
def remove(word_id: int) -> BaseResponse:
    session, row = db_session(), get_or_404(LexiconWord, word_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    remove_word(session, row, now=utcnow(), actor=my_name())
    session.commit()
    flash(_("Removed."))
    return redirect(url_for("admin.words"))
