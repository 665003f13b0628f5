"""End to end in a real browser: `postventa run` on the embedded default, driven by Playwright
in headless Chromium (Debian's package; `make test` installs it when missing).

The owner sets Postventa up, adds a staff login, creates a cadence and records a sale; the
customer complains by SMS and again on WhatsApp (the outbox's simulated replies) and by email
(delivered into a real IMAP server, Dovecot, that the worker reads); the staff member sees the
three in one case, answers on WhatsApp inside its window, gives a remedy and resolves the
case, and the answer reaches the outbox. Screenshots of the main pages
are taken on the way (into docs/screenshots/ with POSTVENTA_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.imap_server import HOST as IMAP_HOST
from tests.imap_server import PASSWORD as IMAP_PASSWORD
from tests.imap_server import USER as IMAP_USER
from tests.imap_server import Dovecot, dovecot
from tests.processes import free_port

playwright_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium keeps calling Google's hosts, which this
# machine's closed network refuses, many at a time.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OWNER = ("duena@tienda.pe", "clave de la duena")
STAFF = ("luis@tienda.pe", "clave de luis 1")
JORGE = "jorge.salas@correo.example.pe"  # an address that bounces
PHONE_WIDTH = 375

pytestmark = pytest.mark.slow
__all__ = ["dovecot"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dovecot: Dovecot) -> Iterator[str]:
    """`postventa run` on a fresh SQLite database, the worker passing every second, WhatsApp
    to the outbox and email replies read from the test's Dovecot (its certificate trusted as
    the system's would be)."""
    home = tmp_path_factory.mktemp("e2e")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = home / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{home / "postventa.db"}"\n'
        f'[business]\npublic_url = "{base}"\nname = "Cocinas Rosales"\n'
        f'send_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
        f'[worker]\ntick_seconds = 1\n[cases]\nnotify_emails = ["equipo@tienda.pe"]\n'
        f'[whatsapp]\ntransport = "outbox"\n'
        f'[email.inbound]\ntransport = "imap"\nreply_to = "{IMAP_USER}"\n'
        f'imap_host = "{IMAP_HOST}"\nimap_port = {dovecot.imaps_port}\n'
        f'username = "{IMAP_USER}"\npassword = "{IMAP_PASSWORD}"\n',
        encoding="utf-8",
    )
    environment = os.environ | {"SSL_CERT_FILE": str(dovecot.certificate)}
    postventa = str(Path(sys.executable).parent / "postventa")
    subprocess.run(
        [postventa, "--config", str(config), "init"], check=True, cwd=home, capture_output=True
    )
    log = home / "run.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [postventa, "--config", str(config), "run", "--port", str(port)],
            cwd=home,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError("postventa run did not start: " + log.read_text()) from None
            time.sleep(0.1)
    yield base
    process.terminate()
    assert process.wait(timeout=30) == 0  # stopped cleanly on SIGTERM


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    if os.environ.get("POSTVENTA_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path


def _logged_in(browser: object, server: str, who: tuple[str, str]) -> Any:
    """A new page of a desktop's size, logged in as `who` (email, password)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page.goto(server + "/login")
    page.fill("input[name=email]", who[0])
    page.fill("input[name=password]", who[1])
    page.click("button[type=submit]")
    return page


def _reload_until(page: Any, url: str, text: str, seconds: float = 15) -> None:
    """Open `url` until it shows `text`: the worker sends within a second or two."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(url)
        if text in page.content():
            return
        assert time.monotonic() < deadline, f"{url} never showed {text!r}"
        page.wait_for_timeout(250)


def _record_sale(page: Any, server: str, fields: dict[str, str]) -> None:
    """A sale by hand, sold an hour ago in Lima; its customer's page shows it."""
    sold = datetime.now(ZoneInfo("America/Lima")) - timedelta(hours=1)
    page.goto(server + "/sales/new")
    for name, value in fields.items():
        page.fill(f"input[name={name}]", value)
    page.fill("input[name=sold_at]", sold.strftime("%Y-%m-%dT%H:%M"))
    page.click("form.card button[type=submit]")
    playwright_api.expect(page.locator(".timeline")).to_contain_text(fields["external_id"])


def _fits_a_phone(page: object) -> bool:
    return bool(
        page.evaluate(  # type: ignore[attr-defined]
            "document.documentElement.scrollWidth <= window.innerWidth + 1"
        )
    )


CELLS_OUT_OF_SIGHT = """() => [...document.querySelectorAll('td')]
    .filter(cell => cell.textContent.trim() || cell.querySelector('input, select, button'))
    .filter(cell => { const box = cell.getBoundingClientRect();
                      return box.width < 1 || box.left < 0 || box.right > innerWidth + 1; })
    .map(cell => cell.textContent.trim().slice(0, 40))"""
STEP_ERRORS = """() => [...document.querySelectorAll('table.steps .problem')].map(problem => {
    const box = problem.getBoundingClientRect();
    const field = problem.closest('td').querySelector('input, select').getBoundingClientRect();
    const under = box.top >= field.bottom && box.top - field.bottom <= 8
                  && box.left < field.right && box.right > field.left;
    return [problem.textContent, under && box.left >= 0 && box.right <= innerWidth];
})"""
SCROLLS_SIDEWAYS = """() =>
    [document.documentElement, ...document.querySelectorAll('.table-scroll')]
    .some(box => box.scrollWidth > box.clientWidth + 1)"""


def _cells_out_of_sight(page: Any) -> list[str]:
    """Table cells with something in them that are hidden or reach past an edge of the window
    (a page can have no scroll bar and still hide a column or let a table scroll inside)."""
    return list(page.evaluate(CELLS_OUT_OF_SIGHT))


def _narrow_inputs(page: Any) -> list[str]:
    """Text inputs narrower than 150 px, or an empty list; fails on a page without any."""
    widths = page.evaluate("""() => [...document.querySelectorAll('input, textarea')]
        .filter(field => !['hidden', 'checkbox', 'radio'].includes(field.type))
        .map(field => [field.name, field.getBoundingClientRect().width])""")
    assert widths, page.url
    return [f"{name}: {width:.0f} px" for name, width in widths if width < 150]


def test_owner_sets_up_staff_resolves_a_complaint(
    server: str, browser: object, shots: Path, dovecot: Dovecot
) -> None:
    expect = playwright_api.expect
    owner = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    owner.goto(server + "/")
    assert owner.url.endswith("/setup")  # the first run asks for its owner
    owner.fill("input[name=email]", OWNER[0])
    owner.fill("input[name=password]", OWNER[1])
    owner.fill("input[name=confirm]", OWNER[1])
    owner.select_option("select[name=locale]", "es")
    owner.click("button[type=submit]")
    expect(owner.locator("html")).to_have_attribute("lang", "es")

    # A staff login.
    owner.goto(server + "/admin/users")
    owner.fill("form.card input[name=email]", STAFF[0])
    owner.select_option("form.card select[name=role]", "staff")
    owner.select_option("form.card select[name=locale]", "en")
    owner.fill("form.card input[name=password]", STAFF[1])
    owner.click("form.card button[type=submit]")
    expect(owner.locator("table")).to_contain_text(STAFF[0])
    assert _narrow_inputs(owner) == []  # the password of each row too, next to its selects
    owner.goto(server + "/admin/words")
    assert _narrow_inputs(owner) == []

    # A cadence for kitchens: a thank-you two hours after the sale, a check-in on day 5.
    owner.goto(server + "/admin/cadences/new")
    owner.fill("input[name=name]", "Cocinas")
    owner.fill("input[name=product_category]", "cocinas")
    keys, days = (
        owner.locator("input[name=step_key]"),
        owner.locator("input[name=step_offset_days]"),
    )
    hours, templates = (
        owner.locator("input[name=step_offset_hours]"),
        owner.locator("select[name=step_template_name]"),
    )
    keys.nth(0).fill("gracias")
    days.nth(0).fill("0")
    hours.nth(0).fill("2")
    templates.nth(0).select_option("thanks")
    keys.nth(1).fill("dia5")
    days.nth(1).fill("5")
    templates.nth(1).select_option("check_in")
    owner.click("form.card button[type=submit]")
    expect(owner.locator(".cadence-timeline")).to_contain_text("dia5")
    owner.screenshot(path=str(shots / "cadence.png"), full_page=True)
    # A bad step: each error shows under its own field, and the steps need no sideways scroll.
    keys.nth(2).fill("dia 9!")
    days.nth(2).fill("nueve")
    templates.nth(2).select_option("thanks")
    owner.locator("input[name=step_condition]").nth(2).fill("score >>> 9")
    owner.click("form.card button[type=submit]")
    expect(owner.locator(".flash.error")).to_be_visible()
    errors = owner.evaluate(STEP_ERRORS)
    assert len(errors) == 3  # the key, the offset, the condition
    assert [text for text, under_its_field in errors if not under_its_field] == []
    assert not owner.evaluate(SCROLLS_SIDEWAYS)
    owner.goto(server + "/admin/cadences")
    owner.screenshot(path=str(shots / "cadences.png"), full_page=True)

    kitchen = {"product_name": "Cocina Rosales 4 hornillas", "product_sku": "COC-4"}
    rosa = {
        "external_id": "E2E-1",
        "customer_name": "Rosa Quispe",
        "phone": "987 654 321",
        "email": "rosa.quispe.huaman@correo.example.pe",
        "amount": "1299",
        "currency": "PEN",
    }
    _record_sale(owner, server, rosa | kitchen)
    owner.screenshot(path=str(shots / "customer.png"), full_page=True)
    # Another customer, whose email address will bounce: one at risk, who never complains.
    jorge = {"external_id": "E2E-2", "customer_name": "Jorge Salas", "email": JORGE}
    _record_sale(owner, server, jorge | kitchen)

    # The customer complains; the outbox receives it as the SMS webhook would.
    owner.goto(server + "/outbox")
    owner.fill("input[name=sender]", "+51987654321")
    owner.fill("textarea[name=body]", "la cocina llego con una hornilla rota, pesimo")
    owner.click("form.card button[type=submit]")
    # Then on WhatsApp, and by email: all three reach the same case.
    owner.fill("input[name=sender]", "+51987654321")
    owner.check("input[name=channel][value=whatsapp]")
    owner.fill(
        "textarea[name=body]", "y la puerta del horno tampoco cierra, la hornilla rota igual"
    )
    owner.click("form.card button[type=submit]")
    expect(owner.locator(".flash")).to_contain_text("WhatsApp")
    mail = EmailMessage()
    mail["From"] = "Rosa Quispe <rosa.quispe.huaman@correo.example.pe>"
    mail["To"], mail["Subject"] = IMAP_USER, "Mi cocina"
    mail["Message-ID"] = "<e2e-rosa-1@correo.example.pe>"
    mail.set_content("Les mando la foto de la hornilla rota. ¿Cuándo vienen a verla?")
    mail.add_attachment(b"\xff\xd8\xff", maintype="image", subtype="jpeg", filename="hornilla.jpg")
    dovecot.deliver(bytes(mail))
    bounce = EmailMessage()
    bounce["From"] = "Mail Delivery System <MAILER-DAEMON@correo.example.pe>"
    bounce["To"], bounce["Subject"] = IMAP_USER, "Mail delivery failed: returning message to sender"
    bounce["X-Failed-Recipients"] = JORGE
    bounce["Message-ID"] = "<e2e-bounce-1@correo.example.pe>"
    bounce.set_content(f"  {JORGE}\n    host correo.example.pe said: 550 5.1.1 User unknown\n")
    dovecot.deliver(bytes(bounce))
    owner.goto(server + "/admin/templates")
    owner.click("text=thanks >> nth=0")
    expect(owner.locator("#preview-text")).not_to_be_empty()
    owner.screenshot(path=str(shots / "template.png"), full_page=True)
    owner.goto(server + "/admin/settings")
    owner.screenshot(path=str(shots / "settings.png"))
    owner.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    for path in (
        "/",
        "/admin/settings",
        "/admin/cadences",
        "/admin/cadences/2",
        "/admin/audit",
        "/admin/users",
        "/admin/tokens",
        "/admin/templates",
        "/admin/words",
        "/sales/new",
        "/sales/import",
        "/account",
    ):
        owner.goto(server + path)
        assert _fits_a_phone(owner), path
        if path != "/admin/cadences/2":  # its steps table scrolls on its own on a phone
            assert _cells_out_of_sight(owner) == [], path
    owner.close()

    # Staff answer, give a remedy within their limit, and resolve.
    staff = _logged_in(browser, server, STAFF)
    staff.goto(server + "/inbox")
    expect(staff.locator(".cases")).to_contain_text("Rosa Quispe")
    expect(staff.locator(".cases")).to_contain_text("hornilla rota")
    # The filter is in the URL; a search finds the case by its words, the note goes to the
    # cases ticked; the title counts the cases waiting.
    expect(staff).to_have_title(re.compile(r"^\(1\) Inbox"))
    staff.fill("input[name=q]", "hornilla rosa")
    staff.click(".inbox-filter summary")  # the filters besides words are folded away
    staff.select_option(".inbox-filter select[name=kind]", "objection")
    staff.click(".inbox-filter button[type=submit]")
    expect(staff.locator(".matching")).to_contain_text("1 case matches")
    assert "q=hornilla+rosa" in staff.url and "kind=objection" in staff.url
    staff.check(".cases input[type=checkbox]")
    staff.click(".bulk-box summary")
    staff.select_option("select[name=action]", "note")
    staff.fill("#bulk textarea[name=text]", "Llamar en la tarde")
    staff.click("#bulk button[type=submit]")
    expect(staff.locator(".flash")).to_contain_text("Note added to 1 case.")
    assert "q=hornilla+rosa" in staff.url  # back to the same view
    staff.fill("input[name=q]", "nadie escribe esto")
    staff.click(".inbox-filter button[type=submit]")
    expect(staff.locator(".lead")).to_contain_text("No open case matches this filter.")
    # A new case appears on the open inbox without a reload: its clock is the browser's own,
    # moved on by the test (the page asks every 30 seconds).
    staff.clock.install()
    staff.goto(server + "/inbox")
    staff.evaluate("window.notReloaded = true")
    other = _logged_in(browser, server, OWNER)
    luis = {"external_id": "E2E-3", "customer_name": "Luis Paredes", "phone": "911 122 233"}
    _record_sale(other, server, luis | kitchen)
    other.goto(server + "/outbox")
    other.fill("input[name=sender]", "+51911122233")
    other.fill("textarea[name=body]", "la cocina no prende, pésimo")
    other.click("form.card button[type=submit]")
    other.close()
    deadline = time.monotonic() + 20  # the worker reads the reply within seconds
    while "Luis Paredes" not in staff.locator("#case-list").inner_text():
        assert time.monotonic() < deadline, "the new case never appeared"
        staff.clock.run_for(30_000)
        staff.wait_for_timeout(300)
    assert staff.evaluate("window.notReloaded") is True
    expect(staff).to_have_title(re.compile(r"^\(2\) Inbox"))
    expect(staff.locator("nav.tabs")).to_contain_text("2")
    staff.screenshot(path=str(shots / "inbox.png"), full_page=True)
    staff.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    assert _fits_a_phone(staff)
    staff.screenshot(path=str(shots / "inbox-phone.png"), full_page=True)
    staff.set_viewport_size({"width": 1280, "height": 900})
    staff.click(".cases a")
    case_url = staff.url
    _reload_until(staff, case_url, "hornilla.jpg")  # the worker fetched and read the email
    conversation = staff.locator(".conversation")
    expect(conversation).to_contain_text("la puerta del horno tampoco cierra")
    expect(conversation).to_contain_text("¿Cuándo vienen a verla?")
    expect(conversation.locator(".channel")).to_contain_text(["SMS", "WhatsApp", "email"])
    expect(staff.locator("#whatsapp-window")).to_contain_text("window closes")
    # A saved answer, kept from a phone, goes into the reply box after what was typed, written
    # for Rosa and her kitchen; edited there, it is what goes.
    staff.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    staff.goto(server + "/answers/new")
    assert _fits_a_phone(staff) and _narrow_inputs(staff) == []
    staff.fill("input[name=title]", "Hornilla")
    staff.fill(
        "textarea[name=body]",
        "{{ customer.first_name }}, mañana cambiamos la hornilla de tu {{ product.name }}.",
    )
    staff.click("#answer-form button[type=submit]")
    expect(staff.locator("#answers")).to_contain_text("Hornilla")
    staff.screenshot(path=str(shots / "answers-phone.png"), full_page=True)
    staff.set_viewport_size({"width": 1280, "height": 900})
    staff.goto(case_url)
    staff.check("input[name=channel][value=whatsapp]")
    staff.fill("textarea[name=body] >> nth=0", "Lo sentimos.")
    staff.select_option("#saved-answers select[name=answer]", label="Hornilla (es)")
    staff.click("#saved-answers button")
    box = staff.locator("textarea[name=body] >> nth=0")
    expect(box).to_have_value(
        "Lo sentimos.\n\nRosa, mañana cambiamos la hornilla de tu Cocina Rosales 4 hornillas."
    )
    expect(staff.locator("input[name=channel][value=whatsapp]")).to_be_checked()
    box.fill("Rosa, lo sentimos. Mañana cambiamos la hornilla.")
    staff.click("text=Send")
    expect(staff.locator(".flash")).to_contain_text("Reply queued")
    staff.click("text=Assign to me")
    expect(staff.locator("select[name=assignee]")).to_have_value(re.compile(r"\d+"))
    staff.select_option("select[name=kind]", "discount")
    staff.fill("input[name=value]", "10")
    staff.fill("input[name=description]", "10% en su proxima compra")
    staff.click("text=Record remedy")
    expect(staff.locator(".remedy")).to_contain_text("granted")
    staff.screenshot(path=str(shots / "case.png"), full_page=True)
    staff.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    assert _fits_a_phone(staff)
    staff.screenshot(path=str(shots / "case-phone.png"), full_page=True)
    staff.set_viewport_size({"width": 1280, "height": 900})
    staff.fill("textarea[name=outcome]", "Tecnico cambio la hornilla; 10% de descuento")
    staff.click("text=Resolve the case")
    expect(staff.locator(".status")).to_contain_text("Resolved")

    # The worker sent the answer, on WhatsApp: it is in the outbox.
    _reload_until(staff, server + "/outbox", "Mañana cambiamos la hornilla")
    expect(staff.locator("tbody")).to_contain_text("whatsapp:+51987654321")
    staff.screenshot(path=str(shots / "outbox.png"), full_page=True)
    staff.goto(server + "/customers")
    expect(staff.locator("#customer-count")).to_contain_text("customers")
    staff.screenshot(path=str(shots / "customers.png"), full_page=True)
    for path in ("/inbox", "/customers", "/answers", "/upcoming", "/outbox"):  # outbox last
        staff.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
        staff.goto(server + path)
        assert _fits_a_phone(staff), path
        assert _cells_out_of_sight(staff) == [], path
    # On a phone the outbox's messages stay readable and their channel is not cut off.
    rows = staff.evaluate("""() => [...document.querySelectorAll('tbody tr')]
        .map(row => [row.querySelector('td.text').getBoundingClientRect().width,
                     row.cells[3].getBoundingClientRect().right])""")
    assert len(rows) >= 2  # the answer to Rosa and the notice of her case
    for message, channel in rows:
        assert message >= 150 and 0 < channel <= PHONE_WIDTH, (message, channel)
    staff.close()

    # The customers at risk: Jorge, whose address bounced (the worker read the bounce).
    owner = _logged_in(browser, server, OWNER)
    _reload_until(owner, server + "/at-risk?days=7", "Jorge Salas")
    expect(owner.locator("table.at-risk")).to_contain_text("su correo rebotó")
    owner.screenshot(path=str(shots / "at-risk.png"), full_page=True)
    # The owner's dashboard (in Spanish, as the owner chose): the case just handled is counted,
    # and Rosa's complaint is about breakage and delivery of the kitchen.
    owner.goto(server + "/?days=7")
    expect(owner.locator("#figures-title")).to_contain_text("Cómo se atiende a los clientes")
    expect(owner.locator("svg.chart")).to_have_attribute("aria-label", "NPS por semana")
    expect(owner.locator(".figures .counts")).to_contain_text("casos resueltos")
    expect(owner.locator("#at-risk")).to_contain_text("Clientes en riesgo")
    expect(owner.locator("table.complaints")).to_contain_text("roturas y fallas")
    owner.screenshot(path=str(shots / "dashboard.png"), full_page=True)
    owner.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    assert _fits_a_phone(owner)
    owner.goto(server + "/at-risk?days=7")
    assert _fits_a_phone(owner)
    # One click: a case for a person, with why.
    owner.click("table.at-risk button")
    expect(owner.locator(".flash")).to_contain_text("Caso abierto")
    expect(owner.locator("h1 .tag")).to_contain_text("en riesgo")
    owner.close()
    for name in (
        "dashboard",
        "at-risk",
        "cadence",
        "customer",
        "customers",
        "answers-phone",
        "inbox",
        "inbox-phone",
        "case",
        "case-phone",
        "outbox",
        "template",
    ):
        assert (shots / f"{name}.png").stat().st_size > 5_000
