"""Shared pieces of the benchmarks: databases, a SeaweedFS, a served eakte, a load generator."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eakte.auth.tokens import issue_token  # noqa: E402
from eakte.settings import Settings  # noqa: E402
from tests.support.db import fresh_pg_database  # noqa: E402
from tests.support.s3 import OwnServer, start_own_server, stop_own_server  # noqa: E402
from tests.support.server import child_processes, clean_env, eakte, serve  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789"  # noqa: S105 - this run only


def pg_server_url() -> str:
    """The PostgreSQL server to make benchmark databases on (EAKTE_BENCH_PG_URL)."""
    return os.environ.get("EAKTE_BENCH_PG_URL", DEFAULT_PG)


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards."""
    with fresh_pg_database(pg_server_url()) as url:
        yield url


#: SeaweedFS's volume size for benchmarks (its own default is 30,000 MB). With the tests' 64 MB
#: (many buckets, a volume each) it started new volumes every few large uploads, and raw
#: put_object of 100 MB then varied between 50 and 127 MB/s from run to run.
VOLUME_SIZE_MB = int(os.environ.get("EAKTE_BENCH_VOLUME_MB", "2048"))


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A directory for one run, removed afterwards (a run writes gigabytes to the store)."""
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as path:
        yield Path(path)


@contextlib.contextmanager
def seaweedfs() -> Iterator[OwnServer]:
    """A SeaweedFS of this benchmark's own on loopback ports."""
    with scratch("eakte-bench-s3-") as state:
        own = start_own_server(state, VOLUME_SIZE_MB)
        try:
            yield own
        finally:
            stop_own_server(own)


@contextlib.contextmanager
def served(database_url: str, storage_url: str, workers: int = 1,
           **extra: str) -> Iterator[Served]:
    """A real `eakte serve` on the database and store, with org unit B1 and plan 99.01.

    With `workers` above 1, that many server processes share the port.
    """
    with scratch("eakte-bench-serve-") as workdir:
        yield from _served(workdir, database_url, storage_url, workers, **extra)


def _served(workdir: Path, database_url: str, storage_url: str, workers: int,
            **extra: str) -> Iterator[Served]:
    env = clean_env(
        EAKTE_DATABASE_URL=database_url,
        EAKTE_STORAGE_URL=storage_url,
        EAKTE_JWT_SECRET=SECRET,
        EAKTE_CTI_EMBEDDED="false",
        EAKTE_WORKER_IN_SERVE="false",
        EAKTE_LOG_LEVEL="WARNING",
        **extra,
    )
    eakte(workdir, "db", "upgrade", env=env)
    # Already there when the corpus was bulk-loaded: then these answer "exists" (exit 4).
    eakte(workdir, "orgunit", "add", "B1", "Bench", env=env, check=False)
    eakte(workdir, "plan", "add", "99.01", "Bench", env=env, check=False)
    with serve(workdir, env, args=("--workers", str(workers))) as (base, process):
        yield Served(base, process.pid)


@dataclass
class Served:
    """Where the served eakte listens and its process id."""

    base: str
    pid: int

    def processes(self) -> list[int]:
        """The server's process and, with several workers, its worker processes."""
        return [self.pid, *child_processes(self.pid)]

    def peak_rss_mib(self) -> float:
        """The largest peak resident set size so far (VmHWM) of its processes, in MiB."""
        peaks = []
        for pid in self.processes():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        if not peaks:
            raise RuntimeError("no VmHWM in /proc status")
        return max(peaks)

    def reset_peak_rss(self) -> None:
        """Start a new peak measurement (writing 5 to clear_refs resets VmHWM)."""
        for pid in self.processes():
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU time the processes have used so far, in seconds (Linux /proc)."""
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:  # ended since it was listed
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_processes() -> list[int]:
    """This machine's PostgreSQL processes; their backends run the benchmark's queries.

    Counts nothing useful if EAKTE_BENCH_PG_URL names a server on another machine.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().startswith("postgres"):
                    found.append(int(entry.name))
    return found


