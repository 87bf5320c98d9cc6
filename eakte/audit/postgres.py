"""Appending audit events on PostgreSQL in one statement, without holding the head's lock.

The general path (`service.record`, chained at commit) locks the chain head, inserts and
updates it: four round trips with the row locked. A writer that appends nothing but audit
events (the CTI bridge's pop-up auditor, one batch per burst of calls) can do it in one:
it remembers the head it last saw, chains the batch onto it in Python, and sends a single
autocommit statement that moves the head only if it is still the remembered one and
inserts the events only if the head moved:

    WITH head AS (UPDATE audit_head SET seq = new, hash = new
                  WHERE id = 1 AND seq = old AND hash = old RETURNING 1)
    INSERT INTO audit_events ... SELECT ... WHERE EXISTS (SELECT 1 FROM head)

If another writer appended meanwhile (or holds the row and then commits a new head), the
UPDATE matches no row under READ COMMITTED's re-check and nothing is inserted; the batch
is then appended as the general path does, under the head's row lock. The chain
therefore never forks or gaps, and the two paths may run side by side.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from eakte.audit.service import chain

_APPEND = """
WITH head AS (
    UPDATE audit_head SET seq = %(seq)s, hash = %(hash)s
    WHERE id = 1 AND seq = %(prev_seq)s AND hash = %(prev_hash)s
    RETURNING 1
)
INSERT INTO audit_events
    (seq, at, actor, action, object_type, object_id, details, prev_hash, hash)
SELECT e.seq, e.at, e.actor, e.action, e.object_type, e.object_id, e.details,
       e.prev_hash, e.hash
FROM jsonb_to_recordset(%(events)s::jsonb) AS e(
    seq bigint, at timestamptz, actor text, action text, object_type text, object_id text,
    details json, prev_hash text, hash text)
WHERE EXISTS (SELECT 1 FROM head)
"""
_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1"


class PostgresAppender:
    """Appends batches of pending events (`service.pending_event`) in one round trip each.

    Uses connections of `engine`, which must be a PostgreSQL engine in autocommit. Not
    thread-safe: one appender per writer thread.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._head: tuple[int, str] | None = None

    def append(self, pending: Sequence[dict[str, Any]]) -> None:
        """Chain and store the events; committed when this returns."""
        if not pending:
            return
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                if not self._try_append(cursor, pending):
                    self._append_locked(cursor, pending)
            finally:
                cursor.close()
        except BaseException:
            self._head = None
            if not _usable(conn):
                conn.invalidate()
            raise
        finally:
            conn.close()

    def _try_append(self, cursor: Any, pending: Sequence[dict[str, Any]]) -> bool:
        """One statement onto the head last seen; False if another writer moved it."""
        if self._head is None:
            cursor.execute(_HEAD)
            self._head = _head_of(cursor)
        if self._send(cursor, pending, *self._head):
            return True
        self._head = None
        return False

    def _append_locked(self, cursor: Any, pending: Sequence[dict[str, Any]]) -> None:
        # Lost the race: under contention, take the head's lock as the general path does,
        # so a busy chain cannot starve this writer.
        cursor.execute("BEGIN")
        try:
            cursor.execute(_HEAD + " FOR UPDATE")
            if not self._send(cursor, pending, *_head_of(cursor)):
                raise RuntimeError("the locked audit head moved")
            cursor.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):  # a broken connection is discarded anyway
                cursor.execute("ROLLBACK")
            raise

    def _send(
        self, cursor: Any, pending: Sequence[dict[str, Any]], prev_seq: int, prev_hash: str
    ) -> bool:
        rows = chain(pending, prev_seq, prev_hash)
        params = {
            "seq": rows[-1]["seq"],
            "hash": rows[-1]["hash"],
            "prev_seq": prev_seq,
            "prev_hash": prev_hash,
            "events": json.dumps(rows, default=_iso, ensure_ascii=False),
        }
        cursor.execute(_APPEND, params, prepare=True)
        if cursor.rowcount != len(rows):
            return False
        self._head = (rows[-1]["seq"], rows[-1]["hash"])
        return True


def _head_of(cursor: Any) -> tuple[int, str]:
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the audit chain head row is missing")
    return int(row[0]), str(row[1])


def _iso(value: Any) -> str:
    # The only non-JSON values of a chained row are its timestamps; PostgreSQL reads the
    # ISO form with microseconds and offset back to the same instant the hash covers.
    return str(value.isoformat())


def _usable(conn: Any) -> bool:
    return not getattr(conn.dbapi_connection, "closed", True)
