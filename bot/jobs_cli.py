"""`orderbot jobs list` and `orderbot jobs run NAME`: the scheduled jobs, and one of them run now, once."""

from __future__ import annotations

import asyncio

from bot.cli_database import open_database
from bot.scheduler import job_env, job_specs
from config.settings import Settings


def list_jobs(settings: Settings) -> int:
    for spec in job_specs(settings):
        print(f"{spec.id}\t{spec.schedule}\t{spec.description}")
    return 0


def run_job(settings: Settings, name: str) -> int:
    specs = {spec.id: spec for spec in job_specs(settings)}
    if name not in specs:
        raise ValueError(f"没有任务 {name}（可选：{'、'.join(specs)}）")
    summary = asyncio.run(_run(settings, name))
    print(f"{name}：{summary}")
    return 0


async def _run(settings: Settings, name: str) -> str:
    """One run now, outside the jobs lock: the jobs are idempotent (each alert is marked once in the database)."""
    from bot.app import deps_from
    from handlers.bootstrap import build_bus

    async with open_database(settings) as db:
        deps = deps_from(settings)
        async with job_env(settings, db, build_bus(db, deps), deps) as env:
            spec = next(s for s in job_specs(settings) if s.id == name)
            return await spec.run(env)