def auth(roles: list[str], units: list[str], clearance: str = "secret") -> dict[str, str]:
    """Authorization header for a principal of the served app."""
    settings = Settings(jwt_secret=SECRET)  # type: ignore[arg-type]
    token = issue_token(settings, "bench", roles, units, ttl_seconds=6 * 3600,
                        clearance=clearance)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class LoadResult:
    """Latencies of one load run."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def pct(self, p: float) -> float:
        """The p-th percentile latency in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def rps(self) -> float:
        """Requests per second over the run."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """One line of figures."""
        mean = 1000 * statistics.fmean(self.latencies) if self.latencies else float("nan")
        return (f"{self.name:<28} n={len(self.latencies):>6} err={self.errors:<4} "
                f"p50={self.pct(50):7.2f} ms p95={self.pct(95):7.2f} ms "
                f"p99={self.pct(99):7.2f} ms mean={mean:7.2f} ms {self.rps:8.1f} req/s")


def run_load(name: str, requests: int, concurrency: int,
             make_worker: Callable[[], Callable[[int], bool]]) -> LoadResult:
    """Run `requests` calls spread over `concurrency` threads; each call returns success.

    make_worker is called once per thread (so each thread has its own connection) and returns
    the function that performs call number i. Bounded in count: the run ends by itself.
    """
    result = LoadResult(name)
    lock = threading.Lock()
    counter = iter(range(requests))

    def thread() -> None:
        call = make_worker()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            started = time.perf_counter()
            ok = call(i)
            elapsed = time.perf_counter() - started
            with lock:
                if ok:
                    result.latencies.append(elapsed)
                else:
                    result.errors += 1

    threads = [threading.Thread(target=thread) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - started
    return result


def http_client() -> httpx.Client:
    """A keep-alive client for loopback load."""
    return httpx.Client(timeout=60, limits=httpx.Limits(max_connections=1))


# German words for generated titles, and the most frequent words of the generated OCR text.
WORDS = (  # noqa: SIM905 - a word list reads better as running text
    "Antrag Bescheid Widerspruch Baugenehmigung Gewerbe Anmeldung Abmeldung Rechnung Mahnung "
    "Stellungnahme Anhörung Gutachten Lageplan Grundstück Flurstück Bebauungsplan Nachbar "
    "Garage Carport Dachgaube Abstandsfläche Brandschutz Statik Entwässerung Kanal Straße "
    "Friedhof Grabstelle Hund Steuer Gebühr Beitrag Zahlung Frist Verlängerung Ablehnung "
    "Zustimmung Auflage Nebenbestimmung Bürger Gemeinde Stadt Kreis Amt Verwaltung Rat "
    "Ausschuss Sitzung Protokoll Beschluss Satzung Verordnung Vertrag Kündigung Miete Pacht "
    "Schule Kita Betreuung Spielplatz Sportplatz Halle Feuerwehr Rettungsdienst Ordnungsamt "
    "Parkausweis Sondernutzung Baum Fällung Ersatzpflanzung Lärm Beschwerde Veranstaltung "
).split()

# Parts of the generated vocabulary: compounds as administrative German builds them, and
# names of people, streets and places made of syllables.
_HEADS = (  # noqa: SIM905
    "Bau Grund Stadt Wasser Straßen Verkehrs Schul Kinder Wohn Gewerbe Steuer Miet Park Sport "
    "Feuer Bürger Land Haus Wald Feld Markt Kirchen Rats Amts Kreis Orts Sozial Umwelt Abfall "
    "Energie Jugend Alten Friedhofs Hunde Garten Kanal Brücken Rad Bus Lärm Denkmal Sonder "
    "Neben Haupt Eltern Pflege Renten Melde Pass"
).split()
_TAILS = (  # noqa: SIM905
    "antrag bescheid gebühr ordnung verwaltung recht fläche plan amt stelle leistung zuschuss "
    "prüfung vertrag beitrag nutzung anlage genehmigung satzung kosten meldung akte bericht "
    "abgabe förderung verfahren schaden anschluss weg gebiet aufsicht behörde kasse nachweis "
    "register konto zentrum verein sperre"
).split()
_ONSETS = "b br d dr f fr g gr h k kl kr l m n p pf r s sch st t tr w z".split()  # noqa: SIM905
_NUCLEI = "a e i o u ä ö ü au ei ie eu".split()  # noqa: SIM905
_CODAS = ("", "", "n", "r", "l", "s", "ck", "ng", "nd", "rt", "lt", "st", "ch", "tz", "mm")
_ENDINGS = ("", "er", "mann", "berg", "feld", "dorf", "bach", "hausen", "ing", "stedt")


def ocr_vocabulary(size: int = 8000, seed: int = 11) -> list[str]:
    """The OCR vocabulary, most frequent first: WORDS, then generated compounds and names.

    Deterministic for a seed, so a benchmark can name a word of a known frequency rank.
    """
    import random

    rng = random.Random(seed)
    seen = {w.lower() for w in WORDS}
    generated = []
    for head in _HEADS:
        for tail in _TAILS:
            if (head + tail).lower() not in seen:
                seen.add((head + tail).lower())
                generated.append(head + tail)
    while len(generated) < size - len(WORDS):
        stem = "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
                       for _ in range(rng.randint(1, 2)))
        word = (stem + rng.choice(_ENDINGS)).capitalize()
        if len(word) >= 4 and word.lower() not in seen:
            seen.add(word.lower())
            generated.append(word)
    rng.shuffle(generated)
    return WORDS + generated[: size - len(WORDS)]


def zipf_cum_weights(n: int, exponent: float = 1.0) -> list[float]:
    """Cumulative Zipf weights for ranks 1..n (for random.choices(cum_weights=...))."""
    total = 0.0
    cumulative = []
    for rank in range(1, n + 1):
        total += rank ** -exponent
        cumulative.append(total)
    return cumulative


def load_corpus(url: str, files: int, documents: int, *, ocr_words: int = 0,
                seed: int = 7) -> None:
    """Bulk-load files, documents and versions with COPY (never the API) into unit B1.

    Documents were created over ten years, evenly, the last one newest. With ocr_words > 0
    every version carries that many words of OCR text (for search), drawn as the text of
    municipal letters is distributed: Zipf-like (the word of frequency rank r with weight
    1/r) over the ocr_vocabulary() of 8,000 words, WORDS being the most frequent. So a few
    words occur in nearly every letter, most in a few hundred or thousand, as in an archive; a
    uniform draw from a small list would make every word common. Each text ends in a token
    Vorgang<n> (n = 1..documents, seven digits) naming that document alone.
    """
    import random
    from datetime import UTC, datetime, timedelta

    import psycopg
    from sqlalchemy.engine import make_url

    from eakte.auth.principal import SYSTEM
    from eakte.db import make_engine, make_session_factory, unit_of_work
    from eakte.orgunits.schemas import OrgUnitCreate
    from eakte.orgunits.service import create_unit
    from eakte.plan.models import ArchiveValue
    from eakte.plan.schemas import PlanItemCreate
    from eakte.plan.service import create_item

    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine)) as session:
        unit = create_unit(session, SYSTEM, OrgUnitCreate(code="B1", name="Bench"))
        item = create_item(session, SYSTEM, PlanItemCreate(
            code="99.01", title="Bench", retention_years=10, archive_value=ArchiveValue("V")))
        unit_id, item_id = unit.id, item.id
    engine.dispose()
    u = make_url(url)
    dsn = (f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"
           + (f" password={u.password}" if u.password else ""))
    rng = random.Random(seed)
    started = time.perf_counter()
    file_ids = [uuid_from(rng) for _ in range(files)]
    now = "2026-01-01T00:00:00+00"
    first = datetime(2016, 1, 1, tzinfo=UTC)
    step = timedelta(days=3652) / max(documents, 1)
    created = [(first + i * step).isoformat() for i in range(documents)]
    vocabulary = ocr_vocabulary() if ocr_words else []
    cum_weights = zipf_cum_weights(len(vocabulary)) if ocr_words else []
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY files (id, reference, title, plan_item_id, org_unit_id, status, "
                      "confidentiality, opened_at, created_by, last_activity_at) "
                      "FROM STDIN") as copy:
            for i, fid in enumerate(file_ids):
                copy.write_row((fid, f"99.01-2026/{i + 1:07d}",
                                f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}", item_id,
                                unit_id, "open", "normal", now, "bench",
                                f"2026-01-01T00:00:{i % 60:02d}+00"))
        with cur.copy("COPY documents (id, file_id, title, kind, source, current_version, "
                      "created_at, created_by, frozen) FROM STDIN") as docs_copy:
            doc_ids = []
            for i in range(documents):
                did = uuid_from(rng)
                doc_ids.append(did)
                docs_copy.write_row((did, file_ids[i % files],
                                     f"{rng.choice(WORDS)} {rng.choice(WORDS)}", "incoming",
                                     "upload", 1, created[i], "bench", False))
        with cur.copy("COPY document_versions (id, document_id, number, blob_key, sha256, "
                      "size, mime_type, original_name, created_by, created_at, ocr_text, "
                      "page_count) FROM STDIN") as versions:
            for i, did in enumerate(doc_ids):
                text = None
                if ocr_words:
                    words = " ".join(rng.choices(vocabulary, cum_weights=cum_weights,
                                                 k=ocr_words))
                    text = f"{words} Vorgang{i + 1:07d}"
                versions.write_row((uuid_from(rng), did, 1, f"docs/{did}/bench", "0" * 64,
                                    1000, "application/pdf", "scan.pdf", "bench", created[i],
                                    text, 1 if text else None))
        conn.commit()
        cur.execute("ANALYZE")
    print(f"loaded {files} files, {documents} documents in {time.perf_counter() - started:.1f} s")


def uuid_from(rng: object) -> str:
    """A random UUID from the seeded generator (reproducible corpora)."""
    import uuid

    return str(uuid.UUID(int=rng.getrandbits(128), version=4))  # type: ignore[attr-defined]
