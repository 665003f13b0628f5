"""Orders exports as Shopify and WooCommerce write them, written for the tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

SHOPIFY_HEADER = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,"
    "Currency,Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,"
    "Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem compare at price,"
    "Lineitem sku,Lineitem requires shipping,Lineitem taxable,Lineitem fulfillment status,"
    "Billing Name,Billing Street,Billing Address1,Billing Address2,Billing Company,Billing City,"
    "Billing Zip,Billing Province,Billing Country,Billing Phone,Shipping Name,Shipping Street,"
    "Shipping Address1,Shipping Address2,Shipping Company,Shipping City,Shipping Zip,"
    "Shipping Province,Shipping Country,Shipping Phone,Notes,Note Attributes,Cancelled at,"
    "Payment Method,Payment Reference,Refunded Amount,Vendor,Outstanding Balance,Employee,"
    "Location,Device ID,Id,Tags,Risk Level,Source,Lineitem discount,Tax 1 Name,Tax 1 Value,"
    "Tax 2 Name,Tax 2 Value,Tax 3 Name,Tax 3 Value,Tax 4 Name,Tax 4 Value,Tax 5 Name,"
    "Tax 5 Value,Phone,Receipt Number,Duties,Billing Province Name,Shipping Province Name,"
    "Payment ID,Payment Terms Name,Next Payment Due At,Payment References"
).split(",")


def shopify_lines(
    number: int,
    *,
    items: Iterable[tuple[str, str, int, str]] = (
        ("LAV-9", "Lavadora EcoWash 9 kg", 1, "1899.00"),
    ),
    email: str = "rosa@example.pe",
    phone: str = "+51987654321",
    status: str = "paid",
    paid_at: str = "2026-11-20 15:30:12 -0500",
    currency: str = "PEN",
    cancelled_at: str = "",
    billing_name: str = "Rosa Quispe",
) -> list[dict[str, str]]:
    """One order as Shopify exports it: a line per item, the order's fields on the first."""
    lines = []
    items = list(items)
    total = sum(float(price) * quantity for _sku, _name, quantity, price in items)
    for index, (sku, name, quantity, price) in enumerate(items):
        row = dict.fromkeys(SHOPIFY_HEADER, "")
        row |= {
            "Name": f"#{number}",
            "Email": email,
            "Lineitem quantity": str(quantity),
            "Lineitem name": name,
            "Lineitem price": price,
            "Lineitem sku": sku,
            "Lineitem requires shipping": "true",
            "Lineitem taxable": "true",
            "Lineitem fulfillment status": "pending",
            "Created at": paid_at,
        }
        if index == 0:
            row |= {
                "Financial Status": status,
                "Paid at": paid_at if status != "pending" else "",
                "Fulfillment Status": "unfulfilled",
                "Accepts Marketing": "no",
                "Currency": currency,
                "Subtotal": f"{total:.2f}",
                "Shipping": "0.00",
                "Taxes": "0.00",
                "Total": f"{total:.2f}",
                "Billing Name": billing_name,
                "Billing Zip": "'15074",  # as Shopify writes it, guarded against spreadsheets
                "Billing Country": "PE",
                "Billing Phone": phone,
                "Shipping Name": billing_name,
                "Cancelled at": cancelled_at,
                "Payment Method": "Shopify Payments",
                "Id": str(5_100_000_000 + number),
                "Risk Level": "Low",
                "Source": "web",
                "Phone": phone,
            }
        lines.append(row)
    return lines


WOOCOMMERCE_HEADER = (
    "order_id,order_number,order_date,paid_date,status,shipping_total,shipping_tax_total,"
    "fee_total,fee_tax_total,tax_total,cart_discount,order_discount,discount_total,order_total,"
    "order_subtotal,order_currency,payment_method,payment_method_title,transaction_id,"
    "customer_ip_address,customer_user_agent,shipping_method,customer_id,customer_user,"
    "customer_email,billing_first_name,billing_last_name,billing_company,billing_email,"
    "billing_phone,billing_address_1,billing_address_2,billing_postcode,billing_city,"
    "billing_state,billing_country,shipping_first_name,shipping_last_name,shipping_company,"
    "shipping_phone,shipping_address_1,shipping_address_2,shipping_postcode,shipping_city,"
    "shipping_state,shipping_country,customer_note,line_item_1,line_item_2,line_item_3"
).split(",")


def woocommerce_line(
    order_id: int,
    *,
    items: Iterable[str] = (
        "name:Lavadora EcoWash|product_id:12|sku:LAV-9|quantity:1|total:1899.00",
    ),
    status: str = "completed",
    date: str = "2026-11-20 15:30:00",
    email: str = "ana@example.pe",
    phone: str = "987654321",
    currency: str = "PEN",
    total: str = "1899.00",
) -> dict[str, str]:
    """One order as WooCommerce's orders export writes it: a line, each item in a cell."""
    row = dict.fromkeys(WOOCOMMERCE_HEADER, "")
    row |= {
        "order_id": str(order_id),
        "order_number": str(order_id),
        "order_date": date,
        "paid_date": date,
        "status": status,
        "order_total": total,
        "order_currency": currency,
        "payment_method": "bacs",
        "customer_email": email,
        "billing_first_name": "Ana",
        "billing_last_name": "Díaz",
        "billing_email": email,
        "billing_phone": phone,
        "billing_country": "PE",
    }
    for index, item in enumerate(items, start=1):
        row[f"line_item_{index}"] = item
    return row


def as_csv(header: list[str], rows: Iterable[dict[str, str]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, header)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
