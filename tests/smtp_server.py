"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, or refuses as told,
and the email transport aimed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from scheduler.config import defaults
from scheduler.lifecycle import Channel
from scheduler.sending.transports import Outgoing
from scheduler.sending.transports.smtp_email import SmtpEmail
from tests.processes import free_port


class Mailbox:
    """An aiosmtpd handler that keeps what it receives, or refuses as told."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.refuse_rcpt: str | None = None
        self.refuse_data: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:  # noqa: E501, N802
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse_data:
            return self.refuse_data
        self.received.append(envelope)
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    port = free_port()
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def smtp_transport(port: int) -> SmtpEmail:
    config = defaults().replace(
        email={
            "transport": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "starttls": False,
            "from_address": "hola@mitienda.pe",
        }
    )
    return SmtpEmail(config.email, 5.0)


EMAIL = Outgoing(
    "follow-up:9",
    Channel.EMAIL,
    "rosa@example.pe",
    "Hola Rosa\n\nTodo bien?",
    "Tu compra",
    "<p>Hola Rosa</p>",
    {
        "List-Unsubscribe": "<http://x/unsubscribe/t>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
)
