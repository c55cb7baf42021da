"""`orderbot orders import`: channel exports (CSV in GBK, XLSX) become orders; bad rows skip their order."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.cli import main
from integrations.db import tables as t

DOUYIN = ["订单编号", "买家ID", "收货人", "收货人手机号", "详细地址", "发货门店", "商家编码", "商品名称", "商品数量", "商品单价", "订单状态"]


def orders_in(url: str) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(select(t.orders).order_by(t.orders.c.id))]
        await engine.dispose()
        return rows

    return asyncio.run(read())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_url: str) -> str:
    monkeypatch.setenv("ORDERBOT_DATABASE_URL", db_url)
    assert main(["users", "list"]) == 0  # the database answers
    return db_url


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_a_gbk_douyin_csv_becomes_orders_and_a_second_import_adds_nothing(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        ["DY1", "C1", "浦东4S店", "13800000000", "上海市浦东新区张杨路500号", "SH01", "BP-001", "刹车片", "2", "199.00", "待发货"],
        ["DY1", "C1", "浦东4S店", "13800000000", "上海市浦东新区张杨路500号", "SH01", "OF-002", "机油滤芯", "1", "45.00", "待发货"],
        ["DY2", "C2", "徐汇修理厂", "13900000000", "上海市徐汇区漕溪北路1号", "SH01", "BP-001", "刹车片", "1", "199.00", "待付款"],
    ]
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, rows, "gb18030")
    assert main(["orders", "import", str(path)]) == 0  # the channel is recognised from the columns
    assert "导入 2 单（新建 2，已存在 0）" in capsys.readouterr().out
    orders = orders_in(env)
    assert [(o["external_id"], o["state"], o["amount_fen"], len(o["lines"])) for o in orders] == [  # type: ignore[arg-type]
        ("DY1", "paid", 44_300, 2), ("DY2", "pending_payment", 19_900, 1)]
    assert main(["orders", "import", str(path), "--channel", "douyin"]) == 0
    assert "新建 0，已存在 2" in capsys.readouterr().out
    assert len(orders_in(env)) == 2


def test_a_bad_row_skips_only_its_order_and_names_the_row(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        ["DY1", "C1", "浦东4S店", "138", "上海市浦东新区张杨路500号", "SH01", "BP-001", "刹车片", "0", "199.00", "待发货"],
        ["DY2", "C2", "徐汇修理厂", "139", "上海市徐汇区漕溪北路1号", "SH01", "BP-001", "刹车片", "1", "abc", "待发货"],
        ["DY3", "C3", "闵行店", "137", "上海市闵行区莘庄镇1号", "SH01", "BP-001", "刹车片", "1", "199", "待发货"],
    ]
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, rows, "utf-8-sig")
    assert main(["orders", "import", str(path)]) == 1
    out = capsys.readouterr().out
    assert "第 2 行：数量须在 1 到 10000 之间" in out and "第 3 行：数量或单价不是数字" in out
    assert [o["external_id"] for o in orders_in(env)] == ["DY3"]


def test_an_xlsx_from_the_mini_program(env: str, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["order_id", "openid", "receiver_name", "receiver_phone", "receiver_address", "store_code",
                  "sku_code", "goods_name", "quantity", "price", "pay_status"])
    sheet.append(["WX9", "o-abc", "张三", "13700000000", "杭州市西湖区文三路90号", "HZ01", "SP-003", "火花塞", 4, 35.5, "paid"])
    book.save(tmp_path / "mini.xlsx")
    assert main(["orders", "import", str(tmp_path / "mini.xlsx"), "--channel", "miniprogram"]) == 0
    [order] = orders_in(env)
    assert (order["channel"], order["external_id"], order["amount_fen"]) == ("miniprogram", "WX9", 14_200)


def test_unreadable_input_is_refused_with_a_sentence(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["orders", "import", str(tmp_path / "missing.csv")]) == 2
    assert "找不到文件" in capsys.readouterr().err
    path = write_csv(tmp_path / "other.csv", ["a", "b"], [["1", "2"]], "utf-8")
    assert main(["orders", "import", str(path)]) == 2
    assert "认不出是哪个渠道" in capsys.readouterr().err
    assert main(["orders", "import", str(path), "--channel", "douyin"]) == 2
    assert "文件缺少列" in capsys.readouterr().err
    assert orders_in(env) == []
