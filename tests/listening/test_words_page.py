"""The owner's own words: added, tried on a reply, removed."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.models import AuditEntry, LexiconWord
from tests.browsing import fresh, submit


def test_a_word_changes_how_replies_are_read(owner_client: FlaskClient, session: Session) -> None:
    before = owner_client.get("/admin/words?try=la+cocina+llego+chancada").get_data(as_text=True)
    submit(
        owner_client,
        "/admin/words",
        {"label": "objection", "word": "Chancada"},
        page="/admin/words",
    )
    row = session.scalars(select(LexiconWord)).one()
    assert (row.label, row.word) == ("objection", "chancada")
    after = owner_client.get("/admin/words?try=la+cocina+llego+chancada").get_data(as_text=True)
    assert "<strong>objection</strong>" in after and "<strong>objection</strong>" not in before
    assert "a person reads it" in after


def test_a_word_twice_or_for_consent_is_refused(
    owner_client: FlaskClient, session: Session
) -> None:
    pages = []
    for label, word in (("objection", "chancada"), ("objection", "CHANCADA"), ("opt_out", "chau")):
        answer = submit(
            owner_client, "/admin/words", {"label": label, "word": word}, page="/admin/words"
        )
        pages.append(
            owner_client.get("/admin/words").get_data(as_text=True)
            if answer.status_code == 302
            else answer.get_data(as_text=True)
        )
    assert "&#39;chancada&#39; is already a objection word" in pages[1]
    assert "label: Not a valid choice" in pages[2]
    assert len(session.scalars(select(LexiconWord)).all()) == 1


def test_removing_a_word_is_audited(owner_client: FlaskClient, session: Session) -> None:
    submit(
        owner_client, "/admin/words", {"label": "positive", "word": "bacan"}, page="/admin/words"
    )
    row = session.scalars(select(LexiconWord)).one()
    submit(owner_client, f"/admin/words/{row.id}/remove", {}, page="/admin/words")
    fresh(session)
    assert session.scalars(select(LexiconWord)).all() == []
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {"lexicon.add", "lexicon.remove"} <= actions


def test_staff_cannot_change_words(staff_client: FlaskClient) -> None:
    assert staff_client.get("/admin/words").status_code == 403


def test_a_word_for_a_theme_of_complaints(owner_client: FlaskClient, session: Session) -> None:
    trial = "/admin/words?try=la+puerta+vino+chancada"
    assert "the complaint is about: breakage" not in owner_client.get(trial).get_data(as_text=True)
    submit(
        owner_client, "/admin/words", {"label": "breakage", "word": "Chancada"}, page="/admin/words"
    )
    row = session.scalars(select(LexiconWord)).one()
    assert (row.label, row.word) == ("breakage", "chancada")
    page = owner_client.get(trial).get_data(as_text=True)
    assert "the complaint is about: breakage" in page
    assert "<td>complaint about: breakage</td><td>chancada</td>" in page
    # A theme's word is not a reading's: the reply is still read by the built-in words.
    assert "<strong>objection</strong>" not in page
