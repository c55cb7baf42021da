"""`orderbot jobs list` and `orderbot jobs run NAME`, in-process."""

from __future__ import annotations

import pytest

from bot.cli import main


@pytest.fixture(autouse=True)
def database(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    monkeypatch.delenv("ORDERBOT_CONFIG", raising=False)
    monkeypatch.setenv("ORDERBOT_DATABASE_URL", sqlite_url)


def test_jobs_list_shows_id_schedule_and_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["logistics_sweep", "stuck_orders", "escalate_exceptions", "safety_stock",
                                                     "consistency"]  # k3_pull only with ORDERBOT_K3__ settings
    assert "每 10 分钟" in lines[0] and "物流仲裁" in lines[0]
    assert "拣货中60分" in lines[1]


def test_jobs_run_runs_one_job_now(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "run", "stuck_orders"]) == 0
    assert capsys.readouterr().out.strip() == "stuck_orders：0 个卡单已提醒"
    assert main(["jobs", "run", "escalate_exceptions"]) == 0


def test_jobs_run_refuses_an_unknown_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "run", "nope"]) == 2
    assert "没有任务 nope" in capsys.readouterr().err
