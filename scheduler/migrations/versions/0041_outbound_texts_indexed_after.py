"""On PostgreSQL, the outbox's searches by words read a copy of what went out, indexed after
the send, instead of a trigram index over the messages themselves: that index was a sixth of
a send's CPU (every outbound text's trigrams written at the send, one entry each).

A statement trigger puts each outbound message's id in `outbound_texts_waiting` (one small
index entry a message); the worker's `sent-texts` job copies the waiting texts into
`outbound_texts`, whose trigram index the search reads, every few seconds, a batch a
transaction (`sending.sent_texts`). A search also reads the texts still waiting, so it
finds every text as soon as it is sent. A text changed later (erased on request, or by
`retention_months`) loses its copy in the same transaction and waits again: the copy never
keeps words the message no longer has. Deleting a message deletes its copy. SQLite has none
of this: it has no trigram index, and its searches read the messages.

Existing texts are copied here, so that searches stay fast from the first one; the trigram
index is built only where pg_trgm is installed (migration 0029): without it, searches read
the copy instead of the messages, which costs the same.

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0041"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INDEX = "ix_messages_outbound_words"
NEW_INDEX = "ix_outbound_texts_words"

STATEMENTS = (
    "CREATE TABLE outbound_texts ("
    " message_id integer PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,"
    " body text NOT NULL)",
    # No foreign key: a check per message on the send path; the worker drops ids of messages
    # deleted meanwhile.
    "CREATE TABLE outbound_texts_waiting (message_id integer PRIMARY KEY)",
    """
    CREATE FUNCTION outbound_texts_wait() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO outbound_texts_waiting (message_id)
        SELECT id FROM sent WHERE direction = 'outbound'
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER outbound_texts_wait AFTER INSERT ON messages "
    "REFERENCING NEW TABLE AS sent FOR EACH STATEMENT EXECUTE FUNCTION outbound_texts_wait()",
    # A row trigger: a statement trigger cannot name the column, and would fire at every
    # change of a message's status; this one fires where a text changed.
    """
    CREATE FUNCTION outbound_texts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM outbound_texts WHERE message_id = NEW.id;
        INSERT INTO outbound_texts_waiting (message_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER outbound_texts_changed AFTER UPDATE OF body ON messages FOR EACH ROW "
    "WHEN (NEW.direction = 'outbound' AND OLD.body IS DISTINCT FROM NEW.body) "
    "EXECUTE FUNCTION outbound_texts_changed()",
    "INSERT INTO outbound_texts (message_id, body) "
    "SELECT id, body FROM messages WHERE direction = 'outbound'",
)


def _has_trigrams() -> bool:
    found = op.get_bind().execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
    return found.first() is not None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")
    for statement in STATEMENTS:
        op.execute(statement)
    if _has_trigrams():
        op.execute(f"CREATE INDEX {NEW_INDEX} ON outbound_texts USING gin (body gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbound_texts_changed ON messages")
    op.execute("DROP TRIGGER outbound_texts_wait ON messages")
    op.execute("DROP FUNCTION outbound_texts_changed()")
    op.execute("DROP FUNCTION outbound_texts_wait()")
    op.execute("DROP TABLE outbound_texts_waiting")
    op.execute("DROP TABLE outbound_texts")
    if _has_trigrams():
        op.execute(
            f"CREATE INDEX {OLD_INDEX} ON messages USING gin (body gin_trgm_ops) "
            "WHERE direction = 'outbound'"
        )
