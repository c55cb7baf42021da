"""The reason classifier on sentences customers really write, and its measured accuracy."""

from __future__ import annotations

import pytest

from domain.aftersale_reasons import CATEGORIES, OTHER, classify, scores

REASONS: list[tuple[str, str]] = [
    # 型号不符
    ("刹车片装不上，尺寸不对", "型号不符"),
    ("买错了型号", "型号不符"),
    ("跟我的车不匹配，卡钳装不进去", "型号不符"),
    ("孔位对不上，没法安装", "型号不符"),
    ("拍错了，我的车是2018款的", "型号不符"),
    ("滤芯尺寸偏小，装上去漏气……其实是型号不对", "型号不符"),
    ("雨刮接口不一样，用不了", "型号不符"),
    ("客服推荐的型号不适配我的卡罗拉", "型号不符"),
    ("机油滤芯和原车的不一样，拧不上", "型号不符"),
    # 质量问题
    ("用了两天就异响", "质量问题"),
    ("装上开了一百公里刹车就吱吱响", "质量问题"),
    ("灯泡装上就不亮了", "质量问题"),
    ("减震器漏油，才用了一个月", "质量问题"),
    ("电瓶用了一周就打不着火", "质量问题"),
    ("刹车盘有裂纹，质量太差", "质量问题"),
    ("感觉是翻新件，不是正品", "质量问题"),
    ("装好后故障灯一直亮", "质量问题"),
    ("安装师傅说这个不是原厂件", "质量问题"),
    ("电瓶没电，充不进电", "质量问题"),
    # 发错货
    ("收到的跟下单的不一样", "发错货"),
    ("发错货了，我买的是前刹车片，发来的是后刹车片", "发错货"),
    ("少发了一个火花塞，订了四个只收到三个", "发错货"),
    ("和图片上的不一样", "发错货"),
    ("货不对板，品牌都不对", "发错货"),
    ("这不是我买的东西", "发错货"),
    ("我买的是5W-30，发来的却是0W-20", "发错货"),
    # 物流损坏
    ("包装压坏了，机油漏了", "物流损坏"),
    ("快递盒子破了零件变形", "物流损坏"),
    ("收到时外箱破损，大灯摔碎了", "物流损坏"),
    ("物流显示签收了但我一直没收到", "物流损坏"),
    ("拆开就发现玻璃水洒了一箱子", "物流损坏"),
    ("运输途中磕坏了，保险杠有个大口子", "物流损坏"),
    ("到手就是裂的", "物流损坏"),
    # 不想要了
    ("不需要了", "不想要了"),
    ("七天无理由", "不想要了"),
    ("7天无理由退货", "不想要了"),
    ("拍多了，退一个", "不想要了"),
    ("车卖了，用不上了", "不想要了"),
    ("质量没问题，就是不想要了", "不想要了"),
    ("包装完好没拆封，别家更便宜", "不想要了"),
    ("重复下单了", "不想要了"),
    ("买重复了", "不想要了"),
    # 其他
    ("", "其他"),
    ("发票抬头开错了，想重开", "其他"),
    ("请尽快处理", "其他"),
    ("快递太慢了", "其他"),
    ("ＡＢＳ传感器", "其他"),
]


@pytest.mark.parametrize(("reason", "expected"), REASONS)
def test_each_reason_lands_in_its_category(reason: str, expected: str) -> None:
    assert classify(reason) == expected, scores(reason)


def test_measured_accuracy_on_the_whole_table() -> None:
    right = sum(classify(reason) == expected for reason, expected in REASONS)
    accuracy = right / len(REASONS)
    assert len(REASONS) >= 30
    assert accuracy == 1.0, f"accuracy {accuracy:.1%} ({right}/{len(REASONS)})"


def test_every_category_is_covered_by_the_table() -> None:
    assert {expected for _, expected in REASONS} == set(CATEGORIES)


def test_a_negated_phrase_is_not_evidence() -> None:
    assert classify("不是质量问题，也不是快递的问题，我就是不想要了") == "不想要了"
    assert classify("没有异响") == OTHER


def test_full_width_text_is_folded() -> None:
    assert classify("７天无理由") == "不想要了"
