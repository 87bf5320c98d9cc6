"""Benchmark: full-text search over OCRed documents through the API (target p95 < 100 ms).

    .venv/bin/python bench/search.py [--documents 100000] [--files 10000] [--words 200]
                                     [--queries 700] [--concurrency 1]

Documents with `--words` words of German OCR text each are bulk-loaded with COPY into a new
PostgreSQL database (the GIN indexes of the migrations are maintained as they would be); a real
`eakte serve` answers /api/v1/search?q= from a client on loopback. The text is drawn as that
of municipal letters is: Zipf-like over a vocabulary of 8,000 words (bench/_support.py,
load_corpus), so a handful of words occur in nearly every letter and most in a few hundred
or thousand.

The queries are interleaved shapes, the same number of each: a very common word (in nearly
every document), a mid-frequency word (ranks 100-1000: about 2-20 % of the documents), a
rare word (ranks 6000-8000: a few hundred documents), two words, a phrase of two common
words, a token naming one document and a word that matches nothing. For each shape the
figures say how many documents its queries match (the median of five) and its p50/p95,
so a slow shape shows.

The baseline is the search's own SQL, statement for statement (the estimate of how common
the words are, then the search with its org-unit check), sent straight to PostgreSQL from
psycopg; the ratio API p95 / SQL p95 is what HTTP, authentication, the ORM and the audit
event of each search add. PostgreSQL: EAKTE_BENCH_PG_URL (default the local server).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.sql import ClauseElement

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import (  # noqa: E402
    LoadResult,
    auth,
    database,
    http_client,
    load_corpus,
    ocr_vocabulary,
    run_load,
    scratch,
    served,
)

from eakte.auth.principal import Principal, Role  # noqa: E402
from eakte.search import repository  # noqa: E402

LIMIT = 20  # the API's default page of hits


def shapes(documents: int) -> dict[str, Callable[[random.Random], str]]:
    """Query generators by shape, over the corpus's vocabulary (most frequent first)."""
    v = ocr_vocabulary()
    return {
        "common word": lambda rng: v[rng.randrange(10)],
        "mid-frequency word": lambda rng: v[rng.randrange(100, 1000)],
        "rare word": lambda rng: v[rng.randrange(6000, 8000)],
        "two words": lambda rng: f"{v[rng.randrange(300)]} {v[rng.randrange(300)]}",
        "phrase": lambda rng: f'"{v[rng.randrange(10)]} {v[rng.randrange(10)]}"',
        "one document": lambda rng: f"Vorgang{rng.randrange(1, documents + 1):07d}",
        "no match": lambda rng: "Quittungsbelegnichtvorhanden",
    }


def queries(n: int, documents: int, seed: int = 3) -> list[tuple[str, str]]:
    """A reproducible, interleaved mix of (shape, query)."""
    rng = random.Random(seed)
    made = list(shapes(documents).items())
    return [(made[i % len(made)][0], made[i % len(made)][1](rng)) for i in range(n)]


def sql_statements(principal: Principal, query: str) -> tuple[str, str, str]:
    """The search's statements for a query as SQL text: estimate, walking search, index one."""
    dialect = postgresql.dialect()

    def sql(stmt: ClauseElement) -> str:
        return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    estimate = sql(repository.ESTIMATE_MATCHES.bindparams(query=query))
    walk, index = (sql(repository.postgresql_query(principal, query, LIMIT,
                                                   repository.RANKED_CANDIDATES, w))
                   for w in (True, False))
    return estimate, walk, index


