"""Twilio's error codes that mean something beyond the send they came with: read by the
transport and by delivery reports alike, without loading Twilio's client."""

from __future__ import annotations

OPTED_OUT = "21610"  # the recipient replied STOP to this sender


def reports_unsubscribed(error_code: str | None) -> bool:
    """Whether Twilio's error code (of a send, or of a delivery report) says the recipient
    replied STOP to our number: Twilio refuses every message to them until they send START."""
    return error_code == OPTED_OUT
