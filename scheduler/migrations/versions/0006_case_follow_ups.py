"""Follow-ups that belong to a case ("did we solve it?"), and the step that plans them.

A case's follow-up is unique per (case, step), the others per (sale, step), so a customer with
two resolved cases on one sale is asked about each. Cadence steps may now count from a case's
resolution (anchor "case"); the default cadence gets its "case-check" step.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CASE_CHECK_MINUTES = 3 * 24 * 60


def upgrade() -> None:
    with op.batch_alter_table("cadence_steps", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_cadence_steps_anchor"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_cadence_steps_anchor"), "anchor IN ('sale', 'renewal', 'score', 'case')"
        )
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_follow_ups_case_id_cases"),
            "cases",
            ["case_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.drop_constraint(batch_op.f("uq_follow_ups_sale_id_step_id"), type_="unique")
    op.create_index(
        "uq_follow_ups_sale_step",
        "follow_ups",
        ["sale_id", "step_id"],
        unique=True,
        sqlite_where=sa.text("case_id IS NULL"),
        postgresql_where=sa.text("case_id IS NULL"),
    )
    op.create_index(
        "uq_follow_ups_case_step",
        "follow_ups",
        ["case_id", "step_id"],
        unique=True,
        sqlite_where=sa.text("case_id IS NOT NULL"),
        postgresql_where=sa.text("case_id IS NOT NULL"),
    )
    op.execute(
        sa.text(
            "INSERT INTO cadence_steps (cadence_id, key, anchor, offset_minutes, channel, "
            "template_name, condition, active) "
            "SELECT id, 'case-check', 'case', :minutes, 'sms', 'case_check', NULL, true "
            "FROM cadences WHERE is_default AND NOT EXISTS (SELECT 1 FROM cadence_steps s "
            "WHERE s.cadence_id = cadences.id AND s.key = 'case-check')"
        ).bindparams(minutes=CASE_CHECK_MINUTES)
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM follow_ups WHERE case_id IS NOT NULL"))
    op.execute(sa.text("DELETE FROM cadence_steps WHERE anchor = 'case'"))
    op.drop_index("uq_follow_ups_case_step", table_name="follow_ups")
    op.drop_index("uq_follow_ups_sale_step", table_name="follow_ups")
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_follow_ups_sale_id_step_id"), ["sale_id", "step_id"]
        )
        batch_op.drop_constraint(batch_op.f("fk_follow_ups_case_id_cases"), type_="foreignkey")
        batch_op.drop_column("case_id")
    with op.batch_alter_table("cadence_steps", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_cadence_steps_anchor"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_cadence_steps_anchor"), "anchor IN ('sale', 'renewal', 'score')"
        )