def matches(dsn: str, made: list[tuple[str, str]]) -> dict[str, int]:
    """Median number of documents matched by up to five distinct queries of each shape."""
    sql = ("SELECT count(*) FROM documents d, websearch_to_tsquery('german', %s) q "
           "WHERE to_tsvector('german', d.title) @@ q OR EXISTS (SELECT 1 "
           "FROM document_versions v WHERE v.document_id = d.id AND v.ocr_tsv @@ q)")
    counted: dict[str, list[int]] = {}
    with psycopg.connect(dsn) as conn:
        for shape, query in dict.fromkeys(made):
            if len(counted.setdefault(shape, [])) < 5:
                row = conn.execute(sql, (query,)).fetchone()
                counted[shape].append(row[0] if row else 0)
    return {shape: int(statistics.median(n)) for shape, n in counted.items()}


def main() -> None:
    """Load the corpus, run the queries as SQL and through the API, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=200, help="OCR words per document")
    parser.add_argument("--queries", type=int, default=700, help="over all shapes")
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    print(f"search benchmark on {os.cpu_count()} cores: {args.documents} documents of "
          f"{args.words} words, {args.queries} queries, {args.concurrency} thread(s)")
    made = queries(args.queries, args.documents)
    principal = Principal("bench", frozenset({Role.CLERK}), frozenset({"B1"}),
                          clearance="secret")

    with database() as url:
        load_corpus(url, args.files, args.documents, ocr_words=args.words)
        u = make_url(url)
        dsn = f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"
        statements = {q: sql_statements(principal, q) for _, q in made}
        versions_sql = str(repository.ESTIMATE_VERSIONS)
        matched = matches(dsn, made)
        with scratch("eakte-bench-blobs-") as store, served(url, f"file://{store}") as app:
            headers = auth(["clerk"], ["B1"])
            by_shape: dict[str, dict[str, list[float]]] = {"SQL": {}, "API": {}}
            lock = threading.Lock()

            def timed(side: str, i: int, call: Callable[[], bool]) -> bool:
                started = time.perf_counter()
                ok = call()
                elapsed = time.perf_counter() - started
                with lock:
                    by_shape[side].setdefault(made[i][0], []).append(elapsed)
                return ok

            def api() -> Callable[[int], bool]:
                client = http_client()

                def call(i: int) -> bool:
                    def get() -> bool:
                        r = client.get(f"{app.base}/api/v1/search",
                                       params={"q": made[i][1]}, headers=headers)
                        return r.status_code == 200
                    return timed("API", i, get)
                return call

            def sql() -> Callable[[int], bool]:
                conn = psycopg.connect(dsn, autocommit=True)

                def call(i: int) -> bool:
                    estimate, walk, index = statements[made[i][1]]

                    def run() -> bool:
                        explained = conn.execute(estimate).fetchone()
                        versions = conn.execute(versions_sql).fetchone()
                        assert explained is not None and versions is not None
                        walks = repository.walks_newest(explained[0], float(versions[0]))
                        conn.execute(walk if walks else index).fetchall()
                        return True
                    return timed("SQL", i, run)
                return call

            run_load("warm-up", min(70, len(made)), args.concurrency, api)
            by_shape = {"SQL": {}, "API": {}}
            via_sql = run_load("search [SQL]", len(made), args.concurrency, sql)
            via_api = run_load("search [API]", len(made), args.concurrency, api)

    print(f"{'shape':<20} {'matches':>8}   {'SQL p50':>8} {'SQL p95':>8}   "
          f"{'API p50':>8} {'API p95':>8}")
    for shape in shapes(args.documents):
        s, a = (LoadResult(shape, by_shape[side].get(shape, [])) for side in ("SQL", "API"))
        print(f"{shape:<20} {matched.get(shape, 0):>8}   {s.pct(50):8.1f} {s.pct(95):8.1f}   "
              f"{a.pct(50):8.1f} {a.pct(95):8.1f}")
    print(via_sql.line())
    print(via_api.line())
    p95 = via_api.pct(95)
    print(f"API p95 {p95:.1f} ms (target < 100 ms: {'ok' if p95 < 100 else 'MISSED'}); "
          f"ratio API/SQL p95 = {p95 / via_sql.pct(95):.2f}")


if __name__ == "__main__":
    main()
