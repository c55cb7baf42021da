"""The words of a plain question: the patterns that say what is asked, and the text made ready for them.

Patterns over the normalised text (lower case, half-width, Chinese numerals before a unit as digits): times,
states, channels, order numbers and the words of each kind of question (bot/understanding.py reads a sentence
with them). normalise() makes the text; prepare() and segment() cut what is left into words with jieba.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.order_lifecycle import SHIPPED_OR_LATER
from domain.questions import Span

log = logging.getLogger(__name__)
NOT_SHIPPED = ("paid", "split", "picking", "quality_check", "packed")

# ---- the words, as patterns over the normalised (lower-case, half-width) text

_NUMERAL = re.compile(r"[零〇一二两三四五六七八九十百]+(?=\s*个?\s*(?:小时|钟头|分钟|天|日|号|月|周|星期|礼拜|单|笔|条|件))")
SPANS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Span]], ...] = tuple(
    (re.compile(p), f) for p, f in (
        (r"(?:最近|近|过去|前)\s*(\d+)\s*个?\s*(?:小时|钟头|h\b)|(\d+)\s*个?\s*(?:小时|钟头)(?:内|以内|之内)"
         r"|(?:last|past)\s*(\d+)\s*hours?", lambda m: Span("hours", _first_int(m))),
        (r"(?:最近|近|过去)\s*(\d+)\s*分钟|(\d+)\s*分钟(?:内|以内)|(?:last|past)\s*(\d+)\s*min",
         lambda m: Span("minutes", _first_int(m))),
        (r"(?:最近|近|过去)\s*(\d+)\s*天|(\d+)\s*天(?:内|以内)|(?:last|past)\s*(\d+)\s*days?",
         lambda m: Span("days", _first_int(m))),
        (r"(\d{1,2})\s*月\s*(\d{1,2})\s*(?:日|号)?", lambda m: Span("date", month=int(m[1]), day=int(m[2]))),
        (r"今天|今日|today|当天", lambda m: Span("today")),
        (r"昨天|昨日|yesterday", lambda m: Span("yesterday")),
        (r"前天", lambda m: Span("days_ago", 2)),
        (r"本周|这周|这个?星期|这个?礼拜|this\s*week|本星期", lambda m: Span("this_week")),
        (r"上周|上个?星期|上个?礼拜|上1周|last\s*week", lambda m: Span("last_week")),
        (r"本月|这个?月|this\s*month", lambda m: Span("this_month")),
    )
)
AGE = re.compile(r"(?:超过|大于|多于|超|over|>)\s*(\d+)\s*个?\s*(小时|钟头|分钟|天|h|min|hours?|days?)"
                  r"|(\d+)\s*个?\s*(小时|钟头|分钟|天)\s*(?:以上|多(?!少)|还没|没|未)")


@dataclass(frozen=True)
class StateWords:
    pattern: re.Pattern[str]
    states: tuple[str, ...]
    label: str
    time_field: str = "updated"


STATES = tuple(StateWords(re.compile(p), s, label, tf) for p, s, label, tf in (
    (r"签收异常|配送异常|delivery\s*exception", ("delivery_exception",), "签收异常", "updated"),
    (r"待付款|待支付|未付款|没付款|未支付|没支付|没付钱|unpaid", ("pending_payment",), "待支付", "created"),
    (r"没发|未发|待发|没出库|未出库|not\s*shipped|unshipped|没有发|还没出", NOT_SHIPPED, "未发货", "created"),
    (r"拣货中|在拣|正在拣|拣货|picking", ("picking",), "拣货中", "updated"),
    (r"质检", ("quality_check",), "质检中", "updated"),
    (r"待出库|打包好|已打包|打包了|打好包|packed", ("packed",), "待出库", "updated"),
    (r"运输中|在路上|在途|in\s*transit", ("in_transit",), "运输中", "updated"),
    (r"已签收|签收了|签收|delivered", ("delivered",), "已签收", "updated"),
    (r"已完成|完成了|完成|completed", ("completed",), "已完成", "updated"),
    (r"取消|cancel", ("cancelled",), "已取消", "updated"),
    (r"待分配|没分配|未分配|已支付|已付款|paid", ("paid",), "待分配", "updated"),
    (r"拆单|拆了", ("split",), "已拆单", "updated"),
    (r"已发货|发了|发出|发货|出库|shipped|发走|寄出", SHIPPED_OR_LATER, "已发货", "shipped"),
))
ADDRESS_CHANGED = re.compile(r"改了?地址|改过地址|改址|地址变更|换了?地址|地址改了|changed?\s*address")
CHANNELS = ((re.compile(r"抖音|抖店|douyin"), "douyin", "抖音"),
             (re.compile(r"小程序|mini\s*-?program|微信商城"), "miniprogram", "小程序"),
             (re.compile(r"k3|金蝶|erp"), "k3", "K3"))
REF = re.compile(r"(?<![a-z0-9_-])([a-z0-9][a-z0-9_-]{3,63})(?![a-z0-9_-])")
AFTERSALE_NO = re.compile(r"as\d{3,}")

LIST = re.compile(r"哪些|哪几|列出|列一下|列个|清单|明细|列表|有什么|都有啥|是哪|具体|\blist\b|\bwhich\b|\bshow\b")
AMOUNT = re.compile(r"金额|多少钱|销售额|营业额|卖了多少钱|总额|流水|货款|\bamount\b|\brevenue\b|\bgmv\b|\bsales\b")
MINE = re.compile(r"我们店|我们门店|我店|本店|咱店|咱们店|我的门店|本门店|my\s*store|our\s*store")
PER_STORE = re.compile(r"各店|各门店|各个店|每个店|每家店|分店|各家|哪个店|哪家店|by\s*store|each\s*store")
HEALTH = re.compile(r"概况|总体|整体|健康|运营情况|summary|overview|dashboard|看板|health"
                     r"|(?:今天|今日|现在|目前)的?(?:情况|怎么样|如何)")
AFTERSALE = re.compile(r"退款|退货|换货|售后|退换|refunds?|returns?|aftersales?|exchanges?")
APPROVED = re.compile(r"批了|批过|批准|审批了|同意了|通过了|approved?|批")
REJECTED = re.compile(r"拒了|拒绝|驳回|rejected?")
PENDING = re.compile(r"待审批|待批|没批|未批|未审批|等审批|待处理|pending")
STOCK = re.compile(r"库存|存货|还剩|剩多少|剩几|剩下|有货|没货|缺不缺|够不够|stock|inventory|(?:还有|有)多少(?!单)")
INCIDENT = re.compile(r"异常|问题|卡单|卡住|物流冲突|地址不详|地址未核验|补货申请|缺货|exceptions?|incidents?|problems?")
INCIDENT_KINDS = ((re.compile(r"缺货|out\s*of\s*stock"), "out_of_stock", "缺货"),
                   (re.compile(r"补货"), "purchase_request", "补货申请"),
                   (re.compile(r"卡单|卡住|stuck"), "stuck_order", "卡单"),
                   (re.compile(r"物流冲突|物流"), "logistics_conflict", "物流冲突"),
                   (re.compile(r"地址不详"), "address_unresolved", "地址不详"),
                   (re.compile(r"地址未核验|未核验"), "address_unverified", "地址未核验"))
ORDER = re.compile(r"单|订单|orders?|件|下单|卖了|成交")
KINDS = ((re.compile(r"换货|exchange"), "exchange", "换货"), (re.compile(r"退货|return"), "return", "退货退款"),
          (re.compile(r"仅退款"), "refund", "仅退款"))
# Words that are never a name: what people say around the question.
FILLER = re.compile(
    r"帮我|帮忙|麻烦|请问|请|看看|看下|看一下|查下|查查|查一下|查询|一下|告诉我|我想知道|知道|现在|目前|一共|总共|总计|"
    r"多少|几单|几笔|几条|几个|几|有没有|是不是|能不能|还有|都|的|了|吗|呢|啊|吧|呀|嘛|给我|我们|我|你|有|个|和|跟|"
    r"单|笔|条|件|订单|数量|情况|\b(?:what|how|many|much|is|are|the|of|in|for|at|today|by|where|to|did)\b"
)


def _first_int(m: re.Match[str]) -> int:
    return int(next(g for g in m.groups() if g is not None))


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, @-mentions and outer punctuation dropped, numerals as digits."""
    folded = unicodedata.normalize("NFKC", text).lower()
    folded = re.sub(r"@\S+\s*", " ", folded)
    folded = re.sub(r"\s+", " ", folded).strip(" ?!.,;:~。？！，、；：…")
    return _NUMERAL.sub(_arabic, folded)


