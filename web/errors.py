"""Error pages for people: in the reader's language, inside the app's layout, with a way on.

Machines keep their own answers: the JSON API answers `{"errors": [...]}` (web/api.py), and an
error that already carries its response (the webhooks' plain-text refusals to Twilio) is sent
as it is.
"""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from web import api

log = logging.getLogger(__name__)

PAGES = {  # status: (title, what happened and what to do)
    400: (
        _l("The request could not be read"),
        _l("The page sent something this app cannot read. Go back, reload the page and try again."),
    ),
    404: (
        _l("Page not found"),
        _l(
            "There is nothing at this address: the link may be wrong, or what it showed was "
            "removed."
        ),
    ),
    405: (
        _l("Not possible at this address"),
        _l(
            "This address does not take that kind of request. Go back and use the buttons on "
            "the page."
        ),
    ),
    413: (_l("Too large"), _l("What was sent is larger than this app accepts.")),
    500: (
        _l("Something went wrong"),
        _l(
            "The error was logged. Try again in a moment; if it happens again, tell the owner "
            "of this Postventa."
        ),
    ),
}
EXPIRED = (
    _l("The form has expired"),
    _l(
        "The form could not be accepted: the page was open from an earlier log-in, or for too "
        "long. Go back, reload the page and send it again; what you wrote may need copying "
        "first."
    ),
)
OTHER = (_l("Something went wrong"), _l("The request could not be completed."))


def error_page(error: HTTPException) -> ResponseReturnValue | HTTPException:
    """The page for an HTTP error (404, 405, a refused CSRF token, 500...) raised outside the
    API; 403 is the page that says who may do what."""
    if error.response is not None:
        return error  # a response made on purpose, such as the webhooks' plain text
    if request.blueprint == "webhooks":
        return error  # Twilio reads the status; a page in the layout is for people
    if _under_api():
        return api.json_error(error)
    status = error.code or 500
    if status == 403:
        return render_template("forbidden.html"), 403
    title, text = EXPIRED if isinstance(error, CSRFError) else PAGES.get(status, OTHER)
    allow = [(name, value) for name, value in error.get_headers() if name == "Allow"]  # a 405's
    try:
        page = render_template("error.html", title=title, text=text, status=status)
    except Exception:  # noqa: BLE001 - the database may be what failed: say so plainly
        log.exception("the error page for %d could not be shown", status)
        page = f"{status} {error.name}"
    return page, status, allow


def _under_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def init_errors(app: Flask) -> None:
    # Every HTTP error, and an unexpected exception as a 500: Flask turns it into an
    # InternalServerError, which this handler shows (the exception itself is logged by Flask).
    app.register_error_handler(HTTPException, error_page)
