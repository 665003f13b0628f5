"""Logging in: owners and staff, the first owner's set-up, and who may open which page.

Every page is behind the log-in unless its blueprint is listed in `PUBLIC` (the webhooks,
the API with its own tokens, the health check, unsubscribe links, static files): a new page is
protected by default. Until an owner exists, every page leads to the one-time set-up.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, EmailField, PasswordField, SelectField
from wtforms.validators import DataRequired, EqualTo, Length

from scheduler import audit
from scheduler.accounts import (
    AccountError,
    add_user,
    authenticate,
    change_own_password,
    change_user,
    end_session,
    find_session,
    has_owner,
    open_session,
    seen,
)
from scheduler.clock import utcnow
from scheduler.lifecycle import Role
from scheduler.models import User
from web.database import db_session
from web.domain_texts import translated
from web.forms import options

blueprint = Blueprint("auth", __name__)
PUBLIC = {"auth", "webhooks", "shop_webhooks", "api", "health", "metrics", "unsubscribe"}
LANGUAGES = [("es", "Español"), ("en", "English")]
F = TypeVar("F", bound=Callable[..., Any])


class Account(UserMixin):  # type: ignore[misc]
    """The logged-in user as Flask-Login sees it; `user` is the row, loaded per request."""

    def __init__(self, user: User, token: str) -> None:
        self.user = user
        self.id = user.id
        self.token = token

    def get_id(self) -> str:
        """The log-in session's random token, which the cookie carries: the session ends on the
        server (log-out, new password, user disabled), so a copied cookie opens nothing after."""
        return self.token

    @property
    def is_active(self) -> bool:
        return self.user.active

    @property
    def is_owner(self) -> bool:
        return self.user.role is Role.OWNER


def _load(token: str) -> Account | None:
    session = db_session()
    found = find_session(session, token)
    if found is None:
        return None
    g.login_session, user = found
    return Account(user, token)


def _log_in(user: User) -> None:
    """Open a log-in session for `user` in this browser; the caller has committed the log-in."""
    session = db_session()
    token = open_session(session, user, now=utcnow())
    session.commit()
    login_user(Account(user, token))


def me() -> User:
    """The logged-in user's row (pages behind the log-in only)."""
    user: User = current_user.user
    return user


def my_session() -> str:
    """The token of this browser's log-in session (pages behind the log-in only)."""
    token: str = current_user.token
    return token


def my_name() -> str:
    """Who the audit log says did it."""
    return audit.by_user(me().id)


def init_auth(app: Flask) -> None:
    manager = LoginManager(app)
    manager.user_loader(_load)
    manager.login_view = "auth.login"
    manager.login_message = ""  # the log-in page says enough
    manager.session_protection = "strong"
    app.before_request(_guard)


def _guard() -> BaseResponse | None:
    """Send visitors to the set-up (no owner yet) or to the log-in page."""
    if request.blueprint in PUBLIC or request.endpoint in (None, "static"):
        return None
    if not _owner_exists():
        return redirect(url_for("auth.setup"))
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if seen(g.login_session, utcnow()):  # before the page: nothing else is pending yet
        db_session().commit()
    return None


def _owner_exists() -> bool:
    # Once an owner exists one always will (the last one cannot be removed): ask the database
    # only until then.
    if current_app.extensions.get("postventa_has_owner"):
        return True
    found = has_owner(db_session())
    current_app.extensions["postventa_has_owner"] = found
    return found


def owner_only(view: F) -> F:
    """For pages that change cadences, templates, settings, users or tokens."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated or not current_user.is_owner:
            abort(403)
        return view(*args, **kwargs)

    return checked  # type: ignore[return-value]


class LoginForm(FlaskForm):  # type: ignore[misc]
    email = EmailField("email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("password", validators=[DataRequired(), Length(max=1024)])


class SetupForm(FlaskForm):  # type: ignore[misc]
    email = EmailField(
        "email",
        validators=[
            DataRequired(_l("Write the owner's email.")),
            Length(max=254, message=_l("An email address has at most 254 characters.")),
        ],
    )
    password = PasswordField(
        "password",
        validators=[
            DataRequired(_l("Choose a password.")),
            Length(max=1024),  # its length is the domain's rule (add_user); this bounds the hash
        ],
    )
    confirm = PasswordField(
        "confirm", validators=[EqualTo("password", _l("The two passwords are not the same."))]
    )
    locale = SelectField("locale", choices=options(LANGUAGES))


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would make the log-in page a phishing aid."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    if "\\" in target or not target.isprintable() or urlsplit(target).netloc:
        return url_for("home.index")
    return target


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | str | tuple[str, int]:
    if not _owner_exists():
        return redirect(url_for("auth.setup"))
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form)
    session, now = db_session(), utcnow()
    address, password = request.remote_addr or "?", form.password.data
    user, wait = authenticate(
        session, email=form.email.data, address=address, password=password, now=now
    )
    session.commit()
    if wait:
        message = _("Too many failed log-ins. Try again in %(seconds)d s.", seconds=wait)
        return render_template("auth/login.html", form=form, error=message), 429
    if user is None:
        error = _("Wrong email or password.")
        return render_template("auth/login.html", form=form, error=error), 401
    _log_in(user)
    return redirect(_safe_next(request.args.get("next")))


@blueprint.post("/logout")
def logout() -> BaseResponse:
    """End this browser's session on the server too: a copy of its cookie opens nothing."""
    if current_user.is_authenticated:
        session = db_session()
        end_session(session, current_user.token, now=utcnow())
        session.commit()
    logout_user()
    return redirect(url_for("auth.login"))


@blueprint.route("/setup", methods=["GET", "POST"])
def setup() -> BaseResponse | str | tuple[str, int]:
    """The first owner, once: afterwards this page does not exist."""
    if _owner_exists():
        abort(404)
    form = SetupForm()
    if not form.validate_on_submit():
        return render_template("auth/setup.html", form=form)
    session, now = db_session(), utcnow()
    try:
        user = add_user(
            session,
            email=form.email.data,
            role=Role.OWNER,
            password=form.password.data,
            now=now,
            actor="setup",
        )
    except AccountError as error:
        return render_template("auth/setup.html", form=form, error=translated(error)), 422
    user.locale = form.locale.data
    session.commit()
    _log_in(user)
    flash(_("Welcome. You are the owner of this Postventa."))
    return redirect(url_for("home.index"))


class AccountForm(FlaskForm):  # type: ignore[misc]
    locale = SelectField("locale", choices=options(LANGUAGES))
    notify_cases = BooleanField("notify_cases")
    current = PasswordField("current")
    new = PasswordField("new")


@blueprint.route("/account", methods=["GET", "POST"])
def account() -> BaseResponse | str | tuple[str, int]:
    """Each person's own language and password."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next="/account"))
    user, session, now = me(), db_session(), utcnow()
    form = AccountForm(locale=user.locale, notify_cases=user.notify_cases)
    if not form.validate_on_submit():
        return render_template("auth/account.html", form=form)
    try:
        if form.new.data:  # this session goes on; the others, opened with the old one, end
            change_own_password(
                session,
                user,
                current=form.current.data or "",
                new=form.new.data,
                now=now,
                actor=my_name(),
                keep=my_session(),
            )
        told = form.notify_cases.data if current_user.is_owner else None  # only owners choose
        change_user(
            session, user, locale=form.locale.data, notify_cases=told, now=now, actor=my_name()
        )
    except AccountError as error:
        session.rollback()
        return render_template("auth/account.html", form=form, error=translated(error)), 422
    session.commit()
    flash(_("Saved."))
    return redirect(url_for("auth.account"))
