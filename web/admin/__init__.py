"""The owner's pages: settings, users, API tokens, cadences and templates. Staff get 403."""

from __future__ import annotations

from flask import Blueprint, abort
from flask_login import current_user

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


@blueprint.before_request
def _owners_only() -> None:
    if not current_user.is_authenticated or not current_user.is_owner:
        abort(403)


from web.admin import (  # noqa: E402, F401
    audit_log,
    cadences,
    people,
    settings,
    shop_deliveries,
    templates,
    words,
    workers,
)
