"""A real, throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temporary folder, listening on
a free port on 127.0.0.1 only, trust authentication (nothing but this machine's loopback reaches it),
fsync off (it is thrown away). Each test gets a database of its own (`PgCluster.new_database`)."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

USER = "phonescreen"
STORE_BACKENDS = ["sqlite", "postgresql"]  # a module runs its store tests on both: see conftest.store_backend


def pg_bin_dir() -> str | None:
    """Debian's `postgresql` package keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        return str(Path(found).parent)
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name), reverse=True)
    return next((d for d in dirs if Path(d, "initdb").exists() and Path(d, "pg_ctl").exists()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgCluster:
    def __init__(self, bin_dir: str):
        self.bin_dir = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="phonescreen-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        # PostgreSQL refuses to run as root: a root test run starts it as the package's `postgres` user.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120, cwd=self.dir)

    def start(self) -> PgCluster:
        self._run(f"{self.bin_dir}/initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(f"{self.bin_dir}/pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options,
                  "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(f"{self.bin_dir}/pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new, empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)
