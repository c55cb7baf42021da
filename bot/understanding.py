"""Plain questions into typed ones (domain/questions.py): rules and the data's own names, no model, no service.

The sentence is normalised (full-width to ASCII, lower case, Chinese numerals before a unit to digits with
cn2an), the names the data knows are found in it (bot/lexicon.py), then order numbers, times, states,
channels and the words that say what is asked. What is left is cut into words (jieba) and each is tried
fuzzily against the store, staff and part names; a near tie becomes a question back with the choices.
Anything that is not recognised as a question gives None, and the edge answers as it always has.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.lexicon import Entry, Found, Lexicon
from domain.order_lifecycle import SHIPPED_OR_LATER
from domain.questions import (
    MAX_CHOICES,
    AftersaleQuestion,
    AftersaleStatus,
    Choice,
    Clarify,
    HealthQuestion,
    IncidentQuestion,
    OrderQuestion,
    Place,
    Question,
    Span,
    StockQuestion,
    WhereIsOrder,
    choice_prompt,
)

log = logging.getLogger(__name__)
NOT_SHIPPED = ("paid", "split", "picking", "quality_check", "packed")

# ---- the words, as patterns over the normalised (lower-case, half-width) text

_NUMERAL = re.compile(r"[零〇一二两三四五六七八九十百]+(?=\s*个?\s*(?:小时|钟头|分钟|天|日|号|月|周|星期|礼拜|单|笔|条|件))")
_SPANS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Span]], ...] = tuple(
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
_AGE = re.compile(r"(?:超过|大于|多于|超|over|>)\s*(\d+)\s*个?\s*(小时|钟头|分钟|天|h|min|hours?|days?)"
                  r"|(\d+)\s*个?\s*(小时|钟头|分钟|天)\s*(?:以上|多(?!少)|还没|没|未)")


@dataclass(frozen=True)
class StateWords:
    pattern: re.Pattern[str]
    states: tuple[str, ...]
    label: str
    time_field: str = "updated"


_STATES = tuple(StateWords(re.compile(p), s, label, tf) for p, s, label, tf in (
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
_ADDRESS_CHANGED = re.compile(r"改了?地址|改过地址|改址|地址变更|换了?地址|地址改了|changed?\s*address")
_CHANNELS = ((re.compile(r"抖音|抖店|douyin"), "douyin", "抖音"),
             (re.compile(r"小程序|mini\s*-?program|微信商城"), "miniprogram", "小程序"),
             (re.compile(r"k3|金蝶|erp"), "k3", "K3"))
_REF = re.compile(r"(?<![a-z0-9_-])([a-z0-9][a-z0-9_-]{3,63})(?![a-z0-9_-])")
_AFTERSALE_NO = re.compile(r"as\d{3,}")

_LIST = re.compile(r"哪些|哪几|列出|列一下|列个|清单|明细|列表|有什么|都有啥|是哪|具体|\blist\b|\bwhich\b|\bshow\b")
_AMOUNT = re.compile(r"金额|多少钱|销售额|营业额|卖了多少钱|总额|流水|货款|\bamount\b|\brevenue\b|\bgmv\b|\bsales\b")
_MINE = re.compile(r"我们店|我们门店|我店|本店|咱店|咱们店|我的门店|本门店|my\s*store|our\s*store")
_PER_STORE = re.compile(r"各店|各门店|各个店|每个店|每家店|分店|各家|哪个店|哪家店|by\s*store|each\s*store")
_HEALTH = re.compile(r"概况|总体|整体|健康|运营情况|summary|overview|dashboard|看板|health"
                     r"|(?:今天|今日|现在|目前)的?(?:情况|怎么样|如何)")
_AFTERSALE = re.compile(r"退款|退货|换货|售后|退换|refunds?|returns?|aftersales?|exchanges?")
_APPROVED = re.compile(r"批了|批过|批准|审批了|同意了|通过了|approved?|批")
_REJECTED = re.compile(r"拒了|拒绝|驳回|rejected?")
_PENDING = re.compile(r"待审批|待批|没批|未批|未审批|等审批|待处理|pending")
_STOCK = re.compile(r"库存|存货|还剩|剩多少|剩几|剩下|有货|没货|缺不缺|够不够|stock|inventory|(?:还有|有)多少(?!单)")
_INCIDENT = re.compile(r"异常|问题|卡单|卡住|物流冲突|地址不详|地址未核验|补货申请|缺货|exceptions?|incidents?|problems?")
_INCIDENT_KINDS = ((re.compile(r"缺货|out\s*of\s*stock"), "out_of_stock", "缺货"),
                   (re.compile(r"补货"), "purchase_request", "补货申请"),
                   (re.compile(r"卡单|卡住|stuck"), "stuck_order", "卡单"),
                   (re.compile(r"物流冲突|物流"), "logistics_conflict", "物流冲突"),
                   (re.compile(r"地址不详"), "address_unresolved", "地址不详"),
                   (re.compile(r"地址未核验|未核验"), "address_unverified", "地址未核验"))
_ORDER = re.compile(r"单|订单|orders?|件|下单|卖了|成交")
_KINDS = ((re.compile(r"换货|exchange"), "exchange", "换货"), (re.compile(r"退货|return"), "return", "退货退款"),
          (re.compile(r"仅退款"), "refund", "仅退款"))
# Words that are never a name: what people say around the question.
_FILLER = re.compile(
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


def _segment(text: str) -> list[str]:
    return [w for w in prepare().lcut(text, HMM=True) if w.strip()]


# ---- the understander

@dataclass
class Reading:
    """What was found in one sentence so far."""

    text: str
    masked: str
    stores: list[Found] = field(default_factory=list)
    skus: list[Found] = field(default_factory=list)
    parts: list[Found] = field(default_factory=list)
    staff: list[Found] = field(default_factory=list)
    customers: list[Found] = field(default_factory=list)
    unsure: tuple[str, list[Entry]] | None = None  # a word that may be any of these names

    def mask(self, start: int, end: int) -> None:
        self.masked = self.masked[:start] + " " * (end - start) + self.masked[end:]

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        m = pattern.search(self.masked)
        if m:
            self.mask(m.start(), m.end())
        return m

    def has(self, pattern: re.Pattern[str]) -> bool:
        return pattern.search(self.masked) is not None


class Understander:
    """text -> Question | None, against one lexicon; pure and fast (well under 5 ms a sentence)."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        tokenizer = prepare()
        for word in lexicon.words:
            if not word.isascii():
                tokenizer.add_word(word, freq=100_000)

    def __call__(self, text: str) -> Question | None:
        try:
            return self.understand(text)
        except Exception:  # a sentence must never break the chat: it is answered as not understood
            log.warning("could not read a question", exc_info=True)
            return None

    def understand(self, text: str) -> Question | None:
        norm = normalise(text)
        if not norm:
            return None
        r = Reading(norm, norm)
        self._names(r)
        ref = self._ref(r)
        if ref is not None:
            return ref
        self._fuzzy(r)
        if r.unsure is not None:
            return self._ask_back(r)
        return self._question(r)

    # -- names

    def _names(self, r: Reading) -> None:
        for found in self.lexicon.find_exact(r.text):
            bucket = {"store": r.stores, "sku": r.skus, "part": r.parts, "staff": r.staff,
                      "customer": r.customers}[found.entry.kind]
            bucket.append(found)
            r.mask(found.start, found.end)

    def _ref(self, r: Reading) -> Question | None:
        for m in _REF.finditer(r.masked):
            token = m.group(1)
            if sum(ch.isdigit() for ch in token) < 2 or len(token) < 5:
                continue
            if _AFTERSALE_NO.fullmatch(token):
                return AftersaleStatus(token.upper())
            return WhereIsOrder(token.upper())
        return None

    def _fuzzy(self, r: Reading) -> None:
        """Words left over that may be a misspelt store, person or part."""
        rest = _FILLER.sub(" ", _strip_patterns(r.masked))
        words: list[str] = []
        for run in rest.split():
            words += _segment(run) if not run.isascii() else [run]
        tokenizer = prepare()
        candidates = []
        for i in range(len(words)):
            for j in range(i + 1, min(i + 3, len(words)) + 1):
                gram = "".join(words[i:j])
                if 2 <= len(gram) <= 8 and (j > i + 1 or tokenizer.FREQ.get(gram, 0) < 300):
                    candidates.append(gram)
        for gram in sorted(candidates, key=len, reverse=True):
            start = r.masked.find(gram)
            if start < 0:
                continue  # not contiguous in the sentence, or part of a name already found
            matches = self.lexicon.find_fuzzy(gram)
            if not matches:
                continue
            if len(matches) > 1:
                r.unsure = (gram, [e for e, _ in matches[:MAX_CHOICES]])
                return
            entry, score = matches[0]
            found = Found(entry, start, start + len(gram), score)
            {"store": r.stores, "staff": r.staff, "part": r.parts}.get(entry.kind, []).append(found)
            r.mask(found.start, found.end)

    def _ask_back(self, r: Reading) -> Clarify:
        assert r.unsure is not None
        said, entries = r.unsure
        choices = tuple(Choice(self._display(e), r.text.replace(said, self._display(e), 1)) for e in entries)
        return Clarify(choice_prompt("您是说：", choices), choices)

    def _display(self, e: Entry) -> str:
        return self.lexicon.short_store(e.key) if e.kind == "store" else e.name

    # -- what is asked

    def _question(self, r: Reading) -> Question | None:
        stores = self._places(r)
        mine = r.take(_MINE) is not None
        per_store = r.take(_PER_STORE) is not None
        listing = r.take(_LIST) is not None
        amount = r.take(_AMOUNT) is not None
        age = self._age(r)
        span = self._span(r)
        if _HEALTH.search(r.text) and not (r.skus or r.parts or r.has(_AFTERSALE) or r.has(_STOCK) or r.has(_INCIDENT)
                                   or r.has(_ORDER) or stores):
            return HealthQuestion()
        if r.has(_AFTERSALE) or (r.staff and (r.has(_APPROVED) or r.has(_REJECTED))):
            return self._aftersale(r, span, listing, amount)
        if r.skus or r.parts:
            return self._stock(r, stores, mine)
        if r.has(_STOCK) and not r.has(_ORDER) and not r.has(_INCIDENT):
            return Clarify("您要查哪个配件的库存？请发送：库存 <SKU或名称> [门店]，如：库存 BP-001")
        if r.has(_INCIDENT) and not r.has(re.compile("签收异常")):
            return self._incidents(r, stores, mine, listing, age, span)
        order = self._orders(r, stores, mine, per_store, listing, amount, age, span)
        if order is not None:
            return order
        if stores and not r.staff:
            return self._store_only(r, stores[0])
        if r.staff:
            name = r.staff[0].entry.name
            return Clarify(f"您是说：{name}本周批的退款？",
                           (Choice(f"{name}本周批的退款", f"{name}这周批了几笔退款"),))
        if r.customers:
            c = r.customers[0].entry
            return OrderQuestion(customer=c.key, customer_label=c.name, listing=True)
        return None

    def _places(self, r: Reading) -> tuple[Place, ...]:
        seen: dict[str, Place] = {}
        for f in sorted(r.stores, key=lambda f: f.start):
            seen.setdefault(f.entry.key, Place(f.entry.key, self.lexicon.short_store(f.entry.key)))
        return tuple(seen.values())

    def _age(self, r: Reading) -> int:
        m = r.take(_AGE)
        if m is None:
            return 0
        n, unit = (m[1], m[2]) if m[1] else (m[3], m[4])
        minutes = {"小时": 60, "钟头": 60, "h": 60, "hour": 60, "hours": 60, "天": 1440, "day": 1440,
                   "days": 1440}.get(unit, 1)
        return int(n) * minutes

    def _span(self, r: Reading) -> Span | None:
        for pattern, make in _SPANS:
            m = r.take(pattern)
            if m:
                return make(m)
        return None

    def _aftersale(self, r: Reading, span: Span | None, listing: bool, amount: bool) -> AftersaleQuestion:
        kinds: tuple[str, ...] = ()
        kind_label = "售后"
        for pattern, kind, label in _KINDS:
            if r.has(pattern):
                kinds, kind_label = (kind,), label
                break
        if not kinds and r.has(re.compile(r"退款|refund")):
            kind_label = "退款"
        approver = r.staff[0].entry if r.staff else None
        decision = ""
        states: tuple[str, ...] = ()
        state_label = ""
        if r.has(_PENDING):
            states, state_label = ("pending_approval",), "待审批"
        elif r.has(_REJECTED):
            decision = "rejected"
        elif r.has(_APPROVED) or approver is not None:
            decision = "approved"
        elif r.has(re.compile(r"已退款|退了")):
            states, state_label = ("refunded",), "已退款"
        return AftersaleQuestion(
            listing=listing, states=states, state_label=state_label, kinds=kinds, kind_label=kind_label,
            approver=approver.key if approver else "", approver_name=approver.name if approver else "",
            decision=decision,  # type: ignore[arg-type]
            span=span, amount=amount,
        )

    def _stock(self, r: Reading, stores: tuple[Place, ...], mine: bool) -> StockQuestion:
        if r.skus:
            skus = tuple(dict.fromkeys(f.entry.key for f in r.skus))
            part = self.lexicon.skus.get(skus[0], "") or skus[0]
            return StockQuestion(skus=skus, part=part if len(skus) == 1 else "、".join(skus), stores=stores, mine=mine)
        name = r.parts[0].entry.key
        return StockQuestion(skus=self.lexicon.part_skus.get(name, ()), part=name, stores=stores, mine=mine)

    def _incidents(self, r: Reading, stores: tuple[Place, ...], mine: bool, listing: bool, age: int,
                   span: Span | None) -> IncidentQuestion:
        kinds: tuple[str, ...] = ()
        label = ""
        for pattern, kind, kind_label in _INCIDENT_KINDS:
            if r.has(pattern):
                kinds, label = (*kinds, kind), kind_label if not label else f"{label}、{kind_label}"
        return IncidentQuestion(listing=listing, kinds=kinds, kind_label=label, older_than_minutes=age, span=span,
                                stores=stores, mine=mine)

    def _orders(self, r: Reading, stores: tuple[Place, ...], mine: bool, per_store: bool, listing: bool,
                amount: bool, age: int, span: Span | None) -> OrderQuestion | None:
        changed = r.take(_ADDRESS_CHANGED) is not None
        words: StateWords | None = None
        for candidate in _STATES:
            if r.take(candidate.pattern):
                words = candidate
                break
        channel = next(((c, label) for pattern, c, label in _CHANNELS if r.take(pattern)), None)
        customer = r.customers[0].entry if r.customers else None
        asked = (words or changed or channel or customer or amount or per_store or r.has(_ORDER)
                 or (span is not None and (stores or mine)))
        if not asked:
            return None
        time_field = "created"
        if words is not None:
            time_field = words.time_field
            if words.states == NOT_SHIPPED and span is not None and span.kind == "today":
                span = None  # "今天还有几单没发": what is still waiting now, whenever it came in
        if age and span is None:
            time_field = "updated"
        return OrderQuestion(
            listing=listing, stores=stores, mine=mine, per_store=per_store and not stores,
            states=words.states if words else (), state_label=words.label if words else "",
            channel=channel[0] if channel else "", channel_label=channel[1] if channel else "",
            customer=customer.key if customer else "", customer_label=customer.name if customer else "",
            span=span, time_field=time_field, address_changed=changed, amount=amount,  # type: ignore[arg-type]
            older_than_minutes=age,
        )

    def _store_only(self, r: Reading, place: Place) -> Clarify:
        name = place.label
        choices = (Choice(f"{name}今天的订单", f"{name}今天几单"), Choice(f"{name}未发货", f"{name}还有几单没发"),
                   Choice(f"{name}的异常", f"{name}有几条异常"))
        return Clarify(choice_prompt("您是想看：", choices), choices)


def _strip_patterns(text: str) -> str:
    """The text without the words of a question, so they are never taken for a misspelt name."""
    for pattern in (_MINE, _PER_STORE, _LIST, _AMOUNT, _HEALTH, _AFTERSALE, _APPROVED, _REJECTED, _PENDING, _STOCK,
                    _INCIDENT, _ADDRESS_CHANGED, _AGE, *(s.pattern for s in _STATES), *(p for p, _ in _SPANS),
                    *(p for p, _, _ in _CHANNELS), _ORDER):
        text = pattern.sub(" ", text)
    return text
