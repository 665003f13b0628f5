"""Workers killed while they read the shop's mailbox: real `postventa worker` processes reading
a real IMAP server (Dovecot on 127.0.0.1), SIGKILL at random moments, on SQLite and PostgreSQL.
Every mail is stored once: none lost, none twice, and the folder's cursor ends at its last UID.
"""

from __future__ import annotations

import random
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from scheduler.config import defaults
from scheduler.lifecycle import Channel, Direction
from scheduler.models import MailboxCursor, Message
from tests.conftest import REPORT
from tests.dispatching import setup_sales
from tests.imap_server import HOST, PASSWORD, USER, Dovecot, dovecot, quoted
from tests.processes import Workers, process_config, wait_for

__all__ = ["dovecot"]
pytestmark = pytest.mark.slow

SEED = 20261128
MAILS = 500  # ten batches of the worker's fetch
KILLS = 8


def mail(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Cliente {n} <cliente{n}@example.pe>"
    message["To"], message["Subject"] = USER, f"Re: tu compra {n}"
    message["Message-ID"] = f"<kill-{n}@example.pe>"
    message.set_content(f"Hola, la compra {n} llegó bien, gracias.")
    return bytes(message)


def test_workers_killed_while_reading_mail_store_each_mail_once(
    engine: Engine, tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.certificate))  # the workers trust it
    folder = f"Kills-{engine.dialect.name}"
    dovecot.create_folder(folder)
    with dovecot.admin() as imap:  # one session for them all: the test's own time is short
        for n in range(MAILS):
            kind, _data = imap.append(quoted(folder), None, None, mail(n))
            assert kind == "OK"
    uids = dovecot.uids(folder)
    url = engine.url.render_as_string(hide_password=False)
    sessions = setup_sales(engine, defaults().replace(database={"url": url}))
    inbound = {
        "transport": "imap",
        "reply_to": USER,
        "imap_host": HOST,
        "imap_port": dovecot.imaps_port,
        "username": USER,
        "password": PASSWORD,
        "folder": folder,
    }
    path = process_config(
        tmp_path, engine, worker={"tick_seconds": 1}, **{"email.inbound": inbound}
    )

    def stored() -> int:
        query = select(func.count()).where(
            Message.direction == Direction.INBOUND, Message.channel == Channel.EMAIL
        )
        with sessions() as session:
            return int(session.scalar(query) or 0)

    rng = random.Random(SEED)
    started = time.monotonic()
    with Workers(path, 2) as workers:
        seen, mid_reading = 0, 0
        while len(workers.killed) < KILLS and seen < MAILS:  # each after some progress, at
            wait_for(lambda: stored() > seen, "the workers to read mail", 60)  # noqa: B023
            time.sleep(rng.uniform(0, 0.5))  # a random moment of a tick
            mid_reading += stored() < MAILS
            workers.kill_one(rng)
            seen = stored()
        wait_for(lambda: stored() >= MAILS, "every mail to be stored", 90)
        wait_for(workers.all_up, "the workers to be up before they are told to stop")
        codes = workers.stop()
    seconds = time.monotonic() - started
    assert codes == [0, 0], workers.log()[-3000:]
    with sessions() as session:
        ids = session.scalars(
            select(Message.provider_id).where(Message.direction == Direction.INBOUND)
        ).all()
        [cursor] = session.scalars(select(MailboxCursor)).all()
    assert sorted(str(i) for i in ids) == sorted(f"<kill-{n}@example.pe>" for n in range(MAILS))
    assert cursor.last_uid == max(uids)
    assert mid_reading >= 3  # the kills came while there was mail to read
    REPORT.append(
        f"mail read by 2 workers killed {len(workers.killed)} times ({engine.dialect.name}): "
        f"{MAILS} mails, stored {len(ids)} (each once), lost {MAILS - len(set(ids))}, "
        f"{mid_reading} kills mid-reading, {seconds:.1f} s"
    )
