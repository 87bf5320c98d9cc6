"""Benchmark: documents uploaded through the API vs. raw S3 put_object to the same server.

    .venv/bin/python bench/ingest.py [--sizes 10K,1M,100M] [--counts 200,30,3]
                                     [--concurrency 1,4] [--big 2G]

A real `eakte serve` (PostgreSQL, SeaweedFS started here) receives multipart uploads from a
client on loopback, with a Content-Length as a client that knows its file's size sends it
(uploads up to 4 MiB then take the server's one-transaction path). The baseline streams
the same bytes with the minio SDK's put_object into the same bucket of the same SeaweedFS
(same part size). Prints MB/s of both and the ratio API / raw for each size, once per
`--concurrency` level, and under it the CPU time per document that each side cost the
load generator (client), eakte, SeaweedFS (s3) and PostgreSQL (pg). Level 1 is one client
uploading one document after the other (latency-bound: every upload pays the records
service's fixed cost, authorisation, its transaction and the audit chain, on top of the
store's); higher levels are that many clients at once on both sides (throughput-bound), as
when a specialist procedure or the mailroom delivers in parallel. Once the clients keep
every core busy, the ratio can get no higher than the sides' CPU per document (printed as
the CPU ratio). The targets are at least 0.8 for 1 MB and 100 MB. Then one `--big` upload
streams through the API while the server's peak RSS is measured (target below 200 MB;
--big 0 skips it). PostgreSQL: EAKTE_BENCH_PG_URL (default the local server, user
postgres; the pg CPU column needs it on this machine).
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import (  # noqa: E402
    auth,
    cpu_seconds,
    database,
    postgres_processes,
    seaweedfs,
    served,
)

from storage import S3Store  # noqa: E402
from storage.s3 import DEFAULT_PART_SIZE  # noqa: E402
from tests.support.server import child_processes  # noqa: E402

BLOCK = os.urandom(1024 * 1024)


def parse_size(text: str) -> int:
    """'10K', '1M', '2G' or a number of bytes."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


class Generated(io.RawIOBase):
    """`size` bytes made of a random block, produced as they are read (never held whole)."""

    def __init__(self, size: int, salt: bytes) -> None:
        self.remaining = size
        self.salt = salt  # makes every document's bytes (and so its hash) different

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.remaining, len(BLOCK))
        if n <= 0:
            return 0
        chunk = (self.salt + BLOCK)[:n]
        buffer[:n] = chunk
        self.remaining -= n
        return n


def multipart(size: int, salt: bytes, boundary: str) -> tuple[int, Iterator[bytes]]:
    """A streamed multipart/form-data body with one `file` part of `size` bytes, and its length.

    The length goes into Content-Length, as a client that knows its file's size sends it.
    """
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nBench\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"bench.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        source = Generated(size, salt)
        while chunk := source.read(1024 * 1024):
            yield chunk
        yield tail

    return len(head) + size + len(tail), body()


_clients = threading.local()
#: The uploads' HTTP client: urllib3, which the SDK of the baseline uses too. The load
#: generator shares the cores with the server; httpx cost it about 3 ms more CPU per 1 MB
#: upload than the SDK's PUT, which lowered the API's figures for the client's sake.
_http = urllib3.PoolManager(maxsize=64, timeout=urllib3.Timeout(connect=10, read=600))


def upload(base: str, file_ids: list[str], headers: dict[str, str], size: int) -> None:
    """One document through the API, into the file of this load thread.

    Each client writes into a file of its own, as parallel deliveries usually do: uploads
    into one file queue behind each other on that file's row (its last activity changes).
    """
    if not hasattr(_clients, "file_id"):
        _clients.file_id = file_ids[next(_file_numbers)]
    boundary = uuid.uuid4().hex
    length, body = multipart(size, uuid.uuid4().bytes, boundary)
    r = _http.request(
        "POST",
        f"{base}/api/v1/files/{_clients.file_id}/documents",
        body=body,
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}",
                 "Content-Length": str(length)},
        retries=False,
    )
    if r.status != 201:
        raise RuntimeError(f"upload failed: {r.status} {r.data[:300]!r}")


_file_numbers = itertools.count()  # next() on it is atomic: each thread takes its own file


def timed(pool: ThreadPoolExecutor, n: int, work: Callable[[], None]) -> float:
    """Seconds for `n` calls of `work` spread over the pool's threads."""
    t = time.perf_counter()
    for future in [pool.submit(work) for _ in range(n)]:
        future.result()
    return time.perf_counter() - t


