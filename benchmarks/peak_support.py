"""Plumbing of the peak-day replay (benchmarks/peak_day.py): the fakes it watches, the chat it signs, the state it
waits for, and `orderbot serve` started as an operator would, on environment settings.

A benchmark imports this after putting the repository on sys.path (as each script does first).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import sys
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from benchmarks._support import ServerProcess
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.fakes.wecom import FakeWeCom
from integrations.fakes.wecom_signer import (
    DEFAULT_AGENT_ID,
    card_click_xml,
    scan_xml,
    sign_callback,
    text_xml,
)

TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"
WECOM_SECRET = "bench-secret"
API_TOKEN = "bench-api-token-0123456789abcdef"
URGENT_WORDS = ("改地址", "缺货", "物流冲突")  # the titles of the exception pushes (handlers/alerts.py, logistics.py)
ROOT = Path(__file__).resolve().parents[1]
CAP_SLOTS = 25  # routine pushes one person may get per minute (30 less DELIVERY__URGENT_RESERVE 5)


# -- the fake WeCom, recording when each message was shown ---------------------------------------


@dataclass
class Shown:
    at: float
    touser: str
    blob: str


class RecordingWeCom(FakeWeCom):
    """FakeWeCom that keeps the time each shown message arrived, per person, and the urgent ones' text."""

    def __init__(self) -> None:
        super().__init__(corp_id=CORP_ID, secret=WECOM_SECRET)
        self.times: dict[str, list[float]] = defaultdict(list)  # touser -> arrival times of shown messages
        self.urgent: list[Shown] = []
        self.watchers: dict[str, asyncio.Event] = {}  # order_no -> set when an urgent push naming it is shown

    def _accept_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        shown_before = len(self.messages)
        answer = super()._accept_message(payload)
        if len(self.messages) > shown_before:
            now, touser = time.monotonic(), str(payload.get("touser", ""))
            self.times[touser].append(now)
            blob = json.dumps(payload, ensure_ascii=False)
            if any(word in blob for word in URGENT_WORDS):
                self.urgent.append(Shown(now, touser, blob))
                for order_no, event in self.watchers.items():
                    if order_no in blob:
                        event.set()
        return answer

    def at_cap(self, userid: str, at: float) -> bool:
        """Whether the person had had their routine share of the minute before `at`."""
        return sum(1 for x in self.times.get(userid, ()) if at - 60 <= x < at) >= CAP_SLOTS

    def first_urgent(self, userid: str, order_no: str, word: str, after: float) -> float | None:
        for shown in self.urgent:
            if shown.at >= after and shown.touser == userid and order_no in shown.blob and word in shown.blob:
                return shown.at
        return None


# -- signed WeCom callbacks -----------------------------------------------------------------------


@dataclass
class Chat:
    """Posts callbacks as WeCom does: text, scancode_waitmsg and template_card_event, encrypted and signed."""

    http: aiohttp.ClientSession
    base: str
    wecom: RecordingWeCom
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(8_100_000_000_000_000_001))

    async def text(self, user: str, content: str) -> float:
        msg_id = next(self._ids)
        return await self._post(text_xml(user, content, str(msg_id), int(time.time()), corp_id=CORP_ID), msg_id)

    async def scan(self, user: str, code: str) -> float:
        return await self._post(scan_xml(user, code, int(time.time()), corp_id=CORP_ID), next(self._ids))

    async def click(self, user: str, key: str, task_id: str) -> float:
        code = self.wecom.issue_response_code()
        return await self._post(card_click_xml(user, key, task_id, code, int(time.time()), corp_id=CORP_ID),
                                next(self._ids))

    async def _post(self, xml: str, n: int) -> float:
        """Returns the monotonic time the callback was sent."""
        now = int(time.time())
        query, body = sign_callback(TOKEN, AES_KEY, CORP_ID, xml, now, f"n{n % 10**9}", agent_id=DEFAULT_AGENT_ID)
        sent = time.monotonic()
        async with self.http.post(f"{self.base}/wecom/callback?{urlencode(query)}", data=body) as answer:
            await answer.read()
            self.statuses[answer.status] += 1
        return sent


# -- waiting for a state to become visible --------------------------------------------------------


