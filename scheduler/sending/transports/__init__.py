"""Transports: one class per channel behind one interface (`base.Transport`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.lifecycle import Channel
from scheduler.sending.transports.base import Failure, Outgoing, Sent, Transport, TransportError
from scheduler.sending.transports.outbox import OutboxTransport
from scheduler.sending.transports.smtp_email import SmtpEmail
from scheduler.sending.transports.twilio_codes import reports_unsubscribed

__all__ = [
    "Failure",
    "Outgoing",
    "Sent",
    "Transport",
    "TransportError",
    "make_transports",
    "reports_unsubscribed",
]


def make_transports(
    config: Config, sessions: sessionmaker[Session], clock: Callable[[], datetime]
) -> dict[Channel, Transport]:
    """The transport the configuration names for each channel. Twilio's client is loaded only
    where a channel goes through it: `dispatch --once` on the outbox starts without it."""
    timeout = config.worker.send_timeout_seconds
    transports: dict[Channel, Transport] = {}
    if config.sms.transport == "twilio":
        from scheduler.sending.transports.twilio_sms import TwilioSms

        transports[Channel.SMS] = TwilioSms(config.twilio, config.business.base_url, timeout)
    else:
        transports[Channel.SMS] = OutboxTransport(Channel.SMS, sessions, clock)
    transports[Channel.EMAIL] = (
        SmtpEmail(config.email, timeout)
        if config.email.transport == "smtp"
        else OutboxTransport(Channel.EMAIL, sessions, clock)
    )
    whatsapp = config.whatsapp.transport
    if whatsapp == "twilio":
        from scheduler.sending.transports.twilio_sms import TwilioWhatsApp

        base_url = config.business.base_url
        transports[Channel.WHATSAPP] = TwilioWhatsApp(
            config.twilio, config.whatsapp, base_url, timeout
        )
    elif whatsapp == "outbox":
        transports[Channel.WHATSAPP] = OutboxTransport(Channel.WHATSAPP, sessions, clock)
    return transports
