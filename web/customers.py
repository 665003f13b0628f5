"""Customers and sales in the admin: search, a customer's whole story, a sale by hand,
cancelling a sale, and consent changed on the customer's word (with the reason kept)."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import RadioField, StringField, TextAreaField

from scheduler.clock import utcnow
from scheduler.config import Config
from scheduler.consent import ERASED_CUSTOMER, ConsentError, opt_in, opt_out, staff_wording
from scheduler.customer_editing import PROFILE, AddressTaken, check_edit, edit_customer
from scheduler.customer_list import (
    COUNT_MOST,
    Sort,
    beside,
    customer_page,
    found_by,
    read_after,
)
from scheduler.db import begin_writing
from scheduler.lifecycle import Channel, ConsentSource
from scheduler.models import Customer, FollowUp, Sale
from scheduler.paging import CursorError
from scheduler.sending import column_mappings, columns, csv_import
from scheduler.sending.intake import FIELDS, validate_sale
from scheduler.sending.replanning import SaleError, cancel_sale
from scheduler.sending.sales import record_sale, skipped_as_late
from scheduler.timeline import customer_timeline
from web.auth import me, my_name
from web.database import db_session, get_or_404, services
from web.domain_texts import named, translated
from web.forms import channels_of, named_options, options
from web.list_filters import UnreadableFilter, search_text

blueprint = Blueprint("customers", __name__)
CHANNELS = named_options(Channel)


class ConsentForm(FlaskForm):  # type: ignore[misc]
    channel = RadioField("channel", choices=CHANNELS, default="sms")
    # No default: changing consent is a choice the person makes, never a pre-ticked box.
    action = RadioField("action", choices=options([("out", "out"), ("in", "in")]))
    reason = StringField("reason")


class CancelForm(FlaskForm):  # type: ignore[misc]
    reason = StringField("reason")


def find_customers(session: Session, query_text: str, limit: int) -> list[Customer]:
    """The first customers the words find, by name: a reply's match among a few."""
    query = (
        select(Customer).where(found_by(session, query_text)).order_by(Customer.name, Customer.id)
    )
    return list(session.scalars(query.limit(limit)))


@blueprint.get("/customers")
def index() -> str | tuple[str, int]:
    """The customers the search finds, latest purchase (or name) first, a page at a time; an
    order or page that cannot be read is a 400 that says so, with the first page below."""
    session = db_session()
    query_text = request.args.get("q", "").strip()
    problem, after = None, None
    try:
        search_text(query_text)
    except UnreadableFilter as unreadable:
        query_text, problem = "", str(unreadable)
    try:
        sort = Sort(request.args.get("sort") or Sort.LATEST)
    except ValueError:
        sort, problem = Sort.LATEST, _("Sort: by latest sale or by name.")
    if problem is None and request.args.get("after"):
        try:
            after = read_after(sort, request.args["after"])
        except CursorError:
            problem = _("Page: this link is not a page of the customer list.")
    page = customer_page(session, query_text, sort=sort, after=after)
    shown = render_template(
        "customers/index.html",
        page=page,
        beside=beside(session, page.customers),
        following=str(page.following) if page.following else None,
        after=after,
        q=query_text,
        sort=sort,
        problem=problem,
        count_most=COUNT_MOST,
    )
    return (shown, 400) if problem else shown


@blueprint.get("/customers/<int:customer_id>")
def show(customer_id: int) -> str:
    session, customer = db_session(), get_or_404(Customer, customer_id)
    return render_template(
        "customers/show.html",
        customer=customer,
        events=customer_timeline(session, customer_id),
        consent=_consent_form(customer),
        cancel=CancelForm(),
    )


def _consent_form(customer: Customer) -> ConsentForm:
    form = ConsentForm()
    form.channel.choices = channels_of(customer, whatsapp=True)  # a yes may come before it is on
    form.channel.default = form.channel.choices[0].value if form.channel.choices else None
    if not form.is_submitted():
        form.channel.process_data(form.channel.default)
    return form


