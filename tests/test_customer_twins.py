"""Migration 0010 merges customers that are one person (twins by phone or email) into the
oldest, keeping every sale, follow-up, message and case and the strictest consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from scheduler import schema
from scheduler.models import (
    AuditEntry,
    Cadence,
    CadenceStep,
    Case,
    Customer,
    FollowUp,
    Message,
    Sale,
)
from tests.migrating import blank  # noqa: F401 - fixture

__all__ = ["blank"]
AT_0012 = (  # the customers' columns as these migrations leave them (later ones add more)
    Customer.id,
    Customer.phone,
    Customer.email,
    Customer.locale,
    Customer.sms_opt_out_at,
    Customer.sms_opt_out_via,
    Customer.email_opt_out_at,
)
DAY = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _add(connection: Connection, model: type[Any], **values: Any) -> int:
    return int(connection.execute(insert(model).returning(model.id), [values]).scalar_one())


def _customer(connection: Connection, day: int, **values: Any) -> int:
    return _add(
        connection, Customer, name=f"Cliente {day}", created_at=DAY + timedelta(day), **values
    )


def _sale(connection: Connection, customer: int, external_id: str) -> int:
    return _add(
        connection,
        Sale,
        external_id=external_id,
        customer_id=customer,
        sold_at=DAY,
        status="active",
        attributes={},
        created_at=DAY,
    )


def test_twins_are_merged_into_the_oldest_with_the_strictest_consent(blank: Engine) -> None:
    schema.upgrade(blank, "0009")
    with blank.begin() as connection:
        oldest = _customer(connection, 1, phone="+51987000001")
        by_phone = _customer(
            connection,
            2,
            phone="+51987000001",
            email="rosa@example.pe",
            sms_opt_out_at=DAY + timedelta(5),
            sms_opt_out_via="keyword STOP",
        )
        by_email = _customer(
            connection,
            3,
            phone="+51987000002",
            email="rosa@example.pe",
            locale="es",
            sms_opt_out_at=DAY + timedelta(4),
            sms_opt_out_via="admin",
            email_opt_out_at=DAY + timedelta(6),
            email_opt_out_via="unsubscribe link",
        )
        stranger = _customer(connection, 4, phone="+51987000003")
        sales = [_sale(connection, who, f"S-{who}") for who in (oldest, by_phone, by_email)]
        _sale(connection, stranger, "S-stranger")
        cadence = _add(
            connection,
            Cadence,
            name="c",
            is_default=True,
            active=True,
            created_at=DAY,
            updated_at=DAY,
        )
        step = _add(
            connection,
            CadenceStep,
            cadence_id=cadence,
            key="k",
            anchor="sale",
            offset_minutes=60,
            channel="sms",
            template_name="t",
            active=True,
        )
        _add(
            connection,
            FollowUp,
            sale_id=sales[1],
            step_id=step,
            customer_id=by_phone,
            channel="sms",
            due_at=DAY,
            status="scheduled",
            attempts=0,
            facts={},
            created_at=DAY,
            updated_at=DAY,
        )
        _add(
            connection,
            Message,
            customer_id=by_email,
            direction="inbound",
            channel="sms",
            from_address="+51987000002",
            to_address="+1555",
            body="hola",
            status="received",
            created_at=DAY,
        )
        later_case = _add(
            connection,
            Case,
            customer_id=oldest,
            status="open",
            opened_at=DAY + timedelta(2),
            first_response_due_at=DAY,
            escalation_level=0,
            reopened_count=0,
        )
        first_case = _add(
            connection,
            Case,
            customer_id=by_phone,
            status="open",
            opened_at=DAY,
            first_response_due_at=DAY,
            escalation_level=0,
            reopened_count=0,
        )
    schema.upgrade(blank, "0010")
    with blank.connect() as connection:
        kept = connection.execute(select(*AT_0012).where(Customer.id == oldest)).one()
        assert connection.scalars(select(Customer.id).order_by(Customer.id)).all() == [
            oldest,
            stranger,
        ]
        assert (kept.phone, kept.email, kept.locale) == ("+51987000001", "rosa@example.pe", "es")
        assert (kept.sms_opt_out_at, kept.sms_opt_out_via) == (DAY + timedelta(4), "admin")
        assert kept.email_opt_out_at == DAY + timedelta(6)
        assert set(connection.scalars(select(Sale.customer_id).where(Sale.id.in_(sales)))) == {
            oldest
        }
        assert connection.scalars(select(FollowUp.customer_id)).all() == [oldest]
        assert connection.scalars(select(Message.customer_id)).all() == [oldest]
        cases = {row.id: row.status for row in connection.execute(select(Case.id, Case.status))}
        assert cases == {first_case: "open", later_case: "resolved"}
        entry = connection.execute(select(AuditEntry)).one()
        assert (entry.action, entry.entity_id, entry.actor) == (
            "customer.merge",
            oldest,
            "migration:0010",
        )
        assert entry.details["merged"] == [by_phone, by_email]
        assert entry.details["moved"]["sales"] == 2
        assert entry.details["addresses_dropped"] == {"phone": ["+51987000002"], "email": []}
    with pytest.raises(IntegrityError), blank.begin() as connection:
        _customer(connection, 9, email="rosa@example.pe")


def test_a_database_without_twins_migrates_unchanged(blank: Engine) -> None:
    schema.upgrade(blank, "0009")
    with blank.begin() as connection:
        _customer(connection, 1, phone="+51987000001", email="a@example.pe")
        _customer(connection, 2, phone="+51987000002")
        _customer(connection, 3, email="b@example.pe")
        _customer(connection, 4)  # neither: NULLs never clash
        _customer(connection, 5)
    schema.upgrade(blank, "0010")
    with blank.connect() as connection:
        assert len(connection.scalars(select(Customer.id)).all()) == 5
        assert connection.scalars(select(AuditEntry.id)).all() == []


def test_emails_spelt_in_another_case_are_one_customer_in_lower_case(blank: Engine) -> None:
    schema.upgrade(blank, "0011")
    with blank.begin() as connection:
        oldest = _customer(connection, 1, email="Rosa@Example.pe", phone="+51987000001")
        twin = _customer(
            connection, 2, email="rosa@example.pe", email_opt_out_at=DAY, email_opt_out_via="link"
        )
        other = _customer(connection, 3, email="Luis@Example.pe")
        sale = _sale(connection, twin, "S-twin")
    schema.upgrade(blank, "0012")
    with blank.connect() as connection:
        rows = connection.execute(select(*AT_0012).order_by(Customer.id)).all()
        assert [(row.id, row.email) for row in rows] == [
            (oldest, "rosa@example.pe"),
            (other, "luis@example.pe"),
        ]
        assert rows[0].email_opt_out_at == DAY  # the strictest consent
        assert connection.scalar(select(Sale.customer_id).where(Sale.id == sale)) == oldest
        entry = connection.execute(select(AuditEntry)).one()
        assert (entry.actor, entry.entity_id, entry.details["merged"]) == (
            "migration:0012",
            oldest,
            [twin],
        )
