"""Benchmark: metadata reads and lists under concurrency against a served eakte on PostgreSQL.

    .venv/bin/python bench/api.py [--files 100000] [--documents 1000000] [--requests 4000]
                                  [--concurrency 16]

Files, documents and versions are bulk-loaded with COPY into a new PostgreSQL database; a real
`eakte serve` (filesystem store; no blob is read) answers a load generator of `--concurrency`
threads on loopback, each with its own keep-alive connection. For each operation it prints
p50/p95/p99 and requests per second; the baseline is the same lookup as plain SQL from as many
threads straight to PostgreSQL, and the ratio is API req/s / SQL req/s (what HTTP,
authentication, authorisation, serialisation and the audit event of each document read cost).
PostgreSQL: EAKTE_BENCH_PG_URL (default the local server, user postgres).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import (  # noqa: E402
    auth,
    database,
    http_client,
    load_corpus,
    run_load,
    scratch,
    served,
)


def sample_ids(dsn: str, table: str, n: int) -> list[str]:
    """Up to n random ids of a table."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT id::text FROM {table} ORDER BY random() LIMIT %s", (n,)  # noqa: S608
        ).fetchall()
    return [r[0] for r in rows]


def main() -> None:
    """Load the corpus, run each operation through the API and as SQL, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=4000, help="per operation and side")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(f"api benchmark on {os.cpu_count()} cores: {args.files} files, {args.documents} "
          f"documents, {args.requests} requests per operation, {args.concurrency} threads")

    with database() as url:
        load_corpus(url, args.files, args.documents)
        u = make_url(url)
        dsn = f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"
        files = sample_ids(dsn, "files", 2000)
        docs = sample_ids(dsn, "documents", 2000)
        with scratch("eakte-bench-blobs-") as store, served(url, f"file://{store}") as app:
            headers = auth(["clerk"], ["B1"])

            def api(path_of: Callable[[int], str]) -> Callable[[], Callable[[int], bool]]:
                def make() -> Callable[[int], bool]:
                    client = http_client()

                    def call(i: int) -> bool:
                        r = client.get(app.base + path_of(i), headers=headers)
                        return r.status_code == 200
                    return call
                return make

            def sql(query: str, param_of: Callable[[int], tuple[object, ...]]
                    ) -> Callable[[], Callable[[int], bool]]:
                def make() -> Callable[[int], bool]:
                    conn = psycopg.connect(dsn, autocommit=True)

                    def call(i: int) -> bool:
                        return bool(conn.execute(query, param_of(i)).fetchall())
                    return call
                return make

            rng = random.Random(1)
            f_pick = [rng.choice(files) for _ in range(args.requests)]
            d_pick = [rng.choice(docs) for _ in range(args.requests)]
            operations = [
                ("get file", api(lambda i: f"/api/v1/files/{f_pick[i]}"),
                 sql("SELECT * FROM files WHERE id = %s", lambda i: (f_pick[i],))),
                ("get document", api(lambda i: f"/api/v1/documents/{d_pick[i]}"),
                 sql("SELECT d.*, v.* FROM documents d JOIN document_versions v ON "
                     "v.document_id = d.id AND v.number = d.current_version WHERE d.id = %s",
                     lambda i: (d_pick[i],))),
                ("list files (50)", api(lambda i: f"/api/v1/files?limit=50&offset={i % 20 * 50}"),
                 sql("SELECT * FROM files ORDER BY last_activity_at DESC, id LIMIT 50 OFFSET %s",
                     lambda i: (i % 20 * 50,))),
                ("list documents of file", api(lambda i: f"/api/v1/files/{f_pick[i]}/documents"),
                 sql("SELECT d.*, v.* FROM documents d LEFT JOIN document_versions v ON "
                     "v.document_id = d.id AND v.number = d.current_version "
                     "WHERE d.file_id = %s ORDER BY d.created_at", lambda i: (f_pick[i],))),
            ]
            for name, api_worker, sql_worker in operations:
                run_load("warm-up", min(200, args.requests), args.concurrency, api_worker)
                via_sql = run_load(f"{name} [SQL]", args.requests, args.concurrency, sql_worker)
                via_api = run_load(f"{name} [API]", args.requests, args.concurrency, api_worker)
                print(via_sql.line())
                print(via_api.line())
                print(f"{'':<28} ratio API/SQL req/s = {via_api.rps / via_sql.rps:.3f}")


if __name__ == "__main__":
    main()
