"""The owner's own words, stored and read with the rules."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.listening.classify import Label, classify
from scheduler.listening.owner_words import VocabularyError, add_word, owner_lexicon
from scheduler.models import AuditEntry, Case, Message
from tests.factories import NOW
from tests.replying import config, reply, sent  # noqa: F401 - fixtures

__all__ = ["config", "sent"]


def test_words_are_folded_checked_and_audited(sent: sessionmaker[Session]) -> None:
    with sent.begin() as session:
        row = add_word(session, "positive", "  Bacanísimo ", now=NOW, actor="user:1")
        assert row.word == "bacanisimo"
        with pytest.raises(VocabularyError, match="already a positive word"):
            add_word(session, "positive", "BACANISIMO", now=NOW, actor="user:1")
        with pytest.raises(VocabularyError, match="words can be added to objection"):
            add_word(session, "opt_out", "chau", now=NOW, actor="user:1")
        with pytest.raises(VocabularyError, match="between 1 and 100"):
            add_word(session, "objection", "   ", now=NOW, actor="user:1")
    with sent() as session:
        assert session.scalars(select(AuditEntry.action)).all().count("lexicon.add") == 1
        lexicon = owner_lexicon(session)
    assert classify("bacanisimo todo", lexicon).label is Label.POSITIVE
    assert classify("bacanisimo todo").needs_human  # without the owner's word: a person reads


def test_replies_are_read_with_the_owners_words(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    with sent.begin() as session:
        add_word(session, "positive", "bacanisimo", now=NOW, actor="user:1")
    reply(client, "bacanisimo todo", 1)
    with sent() as session:
        assert session.scalars(select(Case)).all() == []
        label = session.scalars(select(Message.label).where(Message.label.isnot(None))).one()
        assert label == "positive"
