"""The shop's IMAP mailbox, where customers' email replies arrive: what is new since last time.

Progress is remembered as the folder's UIDVALIDITY and the last UID read, never with flags. The
folder is opened read-only (EXAMINE) and bodies are fetched with BODY.PEEK[], so mail that the
shop's people also read in their own client stays unread there, and nothing here can mark, move
or delete it.

A UID means something only with its UIDVALIDITY (RFC 3501 §2.3.1.1). When the server changes
it (the folder was rebuilt or replaced), every UID we knew is void, so the folder is read again
from its first message and the Message-ID, stored once downstream, keeps a mail read twice
from being recorded twice. With no state yet, the folder is read from its first message too:
point Postventa at a mailbox that receives replies only.

`fetch_new` returns the new state and does not keep it: the caller stores the mail, then the
state, so a crash in between reads the same mail again rather than skipping it.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Literal

Security = Literal["ssl", "starttls"]
FETCHED_UID = re.compile(rb"\bUID (\d+)")


@dataclass(frozen=True)
class MailboxState:
    """How far the folder has been read: UIDs up to `last_uid` under `uidvalidity`."""

    uidvalidity: int
    last_uid: int


class MailboxError(Exception):
    """The mailbox cannot be read now, in words a shop owner can act on (wrong password,
    unknown host, no such folder, a certificate not trusted)."""


class Mailbox:
    """One IMAP folder, opened for each `fetch_new` and closed after it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security,
        username: str,
        password: str,
        folder: str = "INBOX",
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.folder = folder
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def fetch_new(
        self, state: MailboxState | None, limit: int
    ) -> tuple[list[tuple[int, bytes]], MailboxState]:
        """Up to `limit` messages after `state`, as (UID, raw bytes) in UID order, and the state
        to store once they are stored. Raises MailboxError."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1 ({limit} given)")
        where = f"IMAP {self.host}:{self.port}"
        try:
            imap = self._connect()
        except (OSError, imaplib.IMAP4.error) as error:
            raise MailboxError(f"{where}: {_reason(error, self.timeout)}") from error
        try:
            self._log_in(imap, where)
            uidvalidity, exists = self._open(imap, where)
            last_uid = state.last_uid if state and state.uidvalidity == uidvalidity else 0
            uids = _uids_after(imap, last_uid)[:limit] if exists else []
            mails = _bodies(imap, uids) if uids else []
        except (OSError, ValueError, imaplib.IMAP4.error) as error:
            raise MailboxError(f"{where}: {_reason(error, self.timeout)}") from error
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                imap.logout()
        return mails, MailboxState(uidvalidity, uids[-1] if uids else last_uid)

    def _connect(self) -> imaplib.IMAP4:
        if self.security == "ssl":
            return imaplib.IMAP4_SSL(
                self.host, self.port, ssl_context=self.ssl_context, timeout=self.timeout
            )
        imap = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        try:
            imap.starttls(self.ssl_context)
        except BaseException:
            with contextlib.suppress(OSError):  # a failed handshake has closed the socket
                imap.shutdown()
            raise
        return imap

    def _log_in(self, imap: imaplib.IMAP4, where: str) -> None:
        """LOGIN, or AUTHENTICATE PLAIN (RFC 4616, UTF-8) for what LOGIN cannot carry: imaplib
        sends LOGIN's arguments as ASCII."""
        try:
            if (self.username + self.password).isascii():
                imap.login(_quoted(self.username), self.password)
            else:
                credentials = f"\0{self.username}\0{self.password}".encode()
                imap.authenticate("PLAIN", lambda _challenge: credentials)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as error:
            raise MailboxError(
                f"{where}: the server refused user {self.username!r} and its password"
                f" ({_text(error)})"
            ) from error

    def _open(self, imap: imaplib.IMAP4, where: str) -> tuple[int, int]:
        """EXAMINE the folder: its UIDVALIDITY and how many messages it holds."""
        kind, data = imap.select(_quoted(_modified_utf7(self.folder)), readonly=True)
        if kind != "OK":
            raise MailboxError(
                f"{where}: folder {self.folder!r} cannot be opened ({_text(data[0])})"
            )
        _, validity = imap.response("UIDVALIDITY")
        if not validity or not validity[0]:
            raise MailboxError(f"{where}: folder {self.folder!r} has no UIDVALIDITY")
        return int(validity[0]), int(data[0] or 0)


def _uids_after(imap: imaplib.IMAP4, last_uid: int) -> list[int]:
    """The UIDs above `last_uid`, in order. `N:*` also names the newest message when N is above
    every UID (RFC 3501 §6.4.8), so that one is filtered out here."""
    kind, data = imap.uid("FETCH", f"{last_uid + 1}:*", "(UID)")
    if kind != "OK":
        raise imaplib.IMAP4.error(f"UID FETCH {last_uid + 1}:* failed: {_text(data[0])}")
    uids = {int(found) for line in data if isinstance(line, bytes) for found in _uid(line)}
    return sorted(uid for uid in uids if uid > last_uid)


def _bodies(imap: imaplib.IMAP4, uids: list[int]) -> list[tuple[int, bytes]]:
    """The raw messages with these UIDs, in UID order; one expunged meanwhile is not there."""
    kind, data = imap.uid("FETCH", ",".join(map(str, uids)), "(BODY.PEEK[])")
    if kind != "OK":
        raise imaplib.IMAP4.error(f"UID FETCH of {len(uids)} messages failed: {_text(data[0])}")
    wanted = set(uids)
    mails: dict[int, bytes] = {}
    for index, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        # The UID comes before the literal or, from some servers, after it.
        after = data[index + 1] if index + 1 < len(data) else b""
        found = _uid(item[0]) or _uid(after if isinstance(after, bytes) else b"")
        if found and int(found[0]) in wanted:
            mails[int(found[0])] = item[1]
    return sorted(mails.items())


def _uid(line: bytes) -> list[bytes]:
    return FETCHED_UID.findall(line)


def _quoted(text: str) -> str:
    """An IMAP quoted string: imaplib sends arguments as they are, and a space breaks them."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _modified_utf7(name: str) -> str:
    """A folder name as IMAP spells it (RFC 3501 §5.1.3): "Atención" -> "Atenci&APM-n"."""

    def spell(match: re.Match[str]) -> str:
        if match.group() == "&":
            return "&-"
        coded = base64.b64encode(match.group().encode("utf-16-be")).decode().rstrip("=")
        return "&" + coded.replace("/", ",") + "-"

    return re.sub(r"&|[^ -~]+", spell, name)


def _text(value: object) -> str:
    """A server's words from imaplib, which hands them over as bytes or as an exception."""
    if isinstance(value, BaseException) and value.args:
        value = value.args[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).strip()


def _reason(error: BaseException, timeout: float) -> str:
    """What went wrong, and where to look."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate is not trusted ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return (
            f"TLS failed ({error.reason}): is the port for ssl (usually 993) or for"
            " starttls (usually 143)?"
        )
    if isinstance(error, ValueError):
        return f"the server's answer cannot be read ({error})"
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: is the port right?"
    if isinstance(error, imaplib.IMAP4.abort):
        return f"the server ended the session ({_text(error)})"
    if isinstance(error, imaplib.IMAP4.error):
        return _text(error)
    return f"cannot be reached ({error})"
