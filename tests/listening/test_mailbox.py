"""Fetching new mail from a real IMAP server (Dovecot on 127.0.0.1): in UID order, each mail once
across fetches and restarts, a changed UIDVALIDITY read again, nothing marked as read, and
errors a shop owner can act on."""

from __future__ import annotations

import itertools
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.listening.mail_reading import read_mail
from scheduler.listening.mailbox import Mailbox, MailboxError, MailboxState, Security
from tests.imap_server import ACCENTED_PASSWORD, HOST, OTHER_USER, Dovecot, dovecot, quoted
from tests.processes import free_port

__all__ = ["dovecot"]

MAIL = sorted((Path(__file__).parent.parent / "data" / "mail").glob("*.eml"))
_folders = itertools.count(1)


@pytest.fixture
def folder(dovecot: Dovecot) -> str:
    """An empty folder of its own for each test (they share one server)."""
    name = f"Respuestas-{next(_folders)}"
    dovecot.create_folder(name)
    return name


def deliver_all(dovecot: Dovecot, folder: str) -> list[tuple[int, bytes]]:
    return [(dovecot.deliver(path.read_bytes(), folder), path.read_bytes()) for path in MAIL]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_new_mail_comes_in_uid_order_with_its_uids(
    dovecot: Dovecot, folder: str, security: Security
) -> None:
    delivered = deliver_all(dovecot, folder)
    mails, state = dovecot.mailbox(security, folder=folder).fetch_new(None, 100)
    assert mails == delivered
    assert [uid for uid, _ in mails] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert state.last_uid == 8
    assert read_mail(mails[0][1]).sender == "rosa.perez@example.pe"


def test_a_second_fetch_returns_nothing_then_only_what_is_new(
    dovecot: Dovecot, folder: str
) -> None:
    mailbox = dovecot.mailbox(folder=folder)
    deliver_all(dovecot, folder)
    _, state = mailbox.fetch_new(None, 100)
    assert mailbox.fetch_new(state, 100) == ([], state)
    new = b"From: rosa@example.pe\r\nMessage-ID: <new@example.pe>\r\n\r\nOtra cosa\r\n"
    uid = dovecot.deliver(new, folder)
    assert mailbox.fetch_new(state, 100) == ([(uid, new)], MailboxState(state.uidvalidity, uid))


def test_the_limit_is_kept_and_the_rest_comes_next_time(dovecot: Dovecot, folder: str) -> None:
    delivered = deliver_all(dovecot, folder)
    mailbox = dovecot.mailbox(folder=folder)
    first, state = mailbox.fetch_new(None, 3)
    second, state = mailbox.fetch_new(state, 3)
    third, state = mailbox.fetch_new(state, 3)
    assert (first, second, third) == (delivered[:3], delivered[3:6], delivered[6:])
    assert mailbox.fetch_new(state, 3) == ([], state)
    with pytest.raises(ValueError, match="limit must be at least 1"):
        mailbox.fetch_new(state, 0)


def test_a_restart_with_the_stored_state_neither_skips_nor_repeats(
    dovecot: Dovecot, folder: str
) -> None:
    delivered = deliver_all(dovecot, folder)
    before, stored = dovecot.mailbox(folder=folder).fetch_new(None, 5)
    stored = MailboxState(stored.uidvalidity, stored.last_uid)  # as read back from storage
    after, _ = dovecot.mailbox("starttls", folder=folder).fetch_new(stored, 100)
    assert before + after == delivered


def test_a_new_uidvalidity_reads_the_folder_again(dovecot: Dovecot, folder: str) -> None:
    deliver_all(dovecot, folder)
    mailbox = dovecot.mailbox(folder=folder)
    _, state = mailbox.fetch_new(None, 100)
    dovecot.delete_folder(folder)  # replaced, as a restored backup or a new server would be
    dovecot.create_folder(folder)
    again = (MAIL[0].read_bytes(), MAIL[1].read_bytes())
    for raw in again:
        dovecot.deliver(raw, folder)
    mails, new_state = mailbox.fetch_new(state, 100)
    assert mails == [(1, again[0]), (2, again[1])]  # UIDs 1 and 2, below the old last UID 8
    assert new_state.uidvalidity != state.uidvalidity
    assert new_state.last_uid == 2


def test_mail_stays_unread_for_the_shops_people(dovecot: Dovecot, folder: str) -> None:
    deliver_all(dovecot, folder)
    dovecot.mailbox(folder=folder).fetch_new(None, 100)
    with dovecot.admin() as imap:
        imap.select(quoted(folder), readonly=True)
        kind, unseen = imap.search(None, "UNSEEN")
    assert kind == "OK"
    assert unseen[0].split() == [str(n).encode() for n in range(1, 9)]


def test_an_empty_folder_gives_nothing_and_a_state_to_keep(dovecot: Dovecot, folder: str) -> None:
    mails, state = dovecot.mailbox(folder=folder).fetch_new(None, 10)
    assert mails == []
    assert state.last_uid == 0 and state.uidvalidity > 0