@blueprint.post("/customers/<int:customer_id>/consent")
def consent(customer_id: int) -> BaseResponse:
    """Opt a customer out or back in, on their word to a person: who and why are kept."""
    session, customer = db_session(), get_or_404(Customer, customer_id)
    form = _consent_form(customer)
    back = redirect(url_for("customers.show", customer_id=customer_id))
    if form.action.data not in ("out", "in"):
        flash(_("Choose whether the customer opts out or back in."), "error")
        return back
    if form.channel.data not in set(Channel):
        flash(_("Choose a channel: SMS, WhatsApp or email."), "error")
        return back
    user, now, channel = me(), utcnow(), Channel(form.channel.data)
    try:
        via = staff_wording(customer, channel, form.reason.data, by=user.email)
    except ConsentError as error:
        flash(translated(error), "error")
        return back
    if form.action.data == "out":
        skipped = opt_out(
            session,
            customer,
            channel=channel,
            source=ConsentSource.STAFF,
            via=via,
            now=now,
            actor=my_name(),
        )
        flash(
            _(
                "Opted out of %(channel)s; %(count)d pending follow-ups skipped.",
                channel=named(channel),
                count=skipped,
            )
        )
    elif customer.erased_at is not None:
        flash(translated(ConsentError(ERASED_CUSTOMER)), "error")
        return back
    elif opt_in(session, customer, channel=channel, via=via, now=now, actor=my_name()):
        if channel is Channel.WHATSAPP:
            flash(_("Recorded: the customer said yes to WhatsApp."))
        else:
            flash(_("Opted back in to %(channel)s.", channel=named(channel)))
    else:
        flash(_("The customer had not opted out of %(channel)s.", channel=named(channel)))
    session.commit()
    return back


EDITABLE = ("name", "phone", "email", "locale", "timezone", "reason")


@blueprint.route("/customers/<int:customer_id>/edit", methods=["GET", "POST"])
def edit(customer_id: int) -> BaseResponse | str | tuple[str, int]:
    """A customer's contact details and language changed on someone's word: the person signed
    in is who, and why is asked every time; both go to the audit log."""
    session, customer = db_session(), get_or_404(Customer, customer_id)
    form = FlaskForm()  # the CSRF token; the fields are checked as the API's PATCH checks them
    if not form.validate_on_submit():
        values = {name: getattr(customer, name, None) or "" for name in EDITABLE}
        return render_template(
            "customers/edit.html", customer=customer, form=form, values=values, problems={}
        )
    values = {name: request.form.get(name, "") for name in EDITABLE}
    profile = {name: values[name] for name in PROFILE}
    checked = check_edit(
        profile,
        {},
        by=me().email,
        reason=values["reason"],
        region=services().config.business.country,
        why_needed=True,
    )
    problems: list[tuple[str, str]] = checked if isinstance(checked, list) else []
    if not isinstance(checked, list):
        begin_writing(session)
        session.refresh(customer, with_for_update=True)
        try:
            problems = edit_customer(session, customer, checked, now=utcnow(), actor=my_name())
        except AddressTaken as clash:
            problems = [(clash.field, _("another customer has it"))]
        except IntegrityError:  # given to someone else at the same moment
            problems = [("phone", _("another customer has it"))]
        if not problems:
            session.commit()
            flash(_("Saved: %(name)s's details.", name=customer.name))
            return redirect(url_for("customers.show", customer_id=customer_id))
        session.rollback()
    by_field: dict[str, list[str]] = {}
    for field, message in problems:
        by_field.setdefault(field, []).append(translated(message))
    page = render_template(
        "customers/edit.html", customer=customer, form=form, values=values, problems=by_field
    )
    return page, 422


