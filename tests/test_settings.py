"""Settings the owner edits in the admin: checked like the file, stored only where they differ
from it, followed by every process within seconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.db import make_session_factory
from scheduler.models import AuditEntry, Setting
from scheduler.settings import LiveSettings, SettingsError, apply, load_overrides, save
from scheduler.worker import Worker
from tests.browsing import fresh, submit

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_an_edit_is_stored_only_where_it_differs_from_the_file(
    session: Session, config: Config
) -> None:
    result = save(
        session,
        config,
        {"business": {"name": "Casa Rosa", "timezone": config.business.timezone}},
        actor="user:1",
        now=NOW,
    )
    session.commit()
    assert result.business.name == "Casa Rosa"
    assert load_overrides(session) == {"business": {"name": "Casa Rosa"}}
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "settings.change")).one()
    assert entry.details["changes"] == {"business.name": {"from": "Mi Tienda", "to": "Casa Rosa"}}
    # Set back to the file's value: the key follows the file again.
    save(session, config, {"business": {"name": "Mi Tienda"}}, actor="user:1", now=NOW)
    session.commit()
    assert load_overrides(session) == {}


def test_bad_edits_are_named_and_nothing_is_saved(session: Session, config: Config) -> None:
    with pytest.raises(SettingsError) as refused:
        save(
            session,
            config,
            {
                "business": {"send_window": "20:00-09:00", "name": "Casa Rosa"},
                "cases": {"first_response_hours": "pronto"},
                "database": {"url": "sqlite://"},
            },
            actor="user:1",
            now=NOW,
        )
    assert refused.value.problems == {
        "business.send_window": "start must be before end",
        "cases.first_response_hours": "expected a number above 0, at most 8760",
        "database.url": "cannot be changed from the admin",
    }
    session.rollback()
    assert session.scalars(select(Setting)).all() == []


@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "-1", "9000"])
def test_hours_must_be_a_real_span(session: Session, config: Config, value: str) -> None:
    from web.admin.settings import _number

    with pytest.raises(SettingsError) as refused:
        save(session, config, {"cadences": {"min_gap_hours": _number(value)}}, actor="u", now=NOW)
    assert refused.value.problems == {
        "cadences.min_gap_hours": "expected a number from 0 to 8760 (0 turns it off)"
    }


def test_a_stored_value_no_longer_valid_is_skipped(session: Session, config: Config) -> None:
    session.add_all(
        [
            Setting(
                section="business",
                key="send_window",
                value="nonsense",
                updated_at=NOW,
                updated_by="user:1",
            ),
            Setting(
                section="business",
                key="name",
                value="Casa Rosa",
                updated_at=NOW,
                updated_by="user:1",
            ),
        ]
    )
    session.commit()
    result = apply(config, load_overrides(session))
    assert result.business.name == "Casa Rosa"
    assert str(result.business.send_window) == str(config.business.send_window)


def test_live_settings_follow_an_edit_within_seconds(engine: Engine, config: Config) -> None:
    sessions = make_session_factory(engine)
    moment = [0.0]
    live = LiveSettings(config, sessions, clock=lambda: moment[0])
    first = live.current()
    assert first.business.name == "Mi Tienda" and live.current() is first
    with sessions.begin() as session:  # another process saves an edit
        save(session, config, {"business": {"name": "Casa Rosa"}}, actor="user:1", now=NOW)
    moment[0] = 4.9
    assert live.current() is first  # not re-read yet
    moment[0] = 5.0
    assert live.current().business.name == "Casa Rosa"
    assert live.overridden() == {"business": {"name": "Casa Rosa"}}


def test_the_worker_follows_an_edit(engine: Engine, config: Config) -> None:
    worker = Worker(engine, LiveSettings.from_engine(engine, config))
    with make_session_factory(engine).begin() as session:
        save(session, config, {"cadences": {"min_gap_hours": 2}}, actor="user:1", now=NOW)
    worker.settings.forget()
    dispatcher = worker._current()
    assert dispatcher.config.cadences.min_gap_hours == 2
    assert dispatcher.min_gap.total_seconds() == 2 * 3600
    assert worker._current() is dispatcher  # renewed only on a change


def test_settings_page_saves_and_shows_where_values_come_from(
    owner_client: FlaskClient, app: Flask
) -> None:
    page = owner_client.get("/admin/settings").get_data(as_text=True)
    assert 'name="business.name" value="Mi Tienda"' in page
    form = _posted(page)
    form |= {
        "business.name": "Casa Rosa",
        "cases.opening_hours.sun": "10:00-14:00",
        "cases.notify_emails": "ana@casarosa.pe\nluis@casarosa.pe",
    }
    answer = submit(owner_client, "/admin/settings", form, page="/admin/settings")
    assert answer.status_code == 302
    config = app.extensions["postventa"].config
    assert config.business.name == "Casa Rosa"
    assert config.cases.notify_emails == ("ana@casarosa.pe", "luis@casarosa.pe")
    assert str(config.cases.opening_hours["sun"]) == "10:00-14:00"
    page = owner_client.get("/admin/settings").get_data(as_text=True)
    assert "Settings saved" in page and "set here" in page and "file: Mi Tienda" in page
    assert "file: nothing" in page and "file: []" not in page  # the file lists nobody
    assert "<title>Settings · Casa Rosa</title>" in page


def test_settings_page_refuses_bad_values_at_the_field(
    owner_client: FlaskClient, app: Flask
) -> None:
    form = _posted(owner_client.get("/admin/settings").get_data(as_text=True))
    form |= {"business.send_window": "20:00-09:00", "business.name": "Casa Rosa"}
    answer = submit(owner_client, "/admin/settings", form, page="/admin/settings")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "start must be before end" in page
    assert 'value="20:00-09:00"' in page  # what was typed stays
    assert app.extensions["postventa"].config.business.name == "Mi Tienda"


def test_the_owner_maps_whatsapp_content_templates(owner_client: FlaskClient, app: Flask) -> None:
    sid = "HX" + "0123456789abcdef" * 2
    form = _posted(owner_client.get("/admin/settings").get_data(as_text=True))
    bad = form | {"whatsapp.content_sids": f"thanks = {sid}"}
    answer = submit(owner_client, "/admin/settings", bad, page="/admin/settings")
    assert answer.status_code == 422
    assert "is not a template and a language such as" in answer.get_data(as_text=True)
    good = form | {"whatsapp.content_sids": f'thanks/es = "{sid}"\n\ncheck_in/en = {sid}'}
    assert submit(owner_client, "/admin/settings", good, page="/admin/settings").status_code == 302
    config = app.extensions["postventa"].config
    assert config.whatsapp.content_sids == {"check_in/en": sid, "thanks/es": sid}
    page = owner_client.get("/admin/settings").get_data(as_text=True)
    assert f"thanks/es = {sid}" in page and "file: nothing" in page


def test_a_page_opened_before_anothers_save_does_not_undo_it(
    owner_client: FlaskClient, app: Flask, session: Session, config: Config
) -> None:
    import html

    page = owner_client.get("/admin/settings").get_data(as_text=True)
    stale = _posted(page)
    stale["loaded"] = html.unescape(re.search(r'name="loaded" value="([^"]*)"', page).group(1))  # type: ignore[union-attr]
    save(session, config, {"business": {"name": "Casa Rosa"}}, actor="user:2", now=NOW)
    session.commit()  # another owner, meanwhile
    stale["cases.escalation_levels"] = "3"
    assert submit(owner_client, "/admin/settings", stale, page="/admin/settings").status_code == 302
    fresh(session)
    assert load_overrides(session) == {
        "business": {"name": "Casa Rosa"},
        "cases": {"escalation_levels": 3},
    }


def test_staff_cannot_open_owner_pages(staff_client: FlaskClient) -> None:
    assert staff_client.get("/admin/settings").status_code == 403
    assert "Settings" not in staff_client.get("/inbox").get_data(as_text=True)


def _posted(page: str) -> dict[str, object]:
    """The form's current values, as a browser would post them unchanged."""
    form: dict[str, object] = {}
    for name, value in re.findall(r'<input name="([^"]+)" value="([^"]*)"', page):
        form[name] = value
    for name, value in re.findall(r'<textarea name="([^"]+)" rows="2" >([^<]*)</textarea>', page):
        form[name] = value
    checked = re.findall(
        r'<input type="checkbox" name="([^"]+)"(?: value="([^"]+)")? checked>', page
    )
    for name, value in checked:
        if value:
            days = form.setdefault(name, [])
            assert isinstance(days, list)
            days.append(value)
        else:
            form[name] = "on"
    for name, value in re.findall(
        r'<input type="radio" name="([^"]+)" value="([^"]+)" checked>', page
    ):
        form[name] = value
    form["business.locale"] = "es"
    return form
