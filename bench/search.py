"""Benchmark: full-text search over OCRed documents through the API (target p95 < 100 ms).

    .venv/bin/python bench/search.py [--documents 100000] [--files 10000] [--words 200]
                                     [--queries 500] [--concurrency 1]

Documents with `--words` words of German OCR text each are bulk-loaded with COPY into a new
PostgreSQL database (the GIN indexes of the migrations are maintained as they would be); a real
`eakte serve` answers /api/v1/search?q= from a client on loopback. Queries mix a common word,
a rare one, two words, a token that names one document and a word that matches nothing. The
baseline is the search's own SQL (the same index scans, ranking and limit, without the
org-unit check)
sent straight to PostgreSQL; the ratio is API p95 / SQL p95.
PostgreSQL: EAKTE_BENCH_PG_URL (default the local server, user postgres).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import WORDS, auth, database, http_client, load_corpus, run_load, served  # noqa: E402

SQL = """
WITH q AS (SELECT websearch_to_tsquery('german', %s) AS query),
matching AS (
    SELECT v.document_id FROM document_versions v, q WHERE v.ocr_tsv @@ q.query
    UNION
    SELECT d.id FROM documents d, q WHERE to_tsvector('german', d.title) @@ q.query
),
best AS (
    SELECT d.id, d.file_id, f.reference, d.title, v.id AS version_id,
           ts_rank(coalesce(v.ocr_tsv, to_tsvector('german', '')), q.query)
             + 2 * ts_rank(to_tsvector('german', d.title), q.query) AS rank
    FROM q, documents d JOIN matching m ON m.document_id = d.id
    JOIN files f ON f.id = d.file_id
    LEFT JOIN document_versions v ON v.document_id = d.id AND v.number = d.current_version
    ORDER BY rank DESC, d.created_at DESC LIMIT 20
)
SELECT b.id, b.file_id, b.reference, b.title,
       ts_headline('german', coalesce(s.ocr_text, b.title), q.query,
                   'MaxFragments=2, MaxWords=20, MinWords=5'), b.rank
FROM q, best b LEFT JOIN document_versions s ON s.id = b.version_id
ORDER BY b.rank DESC
"""


def queries(n: int, seed: int = 3) -> list[str]:
    """A reproducible mix of query shapes."""
    rng = random.Random(seed)
    shapes: list[Callable[[], str]] = [
        lambda: rng.choice(WORDS),
        lambda: f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
        lambda: f"Vorgang{rng.randrange(10**6)}",
        lambda: f'"{rng.choice(WORDS)} {rng.choice(WORDS)}"',
        lambda: "Quittungsbelegnichtvorhanden",
    ]
    return [shapes[i % len(shapes)]() for i in range(n)]


def main() -> None:
    """Load the corpus, run the queries through the API and as SQL, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=200, help="OCR words per document")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    print(f"search benchmark on {os.cpu_count()} cores: {args.documents} documents of "
          f"{args.words} words, {args.queries} queries, {args.concurrency} thread(s)")
    qs = queries(args.queries)

    with database() as url:
        load_corpus(url, args.files, args.documents, ocr_words=args.words)
        u = make_url(url)
        dsn = f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"
        store = tempfile.mkdtemp(prefix="eakte-bench-blobs-")
        with served(url, f"file://{store}") as app:
            headers = auth(["clerk"], ["B1"])

            def api() -> Callable[[int], bool]:
                client = http_client()

                def call(i: int) -> bool:
                    r = client.get(f"{app.base}/api/v1/search", params={"q": qs[i]},
                                   headers=headers)
                    return r.status_code == 200
                return call

            def sql() -> Callable[[int], bool]:
                conn = psycopg.connect(dsn, autocommit=True)

                def call(i: int) -> bool:
                    conn.execute(SQL, (qs[i],)).fetchall()
                    return True
                return call

            run_load("warm-up", min(50, len(qs)), args.concurrency, api)
            via_sql = run_load("search [SQL]", len(qs), args.concurrency, sql)
            via_api = run_load("search [API]", len(qs), args.concurrency, api)
            print(via_sql.line())
            print(via_api.line())
            p95 = via_api.pct(95)
            print(f"API p95 {p95:.1f} ms (target < 100 ms: {'ok' if p95 < 100 else 'MISSED'}); "
                  f"ratio API/SQL p95 = {p95 / via_sql.pct(95):.2f}")


if __name__ == "__main__":
    main()
