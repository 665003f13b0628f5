"""Email through SMTP (`smtplib` + `email.message`), STARTTLS, with a one-click unsubscribe."""

from __future__ import annotations

import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from scheduler.config import EmailConfig
from scheduler.lifecycle import Channel
from scheduler.sending.transports.base import Failure, Outgoing, Sent, TransportError


def build_email(message: Outgoing, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2]  # the sender may be "Name <a@b.pe>"
    email["Message-ID"] = make_msgid(domain=domain or None)
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


class SmtpEmail:
    """A connection per message: simple, and a dropped connection can never eat a second one."""

    channel = Channel.EMAIL
    parallel = True

    def __init__(self, config: EmailConfig, timeout: float) -> None:
        self._config = config
        self._timeout = timeout
        self.sender = config.from_address
        self.max_per_second = config.max_per_second

    def _connect(self) -> smtplib.SMTP:
        config = self._config
        try:
            smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=self._timeout)
        except (OSError, smtplib.SMTPException) as error:  # nothing was handed over yet
            raise TransportError(f"SMTP connection: {error}", failure=Failure.RETRY) from error
        try:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.smtp_user:
                smtp.login(config.smtp_user, config.smtp_password)
        except (OSError, smtplib.SMTPException) as error:
            smtp.close()
            raise TransportError(f"SMTP connection: {error}", failure=Failure.RETRY) from error
        return smtp

    def send(self, message: Outgoing) -> Sent:
        try:
            email = build_email(message, self.sender)
        except (ValueError, UnicodeError) as error:  # a header no server would take
            raise TransportError(
                f"cannot build the email: {error}", failure=Failure.PERMANENT
            ) from error
        smtp = self._connect()
        try:
            smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as error:
            codes = sorted(code for code, _ in error.recipients.values())
            code = codes[0] if codes else 550
            raise TransportError(
                f"recipient refused: {error.recipients}",
                failure=Failure.PERMANENT if code >= 500 else Failure.RETRY,  # 4xx: greylisting
                code=str(code),
            ) from error
        except smtplib.SMTPSenderRefused as error:  # our account or from_address: fix and retry
            raise TransportError(
                f"sender refused: {error.smtp_error!r}",
                failure=Failure.RETRY,
                code=str(error.smtp_code),
            ) from error
        except smtplib.SMTPResponseException as error:
            failure = Failure.PERMANENT if error.smtp_code >= 500 else Failure.RETRY
            detail = error.smtp_error
            if isinstance(detail, bytes):
                detail = detail.decode(errors="replace")
            raise TransportError(detail, failure=failure, code=str(error.smtp_code)) from error
        except (OSError, smtplib.SMTPException) as error:  # cut off mid-transfer
            raise TransportError(f"SMTP: {error}", failure=Failure.UNCERTAIN) from error
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return Sent(str(email["Message-ID"]), "sent")

    def find(self, message: Outgoing, since: datetime) -> Sent | None:
        raise TransportError(
            "SMTP cannot tell whether a message was delivered before the connection dropped",
            failure=Failure.UNCERTAIN,
        )