class StateWatcher:
    """One query every `every_s` for all orders someone waits on (by order number or channel order id): the time a
    state became visible is known to within that interval, and the polling costs the same however many wait."""

    def __init__(self, db: Database, every_s: float = 0.02) -> None:
        self.db, self.every_s = db, every_s
        self._waits: dict[str, list[tuple[frozenset[str], asyncio.Future[tuple[str, str, float]]]]] = defaultdict(list)
        self.queries = 0
        self.errors: list[str] = []

    async def wait(self, ref: str, states: frozenset[str], timeout_s: float) -> tuple[str, str, float]:
        """(order_no, state, monotonic time seen); TimeoutError when not seen in time."""
        future: asyncio.Future[tuple[str, str, float]] = asyncio.get_running_loop().create_future()
        self._waits[ref].append((states, future))
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise TimeoutError(f"{ref} not {'/'.join(sorted(states))} within {timeout_s:g} s") from None
        finally:
            self._waits[ref] = [w for w in self._waits[ref] if w[1] is not future]
            if not self._waits[ref]:
                del self._waits[ref]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            refs = list(self._waits)
            if not refs:
                continue
            try:
                async with self.db.engine.connect() as conn:
                    rows = (await conn.execute(select(t.orders.c.order_no, t.orders.c.external_id, t.orders.c.state)
                                               .where(t.orders.c.order_no.in_(refs) | t.orders.c.external_id.in_(refs)))).all()
            except Exception as err:  # noqa: BLE001 - a failed read is retried at the next tick, and counted
                self.errors.append(f"{type(err).__name__}: {err}"[:200])
                continue
            self.queries += 1
            seen = time.monotonic()
            for order_no, external_id, state in rows:
                for ref in (order_no, external_id):
                    for states, future in self._waits.get(ref, ()):
                        if state in states and not future.done():
                            future.set_result((order_no, state, seen))


# -- the server: `orderbot serve` on environment settings ------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_serve(env: dict[str, str], port: int, log: Path) -> ServerProcess:
    """`orderbot serve` as its own process (this interpreter, so the worktree's code), up when /healthz answers."""
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())", "serve",
            env={**os.environ, **env}, stdout=err, stderr=err, cwd=str(ROOT))
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if proc.returncode is not None:
                said = await asyncio.to_thread(log.read_text)
                raise RuntimeError(f"orderbot serve exited {proc.returncode}: {said[-2000:]}")
            try:
                async with http.get(f"{base}/healthz") as answer:
                    if answer.status == 200:
                        return ServerProcess(proc, base)
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("orderbot serve did not come up in 60 s")


def peak_rss_mib(pid: int) -> float:
    """The process's high-water resident set (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- /metrics -------------------------------------------------------------------------------------


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: aiohttp.ClientSession, base: str) -> Samples:
    async with http.get(f"{base}/metrics") as answer:
        text = await answer.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def summed(samples: Samples, name: str, by: str = "", **match: str) -> dict[str, float]:
    """Sum of the samples called `name` whose labels match, grouped by the label `by` ("" = one total)."""
    out: dict[str, float] = defaultdict(float)
    for (sample, labels), value in samples.items():
        as_dict = dict(labels)
        if sample == name and all(as_dict.get(k) == v for k, v in match.items()):
            out[as_dict.get(by, "") if by else ""] += value
    return dict(out)


def delta(after: Samples, before: Samples) -> Samples:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


@dataclass
class BacklogSampler:
    """Reads the inbox and outbox backlog gauges from /metrics every `every_s` while the day runs."""

    every_s: float = 2.0
    peaks: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    series: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=2000))

    async def run(self, http: aiohttp.ClientSession, base: str, t0: float) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                samples = await scrape(http, base)
            except (aiohttp.ClientError, ValueError):
                continue
            inbox = sum(summed(samples, "orderbot_inbox_rows", status="unprocessed").values())
            outbox = sum(summed(samples, "orderbot_outbox_rows", status="pending").values())
            for name, value in (("inbox_unprocessed", inbox), ("outbox_pending", outbox),
                                ("inbox_oldest_s", max(summed(samples, "orderbot_inbox_oldest_unprocessed_age_seconds",
                                                              "platform").values(), default=0.0)),
                                ("outbox_oldest_s", max(summed(samples, "orderbot_outbox_oldest_pending_age_seconds",
                                                               "channel").values(), default=0.0))):
                self.peaks[name] = max(self.peaks[name], value)
            self.series.append((time.monotonic() - t0, inbox, outbox))


@dataclass
class PgWaits:
    """What the server's PostgreSQL sessions are doing, sampled every `every_s` (pg_stat_activity of its database):
    running, waiting on the WAL flush or a lock, or idle in a transaction the server holds open; and the CPU their
    backend processes used (/proc, PostgreSQL on this machine)."""

    every_s: float = 0.5
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: int = 0
    cpu: dict[int, tuple[float, float]] = field(default_factory=dict)  # backend pid -> (first, last) CPU seconds

    async def run(self, db: Database) -> None:
        from sqlalchemy import text

        while True:
            await asyncio.sleep(self.every_s)
            async with db.engine.connect() as conn:
                rows = (await conn.execute(text(
                    "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"))).all()
            self.samples += 1
            for pid, state, kind, event in rows:
                used = _cpu_s(pid)
                self.cpu[pid] = (self.cpu.get(pid, (used, used))[0], used)
                if state != "idle":
                    self.counts[f"{state}{f' {kind}:{event}' if kind else ''}"] += 1

    def cpu_s(self) -> float:
        return sum(last - first for first, last in self.cpu.values())

    def summary(self) -> str:
        if not self.samples:
            return "not sampled"
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])[:6]
        return (", ".join(f"{name} {n / self.samples:.1f}" for name, n in top)
                + f" (mean sessions per sample); their backends' CPU {self.cpu_s():.0f} s")


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
