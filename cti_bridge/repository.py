"""SQL of the CTI bridge: extensions, and caller lookup through the phone index."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    ScalarSelect,
    Select,
    SQLColumnExpression,
    bindparam,
    case,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.orm import Session

from cti_bridge.models import Extension
from eakte.auth.principal import CLEARANCE_LEVELS
from eakte.contacts.models import Contact, ContactPhone
from eakte.files.models import File, FileContact, FileStatus
from eakte.orgunits.models import OrgUnit

# More contacts than this sharing one number is an address book problem, not a pop-up.
MAX_CONTACTS_PER_NUMBER = 20


def extension(session: Session, number: str) -> Extension | None:
    """The mapping of an extension, if any."""
    return session.scalar(select(Extension).where(Extension.extension == number))


def extensions(session: Session) -> Sequence[Extension]:
    """Every mapped extension by number."""
    return session.scalars(select(Extension).order_by(Extension.extension)).all()


def extensions_of(session: Session, subject: str) -> Sequence[Extension]:
    """The extensions a clerk answers."""
    return session.scalars(
        select(Extension).where(Extension.subject == subject).order_by(Extension.extension)
    ).all()


def _unit_codes(dialect: str) -> Select[tuple[str]]:
    """The org-unit codes of the extension's clerk, unnested from its JSON list in SQL."""
    if dialect == "postgresql":
        codes = func.json_array_elements_text(Extension.units).table_valued("value")
    else:
        codes = func.json_each(Extension.units).table_valued("value")
    return (
        select(codes.c.value)
        .select_from(Extension)
        .join(codes, true())
        .where(Extension.extension == bindparam("extension"))
    )


def _level_rank(level: SQLColumnExpression[str], unknown: int) -> ColumnElement[int]:
    """The position of a confidentiality level in CLEARANCE_LEVELS; `unknown` for others."""
    ranks = {name: rank for rank, name in enumerate(CLEARANCE_LEVELS)}
    return case(ranks, value=level, else_=unknown)


def _cleared_rank() -> ScalarSelect[int]:
    """The rank of the extension's clearance; NULL (nothing cleared) if it is unmapped."""
    # An unknown clearance counts as the lowest level, as for a principal's token.
    return (
        select(_level_rank(Extension.clearance, unknown=0))
        .where(Extension.extension == bindparam("extension"))
        .scalar_subquery()
    )


@cache
def _caller_lookup_statement(dialect: str) -> Select[Any]:
    # Built once per dialect with bound parameters: constructing the statement and its
    # cache key anew for every call cost more than running it.
    phones = (
        select(ContactPhone.contact_id)
        .where(ContactPhone.e164 == bindparam("e164"))
        .limit(MAX_CONTACTS_PER_NUMBER)
        .subquery()
    )
    unit_ids = select(OrgUnit.id).where(OrgUnit.code.in_(_unit_codes(dialect)))
    visible = (
        select(
            FileContact.contact_id,
            File.id,
            File.reference,
            File.title,
            File.last_activity_at,
        )
        .join(File, File.id == FileContact.file_id)
        .where(
            File.status == FileStatus.OPEN.value,
            File.org_unit_id.in_(unit_ids),
            # A file of an unknown level ranks above every clearance: never shown.
            _level_rank(File.confidentiality, unknown=len(CLEARANCE_LEVELS)) <= _cleared_rank(),
        )
        .subquery()
    )
    clerk = (
        select(Extension.subject)
        .where(Extension.extension == bindparam("extension"))
        .scalar_subquery()
    )
    # One row to start from, so that the statement returns the extension's clerk even when
    # no contact has the number (or none is looked for): the pop-up goes to that clerk.
    start = select(literal(1).label("one")).subquery("start")
    return (
        select(
            Contact.id,
            Contact.name,
            visible.c.id,
            visible.c.reference,
            visible.c.title,
            clerk,
        )
        .select_from(start)
        .outerjoin(phones, true())
        .outerjoin(Contact, phones.c.contact_id == Contact.id)
        .outerjoin(visible, visible.c.contact_id == Contact.id)
        # NULLS LAST spelled portably: contacts without a visible file sort after files.
        .order_by(
            case((visible.c.id.is_(None), 1), else_=0),
            visible.c.last_activity_at.desc(),
            Contact.name,
            visible.c.id,
        )
        .limit(bindparam("rows", type_=Integer))
    )


LookupRow = tuple[
    uuid.UUID | None, str | None, uuid.UUID | None, str | None, str | None, str | None
]
#: (e164 or None, extension, max files) -> lookup rows
CallerFinder = Callable[[str | None, str, int], Sequence[LookupRow]]


def _lookup_params(e164: str | None, extension: str, limit: int) -> dict[str, Any]:
    return {"e164": e164, "extension": extension, "rows": limit * 3 + MAX_CONTACTS_PER_NUMBER}


def caller_lookup(
    session: Session, e164: str | None, extension: str, limit: int
) -> Sequence[LookupRow]:
    """The contacts with this number and their open files the extension's clerk may see.

    One statement, one round trip: returns (contact id, contact name, file id, reference,
    title, clerk) rows, the most recently active file first and contacts without a visible
    file last (by name), so the first row names the likeliest caller whether or not a
    file is visible. With no contact (or no number, e164 None) it returns one row with
    only the clerk, who is None if the extension is unmapped. Files are limited to the org
    units and the clearance of the extension's mapping (none if unmapped). The phone
    index (contact_phones.e164) finds the contacts, file_contacts.contact_id their files;
    a file linked in several roles appears once per role, so callers de-duplicate.
    """
    stmt = _caller_lookup_statement(session.get_bind().dialect.name)
    # Core execution on the connection: nothing here needs the ORM layer.
    rows = session.connection().execute(stmt, _lookup_params(e164, extension, limit)).all()
    return [tuple(row) for row in rows]


class PostgresCallerLookup:
    """`caller_lookup` on PostgreSQL, run on a pooled psycopg connection directly.

    Every ringing call runs this statement. Through a Session it cost about 0.5 ms of
    the bridge's CPU per call, a third of that in the database round trip; compiled once
    and run as a prepared statement on the DBAPI connection it costs 0.16 ms, and the
    bridge is CPU-bound on exactly this path. PostgreSQL returns uuid columns as UUIDs,
    so the rows need no type processing. The engine runs in autocommit: one round trip.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        compiled = _caller_lookup_statement("postgresql").compile(dialect=engine.dialect)
        self._sql = str(compiled)
        self._constants = dict(compiled.params)

    def __call__(self, e164: str | None, extension: str, limit: int) -> Sequence[LookupRow]:
        params = {**self._constants, **_lookup_params(e164, extension, limit)}
        for attempt in (1, 2):
            conn = self.engine.raw_connection()
            try:
                cursor = conn.cursor()
                try:
                    cursor.execute(self._sql, params, prepare=True)  # type: ignore[call-arg]
                    return cursor.fetchall()
                finally:
                    cursor.close()
            except self.engine.dialect.loaded_dbapi.OperationalError:
                # The pool does not ping before each use (a round trip per call): a
                # connection the server dropped (restart) fails once and is discarded,
                # and the retry gets a fresh one.
                conn.invalidate()
                if attempt == 2:
                    raise
            finally:
                conn.close()
        raise AssertionError("unreachable")
