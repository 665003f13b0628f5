"""A real IMAP server on 127.0.0.1: Debian's Dovecot (`make dovecot` installs it), run as the
current user with a config of its own in a temporary directory, and mail put into it by IMAP
APPEND, as a mail server's delivery would leave it.

It runs unprivileged: every Dovecot user (`default_internal_user`, `default_login_user`, the
mail user) is the one running the tests, nothing is chrooted, and every file it writes (base
and state directories, log, maildir) is in its temporary directory. Dovecot refuses root for
its login and mail processes, so under root (as in CI) they all are `nobody`: that is why the
directory is one of its own under /tmp (pytest's are closed to other users), open to read.
Two listeners on free ports, IMAP with STARTTLS and IMAPS, with a self-signed certificate made
at start.
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from scheduler.listening.mailbox import Mailbox, Security
from tests.processes import free_ports, wait_for

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
HOST = "127.0.0.1"
USER = "respuestas@mitienda.pe"
PASSWORD = "clave de prueba"
# A second account whose password LOGIN cannot carry (imaplib sends it as ASCII).
OTHER_USER = "atencion@mitienda.pe"
ACCENTED_PASSWORD = "contraseña-añeja"

CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
protocols = imap
listen = {host}
ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
first_valid_gid = {gid}
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class Dovecot:
    """One Dovecot in a temporary directory of its own; a context manager that stops it and
    removes the directory."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="postventa-dovecot-"))
        self.imap_port, self.imaps_port = free_ports(2)
        self.certificate = self.directory / "cert.pem"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Dovecot:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Writes the certificate, the accounts and the config, then starts Dovecot and waits
        until both ports greet."""
        self._certificate()
        (self.directory / "passwd").write_text(
            f"{USER}:{PASSWORD}\n{OTHER_USER}:{ACCENTED_PASSWORD}\n", encoding="utf-8"
        )
        user = pwd.getpwnam("nobody") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
        self.directory.chmod(0o755)  # so that `nobody` reaches the sockets and files in it
        (self.directory / "home").mkdir()
        os.chown(self.directory / "home", user.pw_uid, user.pw_gid)
        config = self.directory / "dovecot.conf"
        config.write_text(
            CONFIG.format(
                dir=self.directory,
                host=HOST,
                user=user.pw_name,
                group=grp.getgrgid(user.pw_gid).gr_name,
                uid=user.pw_uid,
                gid=user.pw_gid,
                imap_port=self.imap_port,
                imaps_port=self.imaps_port,
            ),
            encoding="utf-8",
        )
        with (self.directory / "stderr.log").open("wb") as stderr:
            self.process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # a process group of its own: stop() ends its children
            )
        wait_for(self._ready, "dovecot to listen", seconds=20)

    def _certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1 (openssl comes with dovecot-core)."""
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
            + ["-nodes", "-days", "3650", "-subj", "/CN=postventa-test-imap"]
            + ["-addext", f"subjectAltName=IP:{HOST},DNS:localhost"]
            + ["-keyout", str(self.directory / "key.pem"), "-out", str(self.certificate)],
            check=True,
            capture_output=True,
        )

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"dovecot exited {self.process.returncode}: {self.log()}")
        for port in (self.imap_port, self.imaps_port):
            try:
                socket.create_connection((HOST, port), timeout=1).close()
            except OSError:
                return False
        return True

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")
            for path in (self.directory / "stderr.log", self.directory / "dovecot.log")
            if path.exists()
        )

    def stop(self) -> None:
        """Ends Dovecot and every process it started (they share its process group), then
        removes its directory."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate and checks it as usual."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def mailbox(self, security: Security = "ssl", **changes: Any) -> Mailbox:
        """The product's Mailbox aimed at this server, with `changes` to its arguments."""
        values: dict[str, Any] = {
            "host": HOST,
            "port": self.imaps_port if security == "ssl" else self.imap_port,
            "security": security,
            "username": USER,
            "password": PASSWORD,
            "folder": "INBOX",
            "timeout": 10.0,
            "ssl_context": self.ssl_context(),
        }
        values.update(changes)
        return Mailbox(**values)

    def admin(self) -> imaplib.IMAP4_SSL:
        """A logged-in IMAP session of the test's own, for putting things in place."""
        imap = imaplib.IMAP4_SSL(HOST, self.imaps_port, ssl_context=self.ssl_context(), timeout=10)
        try:
            imap.login(USER, PASSWORD)
        except imaplib.IMAP4.error:
            imap.shutdown()
            raise
        return imap

    def deliver(self, raw: bytes, folder: str = "INBOX") -> int:
        """APPENDs `raw` to `folder` and returns its UID (RFC 4315 APPENDUID)."""
        with self.admin() as imap:
            kind, data = imap.append(quoted(folder), None, None, raw)
        found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        assert kind == "OK" and found, data
        return int(found.group(1))

    def uids(self, folder: str) -> list[int]:
        """The UIDs in `folder`, as the server numbers them."""
        with self.admin() as imap:
            imap.select(quoted(folder), readonly=True)
            kind, data = imap.uid("SEARCH", "ALL")
        assert kind == "OK", data
        return [int(uid) for uid in (data[0] or b"").split()]

    def create_folder(self, folder: str) -> None:
        with self.admin() as imap:
            kind, data = imap.create(quoted(folder))
        assert kind == "OK", data

    def delete_folder(self, folder: str) -> None:
        with self.admin() as imap:
            kind, data = imap.delete(quoted(folder))
        assert kind == "OK", data


def quoted(folder: str) -> str:
    """imaplib sends a folder name as it is given, and a space would split it."""
    return f'"{folder}"'


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    """One Dovecot for a test module (it starts in a tenth of a second). Without Dovecot the
    tests are skipped, with the way to install it, except in CI, where they must run."""
    if not os.access(DOVECOT, os.X_OK):
        message = "dovecot is not installed (`make dovecot` installs Debian's dovecot-imapd)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: the mailbox tests must run in CI")
        pytest.skip(message)
    with Dovecot() as server:
        yield server
