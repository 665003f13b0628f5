"""The first release's shop (schema revision 0001) with a few weeks of data, written through
the tables as that schema made them: for the tests that upgrade it (the whole way, or up to
where a migration under test starts)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, insert

from scheduler import accounts, schema
from tests.factories import SHOP_NUMBER

FIRST = "0001"
SHOP_EMAIL = "hola@mitienda.pe"
OWNER_EMAIL = "duena@mitienda.pe"
OWNER_PASSWORD = "la-clave-de-la-duena"
STAFF_PASSWORD = "la-clave-de-ana-2026"
API_TOKEN = "pv_token-de-la-tienda-online-desde-el-primer-dia"
ROSA_PHONE = "+51987654321"
CARMEN_PHONE = "+51912345678"
LUIS_EMAIL = "luis.huaman@example.pe"
THANKS_SMS = (
    "Hola {{ customer.first_name }}, gracias por comprar {{ product.name }} en "
    "{{ business.name }}. Si tienes dudas o algo no va bien, responde a este mensaje: lo lee "
    "una persona de nuestro equipo."
)
CHECK_IN_SMS = (
    "Hola {{ customer.first_name }}, ya llevas una semana con {{ product.name }}. ¿Todo bien? "
    "Si algo no funciona como esperabas, responde a este mensaje y lo vemos contigo."
)
ROSA_THANKED = (
    "Hola Rosa, gracias por comprar Lavadora en Mi Tienda. Si tienes dudas o algo no va bien, "
    "responde a este mensaje: lo lee una persona de nuestro equipo."
)
ROSA_REPLY = "La lavadora llegó con la puerta rota 😞"
LUIS_QUESTION = "Hola, ¿me pueden enviar la factura del parlante? Gracias."
RESOLVED_AS = "Se cambió la puerta de la lavadora"
CARMEN_VIA = "replied 'baja' by SMS"  # what the first release wrote for an SMS keyword


def utc(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A fixed instant of late 2026, around `NOW`: nothing here depends on today's date."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


@dataclass
class Shop:
    """The rows written into the first schema, as written: each table's by id, and the id of
    each by a name the test knows it by ("rosa", "fu:rosa-check-in")."""

    rows: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def add(self, connection: Connection, table: sa.Table, label: str, /, **values: Any) -> int:
        """Insert `values` into `table`, known from now on as `label` (positional: a table
        has columns called `name` and `key`)."""
        row_id = int(connection.execute(insert(table).returning(table.c.id), [values]).scalar_one())
        self.rows.setdefault(table.name, {})[row_id] = values
        assert label not in self.ids, label
        self.ids[label] = row_id
        return row_id

    def __getitem__(self, name: str) -> int:
        return self.ids[name]


def first_release_shop(engine: Engine) -> Shop:
    """An empty database migrated to 0001, holding a small shop's few weeks: its owner and a
    member of staff, an API token, the default cadence (three steps, their templates), two
    products, three customers (Rosa by phone, Luis by email, Carmen by phone and opted out by
    SMS), four sales (one cancelled), follow-ups sent, failed, cancelled and scheduled (due
    already and still to come), the messages that went out and the replies that came in, a
    resolved case with its note and remedy, an open case, and the audit log.

    Written through the tables as 0001 made them (reflected), not through today's models: those
    describe columns the first schema did not have."""
    schema.upgrade(engine, FIRST)
    assert schema.current_revision(engine) == FIRST
    shop = Shop()
    with engine.begin() as connection:
        metadata = sa.MetaData()
        metadata.reflect(connection)
        t = metadata.tables
        add = shop.add
        owner = add(
            connection,
            t["users"],
            "owner",
            email=OWNER_EMAIL,
            password_hash=accounts.hash_password(OWNER_PASSWORD),
            role="owner",
            locale="es",
            active=True,
            created_at=utc(11, 2, 13),
            last_login_at=utc(11, 22, 14, 5),
        )
        ana = add(
            connection,
            t["users"],
            "ana",
            email="ana@mitienda.pe",
            password_hash=accounts.hash_password(STAFF_PASSWORD),
            role="staff",
            locale="es",
            active=True,
            created_at=utc(11, 3, 13),
            last_login_at=None,
        )
        add(
            connection,
            t["api_tokens"],
            "token",
            name="Tienda online",
            token_hash=hashlib.sha256(API_TOKEN.encode()).hexdigest(),
            prefix=API_TOKEN[:10],
            created_at=utc(11, 2, 13, 30),
            last_used_at=utc(11, 22, 14, 30),
            revoked_at=None,
        )
        cadence = add(
            connection,
            t["cadences"],
            "cadence",
            name="Postventa estándar",
            is_default=True,
            active=True,
            created_at=utc(11, 2, 13, 5),
            updated_at=utc(11, 2, 13, 5),
        )
        for key, minutes, channel, template in (
            ("day1-thanks", 24 * 60, "sms", "thanks"),
            ("day7-check-in", 7 * 24 * 60, "sms", "check_in"),
            ("day30-usage", 30 * 24 * 60, "email", "usage_check_in"),
        ):
            add(
                connection,
                t["cadence_steps"],
                f"step:{key}",
                cadence_id=cadence,
                key=key,
                offset_minutes=minutes,
                channel=channel,
                template_name=template,
                condition=None,
                active=True,
            )
        for name, channel, subject, body in (
            ("thanks", "sms", None, THANKS_SMS),
            ("check_in", "sms", None, CHECK_IN_SMS),
            (
                "thanks",
                "email",
                "Gracias por tu compra en {{ business.name }}",
                "Hola {{ customer.first_name }}:\n\nGracias por comprar {{ product.name }}.",
            ),
            (
                "usage_check_in",
                "email",
                "¿Sigue todo bien con {{ product.name }}?",
                "Hola {{ customer.first_name }}:\n\nYa va un mes con {{ product.name }}.",
            ),
        ):
            add(
                connection,
                t["message_templates"],
                f"template:{name}/{channel}",
                name=name,
                channel=channel,
                locale="es",
                subject=subject,
                body=body,
                html_body=None,
                updated_at=utc(11, 2, 13, 5),
            )
        washer = add(
            connection,
            t["products"],
            "washer",
            sku="LAV-9",
            name="Lavadora",
            category="Línea blanca",
            renewal_days=None,
            cadence_id=cadence,
        )
        speaker = add(
            connection,
            t["products"],
            "speaker",
            sku="PAR-2",
            name="Parlante bluetooth",
            category=None,
            renewal_days=None,
            cadence_id=None,
        )
        people = t["customers"]
        nobody_said_no = dict(
            sms_opt_out_at=None, sms_opt_out_via=None, email_opt_out_at=None, email_opt_out_via=None
        )
        rosa = add(
            connection,
            people,
            "rosa",
            name="Rosa Quispe",
            phone=ROSA_PHONE,
            email=None,
            locale=None,
            timezone=None,
            created_at=utc(11, 3, 15),
            **nobody_said_no,
        )
        luis = add(
            connection,
            people,
            "luis",
            name="Luis Huamán",
            phone=None,
            email=LUIS_EMAIL,
            locale="es",
            timezone="America/Lima",
            created_at=utc(11, 20, 16),
            **nobody_said_no,
        )
        carmen = add(
            connection,
            people,
            "carmen",
            name="Carmen Flores",
            phone=CARMEN_PHONE,
            email=None,
            locale=None,
            timezone=None,
            created_at=utc(11, 22, 14, 30),
            sms_opt_out_at=utc(11, 22, 16),
            sms_opt_out_via=CARMEN_VIA,
            email_opt_out_at=None,
            email_opt_out_via=None,
        )
        for external_id, customer, product, sold_at, amount, status, attributes in (
            ("S-0999", rosa, washer, utc(11, 3, 15), "1899.00", "cancelled", {"store": "Surco"}),
            ("S-1001", rosa, washer, utc(11, 16, 14), "1899.00", "active", {"store": "Surco"}),
            ("S-1002", luis, speaker, utc(11, 20, 16), "349.90", "active", {}),
            ("S-1003", carmen, washer, utc(11, 22, 14, 30), "1799.00", "active", {"cuotas": 3}),
        ):
            add(
                connection,
                t["sales"],
                f"sale:{external_id}",
                external_id=external_id,
                customer_id=customer,
                product_id=product,
                sold_at=sold_at,
                amount=Decimal(amount),
                currency="PEN",
                status=status,
                cancelled_at=utc(11, 4, 10) if status == "cancelled" else None,
                attributes=attributes,
                created_at=sold_at,
            )
        rosa_case = add(
            connection,
            t["cases"],
            "case:rosa",
            customer_id=rosa,
            status="resolved",
            reason="complaint",
            opened_at=utc(11, 17, 18, 20),
            first_response_due_at=utc(11, 18, 18, 20),
            first_responded_at=utc(11, 18, 14, 15),
            resolved_at=utc(11, 19, 20),
            assignee_id=ana,
            escalation_level=0,
            outcome=RESOLVED_AS,
            reopened_count=0,
        )
        luis_case = add(
            connection,
            t["cases"],
            "case:luis",
            customer_id=luis,
            status="open",
            reason="question",
            opened_at=utc(11, 22, 14, 10),
            first_response_due_at=utc(11, 23, 17),
            first_responded_at=None,
            resolved_at=None,
            assignee_id=ana,
            escalation_level=1,
            outcome=None,
            reopened_count=0,
        )
        for name, sale, step, channel, due_at, status, changes in (
            (
                "rosa-cancelled",
                "S-0999",
                "day1-thanks",
                "sms",
                utc(11, 4, 15),
                "cancelled",
                {"status_reason": "the sale was cancelled", "updated_at": utc(11, 4, 10)},
            ),
            (
                "rosa-thanks",
                "S-1001",
                "day1-thanks",
                "sms",
                utc(11, 17, 14),
                "sent",
                {
                    "attempts": 1,
                    "provider_id": "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                    "sent_at": utc(11, 17, 14, 0, 3),
                    "updated_at": utc(11, 17, 14, 0, 3),
                },
            ),
            ("rosa-check-in", "S-1001", "day7-check-in", "sms", utc(11, 23, 14), "scheduled", {}),
            (
                "luis-thanks",
                "S-1002",
                "day1-thanks",
                "email",
                utc(11, 21, 16),
                "failed",
                {
                    "attempts": 3,
                    "status_reason": "gave up after 3 attempts",
                    "last_error": "451 4.3.0 mail server temporarily unavailable",
                    "updated_at": utc(11, 21, 16, 40),
                },
            ),
            ("luis-usage", "S-1002", "day30-usage", "email", utc(12, 20, 16), "scheduled", {}),
            ("carmen-thanks", "S-1003", "day1-thanks", "sms", utc(11, 23, 14, 30), "scheduled", {}),
        ):
            created = shop.rows["sales"][shop[f"sale:{sale}"]]["created_at"]
            values: dict[str, Any] = {
                "status_reason": None,
                "attempts": 0,
                "last_error": None,
                "provider_id": None,
                "lease_owner": None,
                "lease_expires_at": None,
                "sent_at": None,
                "updated_at": created,
            } | changes
            add(
                connection,
                t["follow_ups"],
                f"fu:{name}",
                sale_id=shop[f"sale:{sale}"],
                step_id=shop[f"step:{step}"],
                customer_id=shop.rows["sales"][shop[f"sale:{sale}"]]["customer_id"],
                channel=channel,
                due_at=due_at,
                status=status,
                created_at=created,
                **values,
            )
        messages = t["messages"]
        quiet = dict(error_code=None, error_message=None, segments=None, encoding=None)
        add(
            connection,
            messages,
            "msg:rosa-thanks",
            customer_id=rosa,
            follow_up_id=shop["fu:rosa-thanks"],
            case_id=None,
            direction="outbound",
            channel="sms",
            from_address=SHOP_NUMBER,
            to_address=ROSA_PHONE,
            subject=None,
            body=ROSA_THANKED,
            provider_id="SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
            status="sent",
            error_code=None,
            error_message=None,
            segments=1,
            encoding="GSM-7",
            created_at=utc(11, 17, 14, 0, 2),
            status_updated_at=utc(11, 17, 14, 0, 5),
        )
        add(
            connection,
            messages,
            "msg:rosa-reply",
            customer_id=rosa,
            follow_up_id=shop["fu:rosa-thanks"],
            case_id=rosa_case,
            direction="inbound",
            channel="sms",
            from_address=ROSA_PHONE,
            to_address=SHOP_NUMBER,
            subject=None,
            body=ROSA_REPLY,
            provider_id="SM9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            status="received",
            created_at=utc(11, 17, 18, 20),
            status_updated_at=None,
            **quiet,
        )
        add(
            connection,
            messages,
            "msg:luis-failed",
            customer_id=luis,
            follow_up_id=shop["fu:luis-thanks"],
            case_id=None,
            direction="outbound",
            channel="email",
            from_address=SHOP_EMAIL,
            to_address=LUIS_EMAIL,
            subject="Gracias por tu compra en Mi Tienda",
            body="Hola Luis:\n\nGracias por comprar Parlante bluetooth.",
            provider_id=None,
            status="failed",
            error_code="451",
            error_message="451 4.3.0 mail server temporarily unavailable",
            segments=None,
            encoding=None,
            created_at=utc(11, 21, 16, 40),
            status_updated_at=utc(11, 21, 16, 40),
        )
        add(
            connection,
            messages,
            "msg:luis-question",
            customer_id=luis,
            follow_up_id=None,
            case_id=luis_case,
            direction="inbound",
            channel="email",
            from_address=LUIS_EMAIL,
            to_address=SHOP_EMAIL,
            subject="Factura",
            body=LUIS_QUESTION,
            provider_id="<CAFx7q2p@mail.example.pe>",
            status="received",
            created_at=utc(11, 22, 14, 10),
            status_updated_at=None,
            **quiet,
        )
        add(
            connection,
            messages,
            "msg:carmen-baja",
            customer_id=carmen,
            follow_up_id=None,
            case_id=None,
            direction="inbound",
            channel="sms",
            from_address=CARMEN_PHONE,
            to_address=SHOP_NUMBER,
            subject=None,
            body="BAJA",
            provider_id="SM00112233445566778899aabbccddeeff",
            status="received",
            created_at=utc(11, 22, 16),
            status_updated_at=None,
            **quiet,
        )
        add(
            connection,
            t["case_notes"],
            "note",
            case_id=rosa_case,
            author_id=ana,
            body="Mandó foto de la puerta rota; pedimos el repuesto.",
            created_at=utc(11, 18, 14, 20),
        )
        add(
            connection,
            t["remedies"],
            "remedy",
            case_id=rosa_case,
            kind="replacement",
            description="Puerta de repuesto, sin costo",
            value=Decimal("120.00"),
            granted_by_id=ana,
            approved_by_id=owner,
            created_at=utc(11, 19, 19),
        )
        for name, at, actor, action, entity_type, entity_id, details in (
            (
                "audit:sale",
                utc(11, 16, 14),
                "api:Tienda online",
                "sale.record",
                "sale",
                shop["sale:S-1001"],
                {"external_id": "S-1001"},
            ),
            (
                "audit:resolve",
                utc(11, 19, 20),
                f"user:{ana}",
                "case.resolve",
                "case",
                rosa_case,
                {"outcome": RESOLVED_AS},
            ),
            (
                "audit:opt-out",
                utc(11, 22, 16),
                "webhook:twilio",
                "consent.opt_out",
                "customer",
                carmen,
                {"channel": "sms", "via": CARMEN_VIA},
            ),
        ):
            add(
                connection,
                t["audit_log"],
                name,
                at=at,
                actor=actor,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                details=details,
            )
        # Every table of the first schema has rows: none is left out of what is checked.
        assert set(shop.rows) == set(t) - {"alembic_version"}
    return shop