def test_a_folder_named_with_accents(dovecot: Dovecot) -> None:
    dovecot.create_folder("Atenci&APM-n al cliente")  # "Atención al cliente" as IMAP spells it
    uid = dovecot.deliver(MAIL[2].read_bytes(), "Atenci&APM-n al cliente")
    mails, _ = dovecot.mailbox(folder="Atención al cliente").fetch_new(None, 10)
    assert mails == [(uid, MAIL[2].read_bytes())]


def test_a_password_with_accents_logs_in(dovecot: Dovecot) -> None:
    mailbox = dovecot.mailbox(username=OTHER_USER, password=ACCENTED_PASSWORD)
    assert mailbox.fetch_new(None, 10)[0] == []


def test_a_wrong_password_is_named(dovecot: Dovecot) -> None:
    with pytest.raises(MailboxError, match="refused user 'respuestas@mitienda.pe' and its pass"):
        dovecot.mailbox(password="not the password").fetch_new(None, 10)


def test_a_missing_folder_is_named(dovecot: Dovecot) -> None:
    with pytest.raises(MailboxError, match="folder 'Archivo' cannot be opened .*exist"):
        dovecot.mailbox(folder="Archivo").fetch_new(None, 10)


def test_a_certificate_nobody_vouches_for_is_refused(dovecot: Dovecot) -> None:
    with pytest.raises(MailboxError, match="TLS certificate is not trusted .*self.signed"):
        dovecot.mailbox(ssl_context=ssl.create_default_context()).fetch_new(None, 10)
    with pytest.raises(MailboxError, match="TLS certificate is not trusted"):
        dovecot.mailbox("starttls", ssl_context=ssl.create_default_context()).fetch_new(None, 1)


def test_ssl_on_the_starttls_port_says_which_port_is_which(dovecot: Dovecot) -> None:
    with pytest.raises(MailboxError, match=r"TLS failed .*: is the port for ssl \(usually 993\)"):
        dovecot.mailbox("ssl", port=dovecot.imap_port).fetch_new(None, 10)


def test_nobody_listening_is_a_refused_connection() -> None:
    mailbox = Mailbox(HOST, free_port(), security="ssl", username="u", password="p", timeout=5)
    with pytest.raises(MailboxError, match=r"IMAP 127\.0\.0\.1:\d+: connection refused"):
        mailbox.fetch_new(None, 10)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.create_server((HOST, 0)) as server:
        accepted: list[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
        thread.start()
        yield server.getsockname()[1]
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()


def test_a_server_that_does_not_answer_times_out(silent_server: int) -> None:
    mailbox = Mailbox(
        HOST, silent_server, security="starttls", username="u", password="p", timeout=0.3
    )
    with pytest.raises(MailboxError, match=r"no answer within 0\.3 s"):
        mailbox.fetch_new(None, 10)


class OddServer:
    """An IMAP server of a few lines on 127.0.0.1, with Dovecot's certificate, that answers as
    some servers do and Dovecot does not: the UID after the message, or an unreadable
    UIDVALIDITY."""

    def __init__(self, dovecot: Dovecot, uidvalidity: str) -> None:
        self.uidvalidity = uidvalidity
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(dovecot.certificate, dovecot.directory / "key.pem")
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        connection = self.listener.accept()[0]
        with self.listener, self.context.wrap_socket(connection, server_side=True) as client:
            client.sendall(b"* OK ready\r\n")
            for line in client.makefile("rb"):
                tag, command = line.split(b" ", 1)
                client.sendall(self.answer(command.upper()) + tag + b" OK done\r\n")
                if command.upper().startswith(b"LOGOUT"):
                    return

    def answer(self, command: bytes) -> bytes:
        if command.startswith(b"CAPABILITY"):
            return b"* CAPABILITY IMAP4rev1\r\n"
        if command.startswith(b"EXAMINE"):
            return b"* 2 EXISTS\r\n* OK [UIDVALIDITY %s] ok\r\n" % self.uidvalidity.encode()
        if command.endswith(b"(UID)\r\n"):
            return b"* 1 FETCH (UID 7)\r\n* 2 FETCH (UID 9)\r\n"
        if command.endswith(b"(BODY.PEEK[])\r\n"):
            return (
                b"* 1 FETCH (BODY[] {5}\r\nfirst UID 7)\r\n"
                b"* 2 FETCH (BODY[] {6}\r\nsecond UID 9)\r\n"
            )
        return b""


def test_a_uid_that_comes_after_the_message_is_read(dovecot: Dovecot) -> None:
    server = OddServer(dovecot, uidvalidity="42")
    mailbox = dovecot.mailbox(port=server.port)
    assert mailbox.fetch_new(None, 10) == ([(7, b"first"), (9, b"second")], MailboxState(42, 9))
    server.thread.join(timeout=5)


def test_an_unreadable_answer_is_a_mailbox_error(dovecot: Dovecot) -> None:
    server = OddServer(dovecot, uidvalidity="soon")
    with pytest.raises(MailboxError, match="the server's answer cannot be read"):
        dovecot.mailbox(port=server.port).fetch_new(None, 10)
    server.thread.join(timeout=5)
