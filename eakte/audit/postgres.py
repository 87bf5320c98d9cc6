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
UPDATE matches no row under READ COMMITTED's re-check, nothing is inserted, and the batch
is chained again onto the head read afresh. The chain therefore never forks or gaps, as
with the locking path; the two paths may run side by side.
"""

from __future__ import annotations

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

#: Give up after this many lost races in a row (each means another writer appended).
MAX_ATTEMPTS = 50


class ChainRace(RuntimeError):
    """Other writers kept moving the head; the batch was not appended."""


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
                for _ in range(MAX_ATTEMPTS):
                    if self._head is None:
                        cursor.execute(_HEAD)
                        row = cursor.fetchone()
                        if row is None:
                            raise RuntimeError("the audit chain head row is missing")
                        self._head = (row[0], row[1])
                    prev_seq, prev_hash = self._head
                    rows = chain(pending, prev_seq, prev_hash)
                    params = {
                        "seq": rows[-1]["seq"],
                        "hash": rows[-1]["hash"],
                        "prev_seq": prev_seq,
                        "prev_hash": prev_hash,
                        "events": json.dumps(rows, default=_iso, ensure_ascii=False),
                    }
                    cursor.execute(_APPEND, params, prepare=True)  # type: ignore[call-arg]
                    if cursor.rowcount == len(rows):
                        self._head = (rows[-1]["seq"], rows[-1]["hash"])
                        return
                    self._head = None  # another writer appended: read the head again
                raise ChainRace(f"the audit head moved {MAX_ATTEMPTS} times in a row")
            finally:
                cursor.close()
        except BaseException:
            self._head = None
            if not _usable(conn):
                conn.invalidate()
            raise
        finally:
            conn.close()


def _iso(value: Any) -> str:
    # The only non-JSON values of a chained row are its timestamps; PostgreSQL reads the
    # ISO form with microseconds and offset back to the same instant the hash covers.
    return str(value.isoformat())


def _usable(conn: Any) -> bool:
    return not getattr(conn.dbapi_connection, "closed", True)