@blueprint.route("/sales/new", methods=["GET", "POST"])
def new_sale() -> BaseResponse | str | tuple[str, int]:
    """A sale by hand (a shop without a till that talks to the API), checked as the API does."""
    form = FlaskForm()  # the CSRF token; the fields are checked by validate_sale, as the API's
    values = {key: request.form.get(key, "") for key in FIELDS}
    if not form.validate_on_submit():
        return render_template("customers/new_sale.html", form=form, values=values, problems={})
    config, now = services().config, utcnow()
    result = validate_sale(values, config, now=now)
    if isinstance(result, list):
        problems: dict[str, list[str]] = {}
        for field, message in result:
            problems.setdefault(field, []).append(translated(message))
        page = render_template(
            "customers/new_sale.html", form=form, values=values, problems=problems
        )
        return page, 422
    session = db_session()
    sale, created = record_sale(session, result, config=config, now=now, actor=my_name())
    session.commit()
    planned = session.scalar(
        select(func.count()).select_from(FollowUp).where(FollowUp.sale_id == sale.id)
    )
    if created:
        flash(
            _(
                "Sale %(id)s recorded: %(count)d follow-ups planned.",
                id=sale.external_id,
                count=planned or 0,
            )
        )
        _say_skipped(skipped_as_late(session, [sale]), config)
    else:
        flash(_("Sale %(id)s was already recorded; nothing changed.", id=sale.external_id))
    return redirect(url_for("customers.show", customer_id=sale.customer_id))


@blueprint.post("/sales/<int:sale_id>/cancel")
def cancel(sale_id: int) -> BaseResponse:
    session, sale = db_session(), get_or_404(Sale, sale_id)
    form = CancelForm()
    back = redirect(url_for("customers.show", customer_id=sale.customer_id))
    try:
        cancelled = cancel_sale(
            session, sale, now=utcnow(), actor=my_name(), reason=form.reason.data, by=me().email
        )
    except SaleError as error:
        flash(translated(error), "error")
        return back
    session.commit()
    flash(
        _(
            "Sale %(id)s cancelled: %(count)d follow-ups will not be sent.",
            id=sale.external_id,
            count=cancelled,
        )
    )
    return back


IMPORT_LIMIT = 5 * 1024 * 1024  # some 40 000 rows; a bigger file goes through the command line


class ImportForm(FlaskForm):  # type: ignore[misc]
    """The file, or, after a dry run, its text carried over so it need not be chosen again."""

    content = TextAreaField("content")


def allow_big_upload() -> None:
    """The import page takes files (and, after the dry run, their text) up to IMPORT_LIMIT;
    registered before the CSRF check, which reads the form first."""
    if request.endpoint == "customers.import_sales_page":
        request.max_content_length = IMPORT_LIMIT + 64 * 1024
        request.max_form_memory_size = IMPORT_LIMIT + 64 * 1024


@blueprint.route("/sales/import", methods=["GET", "POST"])
def import_sales_page() -> BaseResponse | str | tuple[str, int]:
    """Check a CSV (a dry run that shows every rejected row), then import its good rows. A
    file whose header does not say where our fields are is mapped by the owner once."""
    form = ImportForm()
    if not form.validate_on_submit():
        return render_template("customers/import.html", form=form, check=None)
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        text, encoding = csv_import.decode(upload.read(IMPORT_LIMIT + 1))
        upload.close()  # a big upload is spooled to a temporary file: let it go now
    else:
        text, encoding = form.content.data or "", request.form.get("encoding", "utf-8")
    if len(text.encode()) > IMPORT_LIMIT:
        error = _("The file is over 5 MB: import it with `postventa import-sales`.")
        return render_template("customers/import.html", form=form, check=None, error=error), 413
    form.content.data = text
    config, now, session = services().config, utcnow(), db_session()
    action = request.form.get("action")
    try:
        table = csv_import.read_table(text)
        if action in ("map", "remap"):
            return _mapping_page(form, table, encoding, action)
        saved = column_mappings.saved_mapping(session, table.header)
        # The reads end here, not after the check: a web session's transaction is a writer's,
        # which on SQLite would hold the write lock through a long check.
        session.commit()
        storing = None
        if action == "import":  # stored as it is checked, a chunk per transaction
            storing = csv_import.Storing(session, config=config, now=now, actor=my_name())
        check = csv_import.check_table(table, config, now=now, mapping=saved, storing=storing)
    except csv_import.NeedsMapping as unmapped:
        return _mapping_form(form, unmapped.table, encoding, unmapped.choices, [])
    except csv_import.UnusableFile as unusable:
        page = render_template(
            "customers/import.html", form=form, check=None, error=translated(unusable)
        )
        return page, 422
    if action == "rejected":
        return _rejected_download(check)
    if storing is None:
        return render_template(
            "customers/import.html", form=form, check=check, encoding=encoding, mapped=saved
        )
    done = storing.result()
    flash(
        _(
            "%(created)d sales imported, %(existing)d were already known, %(rejected)d rows "
            "rejected.",
            created=done.created,
            existing=done.existing,
            rejected=len(check.rejected_lines),
        )
    )
    _say_skipped(done.skipped_late, config)
    if done.differing:
        shown = "; ".join(
            f"{problem.line} ({problem.field}: {translated(problem.message)})"
            for problem in done.differing[:5]
        )
        flash(
            _(
                "Rows already recorded with other content, left as recorded (%(count)d): "
                "lines %(lines)s.",
                count=len(done.differing),
                lines=shown + ("; …" if len(done.differing) > 5 else ""),
            ),
            "warning",
        )
    if done.failure:  # the lines before it are stored (said above); importing again adds the rest
        line, failure = done.stopped_at_line, done.failure
        current_app.logger.error("import stopped at line %s: %s", line, failure)
        abort(500)
    return redirect(url_for("customers.index"))


