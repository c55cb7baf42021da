"""The peak-day replay (benchmarks/peak_day.py) at a tiny scale, so it cannot rot: `orderbot serve` in its own
process, 20 orders through Douyin pushes and the REST API, every floor step a signed WeCom callback, one of each
exception; the case's outcome figures read back at the end."""

from __future__ import annotations

from pathlib import Path

from benchmarks.peak_day import arguments, replay


async def test_a_tiny_peak_day_ships_every_order_it_should_and_no_outcome_goes_wrong(
    db_url: str, tmp_path: Path
) -> None:
    args = arguments(["--db", "sqlite" if db_url.startswith("sqlite") else "postgres", "--orders", "20", "--day-s", "2", "--step-timeout-s", "20", "--card-wait-s", "5",
                      "--server-log", str(tmp_path / "server.log")])

    got = await replay(args, db_url)

    assert got["failed"] == 0 and got["missed"] == 0
    assert got["shipped_by_us"] >= 15  # 20 less the surge order that ran out of stock and the courier's early parcel
    assert got["chat_steps"] >= 4 * got["shipped_by_us"]  # pick, check, pack, ship each a callback seen through
    assert (got["stale"], got["wrong"], got["settled_held"]) == (0, 0, 0)
    assert got["held_customers"] >= 1  # the courier's early signature held a customer: the settled count had a case
    assert got["settlements"].get(200, 0) >= 1  # delivered orders of other customers were settled
    assert got["exception_pushes"] >= 3 and got["pushes_missing"] == 0  # each exception reached its people
    assert got["first_contact_answered"] >= 1  # the refund counted on the dashboard
    assert got["states"].get("paid") == 1 and got["states"].get("packed") == 1
