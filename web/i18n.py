"""The admin's language: the user's own choice, else the browser's, else the business's."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import Babel, get_locale
from flask_login import current_user

from web import domain_texts
from web.database import services

LOCALES = ("es", "en")


def _locale() -> str:
    if current_user.is_authenticated and current_user.user.locale in LOCALES:
        return str(current_user.user.locale)
    chosen = request.accept_languages.best_match(LOCALES)
    return chosen or services().config.business.locale


def _timezone() -> str:
    """Times in the admin are shown in the business's time zone."""
    return services().config.business.timezone


def init_i18n(app: Flask) -> None:
    Babel(app, locale_selector=_locale, timezone_selector=_timezone)
    app.jinja_env.globals["get_locale"] = get_locale
    # What the domain wrote, shown in the reader's language: `status | named`,
    # `case.reason | named("Label")`, `follow_up.status_reason | translated`, `"mon" | weekday`.
    app.jinja_env.filters.update(
        named=domain_texts.named,
        translated=domain_texts.translated,
        weekday=domain_texts.weekday,
        theme_name=domain_texts.theme_name,
        why=domain_texts.why,
    )
