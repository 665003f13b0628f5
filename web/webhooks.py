"""Twilio's webhooks: replies by SMS and delivery reports, signed, stored once, answered in TwiML.

The signature is checked against `business.public_url` + path (+ query), the address Twilio was
given, never the one this app happens to see behind a proxy. A request that fails the check
changes nothing.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping

from flask import Blueprint, Response, abort, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.datastructures import MultiDict

from scheduler.addresses import WHATSAPP_PREFIX
from scheduler.clock import utcnow
from scheduler.config import Config
from scheduler.db import MAX_ID, wait_for_locks
from scheduler.lifecycle import Channel
from scheduler.listening.inbound import act_on_consent, store_sms
from scheduler.listening.keywords import read_consent
from scheduler.listening.reply_store import InboundMessage
from scheduler.sending.delivery import apply_status
from web.database import as_id, db_session, services

blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")
SMS = "/sms"  # replies' path under the blueprint's (served in front of Flask too)
BODY_LIMIT = 16 * 1024  # Twilio's own requests are a few hundred bytes
CONSENT_LOCK_SECONDS = 3  # well inside Twilio's 15 s: a webhook never hangs on a busy worker
log = logging.getLogger(__name__)


@blueprint.before_request
def _check() -> None:
    """Size first (413, before the body is read), then the signature (403)."""
    request.max_content_length = BODY_LIMIT
    if (request.content_length or 0) > BODY_LIMIT:
        abort(413)
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signed(services().config, request.path, request.query_string, request.form, signature):
        abort(Response("invalid or missing X-Twilio-Signature\n", 403, mimetype="text/plain"))


def signed(
    config: Config, path: str, query: bytes, form: Mapping[str, str], signature: str
) -> bool:
    """Whether Twilio signed this request: with the auth token, for the address it was given.
    That address as configured first (one HMAC); else the validator's own check, which tries
    it with and without its port."""
    url = config.business.base_url + path
    if query:
        url += "?" + query.decode("utf-8", "replace")
    token = config.twilio.auth_token
    if not signature or not token:
        return False
    validator = RequestValidator(token)
    expected = validator.compute_signature(url, form)
    same = hmac.compare_digest(expected.encode(), signature.encode())  # any text: 403, not 500
    return same or validator.validate(url, form, signature)


LIMITS = {
    "MessageSid": 100,
    "From": 254,
    "To": 254,
    "MessageStatus": 24,
    "ErrorCode": 16,
    "ButtonPayload": 256,
}


def problems(form: Mapping[str, str], *names: str) -> list[str]:
    """What is wrong with the form: a required field missing, a field longer than any Twilio
    sends."""
    missing = [name for name in names if not form.get(name)]
    too_long = [name for name, limit in LIMITS.items() if len(form.get(name, "")) > limit]
    found = [f"missing form field(s): {', '.join(missing)}"] if missing else []
    return found + [f"{name} is longer than {LIMITS[name]} characters" for name in too_long]


def _required(form: MultiDict[str, str], *names: str) -> list[str]:
    if found := problems(form, *names):
        abort(Response("\n".join(found) + "\n", 400, mimetype="text/plain"))
    return [_field(form, name) for name in names]


def _field(form: Mapping[str, str], name: str) -> str:
    """A form value as stored: PostgreSQL cannot keep a NUL, and nobody typed one."""
    return form.get(name, "").replace("\x00", "")


NOTHING = str(MessagingResponse())  # most replies get no answer: built once


def _twiml(reply: str | None) -> Response:
    if not reply:
        return Response(NOTHING, 200, mimetype="application/xml")
    answer = MessagingResponse()
    answer.message(reply)
    return Response(str(answer), 200, mimetype="application/xml")


REPLY_FIELDS = ("MessageSid", "From", "To")


@blueprint.post(SMS)
def inbound_sms() -> Response:
    form = request.form  # the request's proxy resolved once, not at each field
    _required(form, *REPLY_FIELDS)
    return _twiml(receive(db_session(), reply_of(form)))


def reply_of(form: Mapping[str, str]) -> InboundMessage:
    """A reply by SMS, or by WhatsApp (From "whatsapp:+..."; a quick-reply button's
    ButtonText arrives as the Body too, its ButtonPayload beside it), from a form whose
    `REPLY_FIELDS` are there."""
    sender = _field(form, "From")
    whatsapp = sender.startswith(WHATSAPP_PREFIX)
    return InboundMessage(
        _field(form, "MessageSid"),
        sender,
        _field(form, "To"),
        _field(form, "Body") or (_field(form, "ButtonText") if whatsapp else ""),
        channel=Channel.WHATSAPP if whatsapp else Channel.SMS,
        button_payload=(_field(form, "ButtonPayload") or None) if whatsapp else None,
    )


def receive(session: Session, sms: InboundMessage) -> str | None:
    """Store the reply in its own transaction, then act on a consent keyword without waiting
    long on a worker's lock (the worker applies it itself, seconds later); returns what to
    answer. The reply simulator goes through here too."""
    now = utcnow()
    stored = store_sms(session, sms, now=now)
    session.commit()  # kept, whatever happens next
    if not stored:
        return None  # Twilio's retry of a reply already stored (and acted on)
    if read_consent(sms.body) is None:
        return None  # most replies: the worker reads them, with no second transaction here
    try:
        wait_for_locks(session, CONSENT_LOCK_SECONDS)
        reply = act_on_consent(session, sms, config=services().config, now=now)
        session.commit()
    except OperationalError:  # a lock held too long: the worker's triage applies it
        session.rollback()
        log.warning("a consent keyword was left to the worker: its customer was locked")
        return None
    return reply


@blueprint.post("/status")
def delivery_status() -> Response:
    form = request.form
    provider_id, status = _required(form, "MessageSid", "MessageStatus")
    follow_up = request.args.get("follow_up", "")
    follow_up_id = as_id(follow_up)
    if follow_up and follow_up_id is None:  # this app puts a follow-up's id there, nothing else
        text = f"follow_up must be a follow-up id (a whole number up to {MAX_ID})\n"
        abort(Response(text, 400, mimetype="text/plain"))
    session = db_session()
    apply_status(
        session,
        provider_id=provider_id,
        status=status,
        error_code=form.get("ErrorCode") or None,
        follow_up_id=follow_up_id,
        now=utcnow(),
    )
    session.commit()
    return Response(status=204)
