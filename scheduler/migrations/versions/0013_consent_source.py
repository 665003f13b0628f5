"""Where an opt-out came from, as a typed value beside its wording.

The wording (`sms_opt_out_via`, `email_opt_out_via`) is for people; code used to search it for
"21610" or a quoted Twilio keyword to know whether Twilio itself blocks the number. The source
is now stored as one of `ConsentSource`'s values. Existing opt-outs get theirs from the wording
each way of opting out wrote until now; anything else was typed by a person in the admin.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 15:00:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = (
    "keyword",
    "provider_keyword",
    "words",
    "provider_refusal",
    "unsubscribe_link",
    "matched",
    "staff",
)
# The single words Twilio's own opt-out handling acts on, as they were when this was written.
TWILIO_KEYWORDS = frozenset(
    "stop stopall unsubscribe cancel end quit revoke optout start yes unstop help info".split()
)
REPLIED = re.compile(r"""^replied (['"])(.*)\1 by SMS$""")  # the keyword's repr()
customers = sa.table(
    "customers",
    sa.column("id", sa.Integer),
    sa.column("sms_opt_out_via", sa.Text),
    sa.column("sms_opt_out_source", sa.String),
    sa.column("email_opt_out_via", sa.Text),
    sa.column("email_opt_out_source", sa.String),
)


def source_of(via: str) -> str:
    """The source that the wording `via` was written by."""
    if "21610" in via:
        return "provider_refusal"
    replied = REPLIED.match(via)
    if replied:
        return "provider_keyword" if replied.group(2) in TWILIO_KEYWORDS else "keyword"
    if via == "asked by SMS to stop":
        return "words"
    if via == "one-click unsubscribe link":
        return "unsubscribe_link"
    if via.startswith("asked from ") and ", matched by " in via:
        return "matched"
    return "staff"


def upgrade() -> None:
    for channel in ("sms", "email"):
        with op.batch_alter_table("customers", schema=None) as batch_op:
            batch_op.add_column(sa.Column(f"{channel}_opt_out_source", sa.String(16)))
            values = ", ".join(f"'{source}'" for source in SOURCES)
            batch_op.create_check_constraint(
                batch_op.f(f"ck_customers_{channel}_opt_out_source"),
                f"{channel}_opt_out_source IN ({values})",
            )
    connection = op.get_bind()
    for channel in ("sms", "email"):
        via, source = (
            customers.c[f"{channel}_opt_out_via"],
            customers.c[f"{channel}_opt_out_source"],
        )
        rows = connection.execute(sa.select(customers.c.id, via).where(via.isnot(None))).all()
        for customer_id, wording in rows:
            connection.execute(
                customers.update()
                .where(customers.c.id == customer_id)
                .values({source: source_of(wording)})
            )


def downgrade() -> None:
    for channel in ("email", "sms"):
        with op.batch_alter_table("customers", schema=None) as batch_op:
            batch_op.drop_constraint(
                batch_op.f(f"ck_customers_{channel}_opt_out_source"), type_="check"
            )
            batch_op.drop_column(f"{channel}_opt_out_source")
