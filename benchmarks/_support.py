"""Plumbing the benchmarks share: a migrated throw-away database, and the app server in a subprocess.

A benchmark imports this after putting the repository on sys.path (as each script does first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from integrations.db import migrate

PG_ADMIN = os.environ.get("ORDERBOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
READY = "READY "


# -- the database ---------------------------------------------------------------------------------


async def pg_admin(sql: str) -> None:
    """One statement on the maintenance database (CREATE / DROP DATABASE cannot run in a transaction)."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_url(name: str) -> str:
    """The SQLAlchemy URL of database `name` on the PG_ADMIN server."""
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """A migrated database for one run: SQLite in a temp dir, or a fresh PostgreSQL database dropped after."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="orderbot-bench-") as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            migrate.upgrade(url)
            yield url
        return
    name = f"orderbot_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = pg_url(name)
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def command_line(doc: str | None, *, db: str = "postgres") -> argparse.ArgumentParser:
    """A benchmark's arguments: its docstring as help, and --db (a database for one run, `run_on_database`)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default=db)
    return parser


def run_on_database(
    args: argparse.Namespace, run: Callable[[str, argparse.Namespace], Coroutine[Any, Any, None]]
) -> None:
    """`run(url, args)` on a migrated database of the kind `args.db`, dropped after."""
    with database(args.db) as url:
        asyncio.run(run(url, args))


# -- the server: serve() runs in the subprocess, ServerProcess in the benchmark -------------------


async def serve(app: web.Application, profile_out: str = "") -> None:
    """Run `app` on 127.0.0.1 (port 0) until SIGTERM, telling the parent the port on stdout."""
    runner = web.AppRunner(app, handle_signals=False)  # access log as `orderbot serve` (off unless configured)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    profiler = cProfile.Profile() if profile_out else None
    if profiler is not None:
        profiler.enable()
    print(f"{READY}{runner.addresses[0][1]}", flush=True)
    await stop.wait()
    if profiler is not None:
        profiler.disable()
        _write_profile(profiler, Path(profile_out))
    await runner.cleanup()


def _write_profile(profiler: cProfile.Profile, out: Path) -> None:
    """The statistics (`python -m pstats <out>.prof`) and the 60 functions with the most own time as text."""
    profiler.dump_stats(out.with_suffix(".prof"))
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(60)
    out.write_text(text.getvalue(), encoding="utf-8")


@dataclass
class ServerProcess:
    """A server started as `python <argv>` whose first stdout line is READY and its port."""

    proc: asyncio.subprocess.Process
    base: str

    @classmethod
    async def start(cls, argv: list[str], env: dict[str, str] | None = None, what: str = "server") -> ServerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *argv, env={**os.environ, **env} if env else None, stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode()
        if not line.startswith(READY):
            raise RuntimeError(f"{what} did not start: {line!r}")
        return cls(proc, f"http://127.0.0.1:{int(line[len(READY):])}")

    def cpu_s(self) -> float:
        """User + system CPU seconds the server process has used (Linux /proc; NaN elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self, timeout_s: float = 60) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=timeout_s)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def pct(values: list[float], q: float) -> float:
    """The q-quantile by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]