def _arabic(m: re.Match[str]) -> str:
    import cn2an  # imported on first use: it is slow to import and most sentences carry no Chinese numeral

    try:
        return str(int(cn2an.cn2an(m.group(0), "smart")))
    except (ValueError, KeyError, TypeError):
        return m.group(0)


# ---- the segmenter: jieba, its prefix dictionary cached in a file, quiet, warmed up at start-up

_TOKENIZER: Any = None
_KNOWN_WORDS = ("几单", "没发", "几笔", "这周", "本周", "上周", "批了", "还剩", "剩多少", "多少钱", "待审批", "未处理",
                "卡单", "缺货", "签收", "改地址", "运输中", "待出库", "拣货中")


def prepare(cache_dir: str | Path | None = None) -> Any:
    """Load jieba's dictionary once (about 1 s the first time; a cache file makes later starts quick)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        if cache_dir is not None:
            folder = Path(cache_dir).resolve()  # absolute: jieba joins a relative name onto the temp directory
            try:
                folder.mkdir(parents=True, exist_ok=True)
                if os.access(folder, os.W_OK):
                    tokenizer.cache_file = str(folder / "jieba.cache")
            except OSError:
                log.warning("jieba cache folder %s not usable; the temp directory is used", folder)
        tokenizer.initialize()
        for word in _KNOWN_WORDS:
            tokenizer.add_word(word, freq=100_000)
        tokenizer.lcut("蒲东店今天还有几单没发", HMM=True)  # loads the HMM tables for unknown words now
        _TOKENIZER = tokenizer
        import cn2an  # noqa: F401  (its first import takes ~0.2 s: paid here, not by the first question)
    return _TOKENIZER


def segment(text: str) -> list[str]:
    return [w for w in prepare().lcut(text, HMM=True) if w.strip()]


def strip_patterns(text: str) -> str:
    """The text without the words of a question, so they are never taken for a misspelt name."""
    for pattern in (MINE, PER_STORE, LIST, AMOUNT, HEALTH, AFTERSALE, APPROVED, REJECTED, PENDING, STOCK,
                    INCIDENT, ADDRESS_CHANGED, AGE, *(s.pattern for s in STATES), *(p for p, _ in SPANS),
                    *(p for p, _, _ in CHANNELS), ORDER):
        text = pattern.sub(" ", text)
    return text
