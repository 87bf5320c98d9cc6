"""A PostgreSQL primary and a streaming standby on loopback, made by the test."""

from __future__ import annotations

import subprocess
import time

import psycopg

from tests.support.db import _TempCluster


class Cluster(_TempCluster):
    """A cluster of our own that can also be a standby, crash, and be promoted."""

    def _ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.dir / "data"), *args),
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def start_standby_of(self, primary: Cluster) -> str:
        """Clone `primary` with pg_basebackup and run it as its streaming standby."""
        subprocess.run(
            self._cmd(
                "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                "-D", str(self.dir / "data"), "-R", "-X", "stream", "--checkpoint=fast",
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        self._ctl(
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            "-l", str(self.dir / "log"), "-w", "start",
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def crash(self) -> None:
        """Stop at once, as a power cut would (no shutdown checkpoint)."""
        self._ctl("-m", "immediate", "stop")

    def promote(self) -> None:
        """Turn the standby into a primary that accepts writes."""
        self._ctl("-w", "promote")

    def sql(self, statement: str, database: str = "postgres") -> object:
        """Run one statement (autocommit) and return the first column of its first row."""
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname={database}", autocommit=True
        ) as conn:
            cur = conn.execute(statement)  # type: ignore[arg-type]
            row = cur.fetchone() if cur.description else None
            return row[0] if row else None

    def wait_for_standby(self, timeout: float = 30) -> None:
        """Wait until a standby streams from this primary."""
        deadline = time.monotonic() + timeout
        while not self.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"):
            if time.monotonic() > deadline:
                raise AssertionError("the standby did not start streaming")
            time.sleep(0.1)
