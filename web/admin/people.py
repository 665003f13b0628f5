"""Who may log in (users) and what may call the API (tokens)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired

from scheduler.accounts import (
    AccountError,
    add_user,
    change_user,
    create_api_token,
    revoke_api_token,
    set_password,
)
from scheduler.clock import utcnow
from scheduler.lifecycle import Role
from scheduler.models import ApiToken, User
from web.admin import blueprint
from web.auth import LANGUAGES, me, my_name, my_session
from web.database import db_session, get_or_404
from web.domain_texts import translated
from web.forms import named_options, options

ROLES = named_options([Role.STAFF, Role.OWNER])


class NewUserForm(FlaskForm):  # type: ignore[misc]
    email = EmailField("email", validators=[DataRequired()])
    role = SelectField("role", choices=ROLES)
    locale = SelectField("locale", choices=options(LANGUAGES))
    password = PasswordField("password", validators=[DataRequired()])


class ChangeUserForm(FlaskForm):  # type: ignore[misc]
    role = SelectField("role", choices=ROLES)
    active = SelectField("active", choices=options([("yes", "yes"), ("no", "no")]))
    password = PasswordField("password")


class TokenForm(FlaskForm):  # type: ignore[misc]
    name = StringField("name")


@blueprint.route("/users", methods=["GET", "POST"])
def users() -> BaseResponse | str | tuple[str, int]:
    session, form, error = db_session(), NewUserForm(), None
    if form.validate_on_submit():
        try:
            user = add_user(
                session,
                email=form.email.data,
                role=Role(form.role.data),
                password=form.password.data,
                now=utcnow(),
                actor=my_name(),
            )
            user.locale = form.locale.data
            session.commit()
        except AccountError as problem:
            session.rollback()
            error = translated(problem)
        else:
            flash(
                _("%(email)s can log in now. Give them the password in person.", email=user.email)
            )
            return redirect(url_for("admin.users"))
    rows = session.scalars(select(User).order_by(User.role, User.email)).all()
    page = render_template(
        "admin/users.html", users=rows, form=form, change=ChangeUserForm(), error=error
    )
    return (page, 422) if error else page


@blueprint.post("/users/<int:user_id>")
def change(user_id: int) -> BaseResponse:
    session, user = db_session(), get_or_404(User, user_id)
    form = ChangeUserForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        change_user(
            session,
            user,
            role=Role(form.role.data),
            active=form.active.data == "yes",
            now=utcnow(),
            actor=my_name(),
            by=me(),
        )
        if form.password.data:
            mine = my_session() if user.id == me().id else None  # I stay logged in
            password, actor = form.password.data, my_name()
            set_password(session, user, password, now=utcnow(), actor=actor, keep=mine)
        session.commit()
        flash(_("%(email)s changed.", email=user.email))
    except AccountError as problem:
        session.rollback()
        flash(translated(problem), "error")
    return redirect(url_for("admin.users"))


@blueprint.route("/tokens", methods=["GET", "POST"])
def tokens() -> str | tuple[str, int]:
    session, form, secret = db_session(), TokenForm(), None
    if form.validate_on_submit():
        try:
            secret = create_api_token(
                session, name=form.name.data or "", now=utcnow(), actor=my_name()
            )
            session.commit()
        except AccountError as problem:
            flash(translated(problem), "error")
    rows = session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc())).all()
    return render_template(
        "admin/tokens.html", tokens=rows, form=form, secret=secret, revoke=TokenForm(name="-")
    )


@blueprint.post("/tokens/<int:token_id>/revoke")
def revoke(token_id: int) -> BaseResponse:
    session, token = db_session(), get_or_404(ApiToken, token_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    revoke_api_token(session, token, now=utcnow(), actor=my_name())
    session.commit()
    flash(_("Token %(name)s revoked: it no longer works.", name=token.name))
    return redirect(url_for("admin.tokens"))
