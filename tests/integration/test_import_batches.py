"""`orderbot orders import` made safe for real exports: --dry-run, --history, an errors CSV, whole-number
quantities, batches where one bad order never fails the others, and one 异常 for an import's shortages."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from bot.cli import main
from integrations.db import tables as t
from integrations.db.orders import OrderRepository
from tests.integration.test_import import DOUYIN, env, orders_in, write_csv  # noqa: F401

HISTORY = [*DOUYIN, "下单时间"]


def row(external_id: str, *, sku: str = "BP-001", qty: str = "1", price: str = "199.00", status: str = "待发货",
        store: str = "SH01", phone: str = "13800000000", address: str = "上海市浦东新区张杨路500号") -> list[str]:
    return [external_id, f"C-{external_id}", "浦东4S店", phone, address, store, sku, "刹车片", qty, price, status]


def rows_in(url: str, table: Table) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            found = [dict(r._mapping) for r in await conn.execute(select(table))]
        await engine.dispose()
        return found

    return asyncio.run(read())


def add_rows(url: str, table: Table, rows: list[dict[str, Any]]) -> None:
    async def write() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(insert(table), rows)
        await engine.dispose()

    asyncio.run(write())


def stock(url: str, store: str, sku: str, on_hand: int) -> None:
    add_rows(url, t.inventory, [{"store": store, "sku": sku, "on_hand": on_hand, "reserved": 0, "version": 1,
                                 "updated_at": datetime.now(UTC)}])


def errors_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def test_a_fractional_or_negative_quantity_is_refused_never_rounded(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, [row("DY1", qty="1.7"), row("DY2", qty="-3"), row("DY3", qty="2.0")],
                     "utf-8")
    assert main(["orders", "import", str(path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "第 2 行：数量须为整数，不能是 1.7。" in out
    assert "第 3 行：数量须在 1 到 10000 之间。" in out
    assert [(o["external_id"], o["lines"][0]["qty"]) for o in orders_in(env)] == [("DY3", 2)]


def test_a_dry_run_reports_new_duplicate_and_rejected_and_writes_nothing(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    assert main(["orders", "import", str(write_csv(tmp_path / "old.csv", DOUYIN, [row("DY1")], "utf-8"))]) == 0
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, [row("DY1"), row("DY2"), row("DY3", qty="0.5")], "gb18030")
    capsys.readouterr()
    assert main(["orders", "import", str(path), "--dry-run", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "试运行，未写入任何数据。渠道 douyin：可导入 2 单（新建 1，已存在 1），有问题 1 单。" in out
    assert "第 4 行：数量须为整数" in out
    assert [o["external_id"] for o in orders_in(env)] == ["DY1"]
    assert len(rows_in(env, t.audit_log)) == 1  # DY1's creation, nothing of the dry run
    assert not (tmp_path / "douyin.errors.csv").exists()  # a dry run writes a file only when told where
    assert main(["orders", "import", str(path), "--dry-run", "--errors", str(tmp_path / "check.csv")]) == 1
    assert errors_csv(tmp_path / "check.csv")[1][:2] == ["4", "DY3"]


def test_each_rejected_row_is_in_the_errors_csv_with_its_number_and_reason(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    rows = [row("DY1"), row("DY2", sku="BP-001"), row("DY2", sku="OF-002", price="abc"), [""] * len(DOUYIN),
            row("DY3", phone="138-abc"), row("DY4", address="")]
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, rows, "utf-8-sig")
    assert main(["orders", "import", str(path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert f"被拒绝的行及原因见 {tmp_path / 'douyin.errors.csv'}" in out
    assert errors_csv(tmp_path / "douyin.errors.csv") == [
        ["行号", "订单编号", "原因"],
        ["3", "DY2", "同一订单的第 4 行有误，整单未导入。"],  # the good line of a bad order is not imported either
        ["4", "DY2", "数量或单价不是数字（1 / abc）。"],
        ["6", "DY3", "电话格式不对，应为数字。"],  # row 5 is blank: rows keep the numbers Excel shows
        ["7", "DY4", "缺少详细地址。"],
    ]
    assert [o["external_id"] for o in orders_in(env)] == ["DY1"]
    assert main(["orders", "import", str(path), "--errors", str(tmp_path / "e.csv")]) == 1
    assert len(errors_csv(tmp_path / "e.csv")) == 5


def test_a_closed_history_order_is_stored_as_given_reserving_no_stock_and_telling_nobody(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    assert main(["users", "add", "wh1", "--name", "仓管", "--role", "warehouse", "--store", "SH01"]) == 0
    assert main(["users", "add", "sup1", "--name", "主管", "--role", "supervisor"]) == 0
    stock(env, "SH01", "BP-001", 10)
    rows = [[*row("DY1", status="已完成"), "2025-03-01 09:30:00"], [*row("DY2", status="已取消"), "2025/03/02 18:00"],
            [*row("DY3", status="待发货"), "2025-03-03 10:00:00"], [*row("DY4", status="已完成"), "昨天"]]
    path = write_csv(tmp_path / "douyin.csv", HISTORY, rows, "utf-8")
    assert main(["orders", "import", str(path), "--history", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "新建 2，已存在 0），有问题 2 单" in out
    assert "第 4 行：历史导入只收已完成或已取消的订单（订单状态：待发货）。" in out
    assert "第 5 行：下单时间看不懂（昨天）" in out
    orders = orders_in(env)
    assert [(o["external_id"], o["state"], o["created_at"]) for o in orders] == [
        ("DY1", "completed", datetime(2025, 3, 1, 1, 30, tzinfo=UTC)),  # Beijing time as written, stored in UTC
        ("DY2", "cancelled", datetime(2025, 3, 2, 10, 0, tzinfo=UTC)),
    ]
    assert [i["reserved"] for i in rows_in(env, t.inventory)] == [0]
    assert rows_in(env, t.outbox) == [] and rows_in(env, t.exceptions) == []
    trail = sorted((a["entity_id"], a["action"], a["to_state"], a["via"]) for a in rows_in(env, t.audit_log)
                   if a["entity"] == "order")
    assert trail == [(orders[0]["order_no"], "import", "completed", "import"),
                     (orders[1]["order_no"], "import", "cancelled", "import")]
    assert main(["orders", "import", str(path), "--history", "--no-progress"]) == 1
    assert "新建 0，已存在 2" in capsys.readouterr().out


def test_without_history_a_closed_order_is_refused_with_the_way_to_import_it(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, [row("DY1", status="已完成")], "utf-8")
    assert main(["orders", "import", str(path), "--no-progress"]) == 1
    assert "第 2 行：订单已结束（订单状态：已完成），请用 --history 导入历史订单。" in capsys.readouterr().out
    assert orders_in(env) == []
    assert main(["orders", "import", str(path), "--history"]) == 2  # and --history needs the order time
    assert "文件缺少列：下单时间" in capsys.readouterr().err


def test_an_imports_shortages_are_one_incident_and_one_push_not_one_per_order(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    assert main(["users", "add", "sup1", "--name", "主管", "--role", "supervisor"]) == 0
    assert main(["users", "add", "wh1", "--name", "仓管", "--role", "warehouse", "--store", "SH01"]) == 0
    stock(env, "SH01", "BP-001", 3)  # three orders can be filled; OF-002 has no stock at all
    rows = [row(f"DY{i:02d}", sku="BP-001") for i in range(3)] + [row(f"DY{i:02d}", sku="OF-002") for i in range(3, 33)]
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, rows, "utf-8")
    assert main(["orders", "import", str(path), "--batch", "7", "--no-progress"]) == 0  # five batches
    out = capsys.readouterr().out
    orders = {o["external_id"]: o for o in orders_in(env)}
    assert [orders[f"DY{i:02d}"]["state"] for i in range(3)] == ["split"] * 3
    assert {orders[f"DY{i:02d}"]["state"] for i in range(3, 33)} == {"paid"}
    [incident] = rows_in(env, t.exceptions)
    short = [orders[f"DY{i:02d}"]["order_no"] for i in range(3, 8)]
    assert incident["kind"] == "out_of_stock" and incident["severity"] == "critical"
    assert "有 30 单缺货" in incident["message"] and "、".join(short) + " 等" in incident["message"]
    assert f"缺货 30 单（仍为已支付），已汇总为 异常 #{incident['id']}" in out
    pushes = rows_in(env, t.outbox)
    assert sorted(p["recipient"] for p in pushes) == ["sup1"] + ["wh1"] * 3  # one summary, and the 3 pick tasks
    assert [i["reserved"] for i in rows_in(env, t.inventory)] == [3]


def test_an_order_the_database_refuses_does_not_fail_the_good_orders_of_its_batch(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    add_many = OrderRepository.add_many

    async def refusing(self: OrderRepository, orders: Any) -> None:
        if any(o.external_id == "DY-BAD" for o in orders):
            raise IntegrityError("INSERT INTO orders", {}, Exception("value refused"))
        await add_many(self, orders)

    monkeypatch.setattr(OrderRepository, "add_many", refusing)
    rows = [row("DY1"), row("DY2"), row("DY-BAD"), row("DY-BAD", sku="OF-002"), row("DY3"), row("DY4")]
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, rows, "utf-8")
    assert main(["orders", "import", str(path), "--batch", "5", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "新建 4，已存在 0），有问题 1 单" in out
    assert "第 4 行：订单 DY-BAD：" in out
    assert sorted(o["external_id"] for o in orders_in(env)) == ["DY1", "DY2", "DY3", "DY4"]
    assert [r[:2] for r in errors_csv(tmp_path / "douyin.errors.csv")[1:]] == [["4", "DY-BAD"], ["5", "DY-BAD"]]


def test_the_summary_gives_rows_per_second_and_the_progress_bar_goes_to_stderr(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, [row(f"DY{i}") for i in range(50)], "utf-8")
    assert main(["orders", "import", str(path)]) == 0
    captured = capsys.readouterr()
    assert "共 50 行，用时" in captured.out and "行/秒" in captured.out
    assert "写入" in captured.err and "50/50" in captured.err