class CpuMeter:
    """CPU time spent by groups of processes while it measures, summed over its measurements.

    `client` is this process: the load threads, and for the baseline the SDK's own work.
    """

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.seconds: dict[str, float] = defaultdict(float)

    def _read(self) -> dict[str, float]:
        now = {name: cpu_seconds(pids()) for name, pids in self.groups.items()}
        now["client"] = time.process_time()
        return now

    @contextmanager
    def measuring(self) -> Iterator[None]:
        before = self._read()
        yield
        for name, value in self._read().items():
            self.seconds[name] += value - before[name]

    def total(self) -> float:
        return sum(self.seconds.values())

    def per_doc(self, n: int) -> str:
        return " ".join(f"{name} {1000 * s / n:.1f}" for name, s in self.seconds.items()
                        if s > 0.0005 * n)


def raw_put(store: S3Store, size: int) -> None:
    """The baseline: the same bytes straight into the bucket with put_object."""
    store.client.put_object(store.bucket, f"bench/raw/{uuid.uuid4()}",
                            Generated(size, uuid.uuid4().bytes), size,
                            part_size=DEFAULT_PART_SIZE)


def main() -> None:
    """Run the ingest benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10K,1M,100M")
    parser.add_argument("--counts", default="200,30,3", help="documents per size")
    parser.add_argument("--concurrency", default="1,4", help="clients at once, per row")
    parser.add_argument("--big", default="2G", help="size of the RSS-measured upload; 0 skips")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    counts = [int(c) for c in args.counts.split(",")]
    levels = [int(c) for c in args.concurrency.split(",")]
    big = parse_size(args.big)
    print(f"ingest benchmark on {os.cpu_count()} cores; sizes {args.sizes}, counts {args.counts}, "
          f"{args.workers} server process(es)")

    with seaweedfs() as own, database() as db_url:
        s3 = own.server
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, bucket)
        store.ensure_bucket()
        with served(db_url, s3.url(bucket), args.workers,
                    EAKTE_MAX_UPLOAD_BYTES=str(8 * 1024**3)) as app:
            headers = auth(["clerk"], ["B1"])
            file_ids = []
            for i in range(64):  # more than load threads: each takes one for itself
                r = httpx.post(f"{app.base}/api/v1/files", headers=headers,
                               json={"title": f"Bench {i}", "plan_code": "99.01"})
                r.raise_for_status()
                file_ids.append(r.json()["id"])
            upload(app.base, file_ids, headers, 1024)  # warm-up
            raw_put(store, 1024)
            groups = {"eakte": app.processes, "pg": postgres_processes,
                      "s3": lambda: [own.pid, *child_processes(own.pid)]}
            print(f"{'size':>10} {'clients':>7} {'docs':>5} {'raw MB/s':>9} {'API MB/s':>9} "
                  f"{'ratio':>6} {'API ms/doc':>10}")
            for size, count in zip(sizes, counts, strict=True):
                for level in levels:
                    n = max(count, level)
                    raw_cpu, api_cpu = CpuMeter(groups), CpuMeter(groups)
                    with ThreadPoolExecutor(level) as pool:
                        # Interleaved rounds, so drift on a shared machine hits both alike.
                        raw_s = api_s = 0.0
                        for start in range(0, n, level):
                            batch = min(level, n - start)
                            with raw_cpu.measuring():
                                raw_s += timed(pool, batch, partial(raw_put, store, size))
                            with api_cpu.measuring():
                                api_s += timed(pool, batch, partial(
                                    upload, app.base, file_ids, headers, size))
                    mb = size * n / 1e6
                    print(f"{size:>10} {level:>7} {n:>5} {mb / raw_s:>9.1f} {mb / api_s:>9.1f} "
                          f"{raw_s / api_s:>6.2f} {1000 * api_s / n:>10.1f}")
                    print(f"{'':>10} CPU ms/doc, raw: {raw_cpu.per_doc(n)}; "
                          f"API: {api_cpu.per_doc(n)}; "
                          f"CPU ratio {raw_cpu.total() / api_cpu.total():.2f}", flush=True)
            if big:
                app.reset_peak_rss()
                before = app.peak_rss_mib()
                t = time.perf_counter()
                upload(app.base, file_ids, headers, big)
                seconds = time.perf_counter() - t
                peak = app.peak_rss_mib()
                print(f"big upload {big / 1024**2:.0f} MiB in {seconds:.1f} s "
                      f"({big / 1e6 / seconds:.1f} MB/s); server peak RSS {peak:.0f} MiB "
                      f"(before {before:.0f} MiB; target < 200 MiB: "
                      f"{'ok' if peak < 200 else 'MISSED'})")


if __name__ == "__main__":
    main()