def _mapping_page(
    form: ImportForm, table: csv_import.Table, encoding: str, action: str
) -> BaseResponse | str | tuple[str, int]:
    """`remap`: the form, as saved; `map`: save the owner's choices, then check the file."""
    session = db_session()
    if action == "remap":
        saved = column_mappings.saved_mapping(session, table.header) or {}
        choices = [saved.get(name, columns.LEAVE_OUT) for name in table.header]
        return _mapping_form(form, table, encoding, choices, [])
    choices = [request.form.get(f"column-{i}", columns.KEEP) for i in range(len(table.header))]
    problems = column_mappings.save_mapping(
        session, table.header, choices, now=utcnow(), actor=my_name()
    )
    if problems:
        return _mapping_form(form, table, encoding, choices, problems)
    session.commit()
    flash(_("The columns are mapped: files with these columns will be read the same way."))
    mapping = dict(zip(table.header, choices, strict=True))  # as just saved
    check = csv_import.check_table(table, services().config, now=utcnow(), mapping=mapping)
    return render_template(
        "customers/import.html", form=form, check=check, encoding=encoding, mapped=True
    )


def _mapping_form(
    form: ImportForm,
    table: csv_import.Table,
    encoding: str,
    choices: list[str],
    problems: list[str],
) -> tuple[str, int]:
    """The columns found, with a few values of each, and what each holds as chosen so far."""
    samples = [cells for _line, cells in table.rows[:3]]
    page = render_template(
        "customers/import.html",
        form=form,
        check=None,
        mapping=zip(table.header, choices, strict=True),
        samples=samples,
        fields=FIELDS,
        keep=columns.KEEP,
        leave_out=columns.LEAVE_OUT,
        problems=[translated(problem) for problem in problems],
        encoding=encoding,
    )
    return page, 422 if problems else 200


def _rejected_download(check: csv_import.ImportCheck) -> BaseResponse:
    """The rejected rows as a CSV, the reason in a last column, to fix in a spreadsheet."""

    def reason(problem: csv_import.RowProblem) -> str:
        message = translated(problem.message)
        return f"{problem.field}: {message}" if problem.field else message

    text = csv_import.rejected_csv(check, reason, _("rejected because"))
    return Response(
        "\ufeff" + text,  # Excel reads UTF-8 only after its BOM
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=rejected-rows.csv"},
    )


def _say_skipped(count: int, config: Config) -> None:
    if count:
        flash(
            _(
                "%(count)d follow-ups skipped: their time had passed more than %(hours)s h "
                "before the sale was recorded.",
                count=count,
                hours=format_decimal(config.cadences.late_grace_hours),
            ),
            "warning",
        )
