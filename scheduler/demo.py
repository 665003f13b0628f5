"""Demo customers and sales, so that a fresh `make run` has something to show."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.sending.sales import SaleInput, record_sale

# (external id, days ago, name, phone, email, locale, time zone, sku, product, amount, currency)
_DEMO_SALES = [
    (
        "demo-0001",
        0,
        "Rosa Quispe",
        "+51987654321",
        None,
        "es",
        None,
        "LAV-9",
        "Lavadora EcoWash 9 kg",
        "1899.00",
        "PEN",
    ),
    (
        "demo-0002",
        1,
        "Jorge Salazar",
        "+51987654322",
        "jorge@example.pe",
        "es",
        None,
        "ASP-T",
        "Aspiradora Turbo",
        "459.90",
        "PEN",
    ),
    (
        "demo-0003",
        6,
        "Lucía Fernández",
        None,
        "lucia@example.pe",
        "es",
        None,
        "MANT-1Y",
        "Plan de mantenimiento anual",
        "240.00",
        "PEN",
    ),
    (
        "demo-0004",
        8,
        "Emily Carter",
        "+13055550142",
        "emily@example.com",
        "en",
        "America/New_York",
        "LAV-9",
        "EcoWash 9 kg washer",
        "649.00",
        "USD",
    ),
    (
        "demo-0005",
        20,
        "Miguel Torres",
        "+51987654323",
        None,
        "es",
        None,
        "ASP-T",
        "Aspiradora Turbo",
        "459.90",
        "PEN",
    ),
    (
        "demo-0006",
        89,
        "David Brown",
        "+12025550143",
        None,
        "en",
        "America/Chicago",
        "MANT-1Y",
        "Annual maintenance plan",
        "99.00",
        "USD",
    ),
]


# The yearly maintenance plan renews: its buyers get the renewal reminder 14 days before.
_RENEWAL_DAYS = {"MANT-1Y": 365}


def add_demo_data(session: Session, config: Config, now: datetime) -> int:
    """Add the demo sales that are not there yet; returns how many were added."""
    added = 0
    for (
        external_id,
        days_ago,
        name,
        phone,
        email,
        locale,
        zone,
        sku,
        product,
        amount,
        currency,
    ) in _DEMO_SALES:
        sale = SaleInput(
            external_id=external_id,
            sold_at=now - timedelta(days=days_ago, hours=2),
            customer_name=name,
            phone=phone,
            email=email,
            locale=locale,
            timezone=zone,
            product_sku=sku,
            product_name=product,
            renewal_days=_RENEWAL_DAYS.get(sku),
            amount=Decimal(amount),
            currency=currency,
            attributes={"demo": True},
        )
        added += record_sale(session, sale, config=config, now=now, actor="demo")[1]
    return added
