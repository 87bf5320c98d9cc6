"""Benchmark: due-date evaluation and run proposal over many files in PostgreSQL.

Bulk-loads N closed files (COPY) into a fresh database, then times
- the baseline: fetching every closed file's closing time and period and evaluating the
  rule row by row in Python (what a naive loop would do), and
- eakte's set-based evaluation: counting the due files, and proposing a disposal run
  (one INSERT ... SELECT).
Prints the figures and the ratio baseline/set-based. Target: due evaluation and proposal each
under 10 s at 1,000,000 files.

    .venv/bin/python bench/retention.py --files 1000000
PostgreSQL: EAKTE_BENCH_PG_URL, else EAKTE_TEST_PG_URL, else postgres@127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from eakte.auth.principal import Principal, Role  # noqa: E402
from eakte.db import make_engine, make_session_factory, unit_of_work  # noqa: E402
from retention import repository  # noqa: E402
from retention.disposal import propose_run  # noqa: E402
from retention.rules import RetentionPolicy, due_date  # noqa: E402
from tests.support.db import DEFAULT_PG, _libpq, fresh_pg_database  # noqa: E402

TZ = ZoneInfo("Europe/Berlin")


def load(url: str, n: int, unit_code: str) -> None:
    """Insert one org unit, 40 plan items and n closed files with COPY."""
    rnd = random.Random(42)
    unit_id = uuid.uuid4()
    now = datetime.now(UTC)
    plan = [
        (uuid.uuid4(), f"{i:02d}.01", rnd.choice([None, 5, 10, 10, 30]), rnd.choice("AVB"))
        for i in range(10, 50)
    ]
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute(
            "INSERT INTO org_units (id, code, name, created_at) VALUES (%s, %s, %s, %s)",
            (unit_id, unit_code, "Bench", now),
        )
        for pid, code, years, value in plan:
            conn.execute(
                "INSERT INTO file_plan_items (id, code, title, retention_years, archive_value,"
                " active, created_at) VALUES (%s, %s, %s, %s, %s, true, %s)",
                (pid, code, "Bench", years, value, now),
            )
        start = datetime(1990, 1, 1, tzinfo=UTC)
        span = (datetime(2025, 12, 31, tzinfo=UTC) - start).total_seconds()
        with conn.cursor().copy(
            "COPY files (id, reference, title, plan_item_id, org_unit_id, status,"
            " confidentiality, opened_at, closed_at, created_by, last_activity_at) FROM STDIN"
        ) as copy:
            for i in range(n):
                pid, code, _, _ = plan[i % len(plan)]
                closed = start + timedelta(seconds=rnd.random() * span)
                copy.write_row(
                    (uuid.uuid4(), f"{code}-B/{i}", "Akte", pid, unit_id, "closed", "normal",
                     closed - timedelta(days=400), closed, "bench", closed)
                )  # fmt: skip
        conn.execute("ANALYZE files")
        conn.commit()


def baseline(url: str, as_of: date) -> tuple[float, int]:
    """Row-by-row: fetch every closed file and evaluate the rule in Python."""
    t0 = time.perf_counter()
    due = 0
    with psycopg.connect(_libpq(url)) as conn, conn.cursor(name="scan") as cur:
        cur.itersize = 50_000
        cur.execute(
            "SELECT f.closed_at, p.retention_years FROM files f"
            " JOIN file_plan_items p ON p.id = f.plan_item_id WHERE f.status = 'closed'"
        )
        for closed_at, years in cur:
            d = due_date(closed_at, years, TZ)
            if d is not None and d <= as_of:
                due += 1
    return time.perf_counter() - t0, due


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--as-of", default=date.today().isoformat())
    args = parser.parse_args()
    server = os.environ.get("EAKTE_BENCH_PG_URL") or os.environ.get("EAKTE_TEST_PG_URL", DEFAULT_PG)
    as_of = date.fromisoformat(args.as_of)
    with fresh_pg_database(server) as url:
        t0 = time.perf_counter()
        load(url, args.files, "B1")
        print(f"loaded {args.files:,} files in {time.perf_counter() - t0:.1f} s")
        base_s, base_due = baseline(url, as_of)
        print(f"baseline (row by row in Python): {base_s:.2f} s, {base_due:,} due")

        engine = make_engine(url)
        factory = make_session_factory(engine)
        archivist = Principal("bench", frozenset({Role.ARCHIVIST}), frozenset({"B1"}))
        policy = RetentionPolicy(timezone=TZ)
        with unit_of_work(factory) as session:
            t0 = time.perf_counter()
            query = repository.due_files_query(session, archivist, as_of, TZ)
            assert query is not None
            from sqlalchemy import func, select

            count = session.scalar(select(func.count()).select_from(query.subquery()))
            count_s = time.perf_counter() - t0
        print(f"set-based due count: {count_s:.2f} s, {count:,} due")
        t0 = time.perf_counter()
        with unit_of_work(factory) as session:
            view = propose_run(session, archivist, policy, as_of)
        propose_s = time.perf_counter() - t0
        proposed = view.items.get("pending", 0)
        print(
            f"set-based run proposal (INSERT ... SELECT, committed): {propose_s:.2f} s, "
            f"{proposed:,} files"
        )
        engine.dispose()
        assert count == base_due == proposed, (count, base_due, proposed)
        print(
            f"ratio baseline/due count: {base_s / count_s:.1f}x; "
            f"baseline/proposal: {base_s / propose_s:.1f}x"
        )
        verdict = "met" if max(count_s, propose_s) < 10 else "MISSED"
        print(
            f"target (due evaluation and proposal each under 10 s at {args.files:,} files): "
            f"{verdict}"
        )


if __name__ == "__main__":
    main()
