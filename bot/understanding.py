"""Plain questions into typed ones (domain/questions.py): rules and the data's own names, no model, no service.

The sentence is normalised (full-width to ASCII, lower case, Chinese numerals before a unit to digits with
cn2an), the names the data knows are found in it (bot/lexicon.py), then order numbers, times, states,
channels and the words that say what is asked (their patterns: bot/question_words.py). What is left is cut
into words (jieba) and each is tried fuzzily against the store, staff and part names; a near tie becomes a
question back with the choices.
Anything that is not recognised as a question gives None, and the edge answers as it always has.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from bot import question_words as vocab
from bot.lexicon import Entry, Found, Lexicon
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
        tokenizer = vocab.prepare()
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
        norm = vocab.normalise(text)
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
        for m in vocab.REF.finditer(r.masked):
            token = m.group(1)
            if sum(ch.isdigit() for ch in token) < 2 or len(token) < 5:
                continue
            if vocab.AFTERSALE_NO.fullmatch(token):
                return AftersaleStatus(token.upper())
            return WhereIsOrder(token.upper())
        return None

    def _fuzzy(self, r: Reading) -> None:
        """Words left over that may be a misspelt store, person or part."""
        rest = vocab.FILLER.sub(" ", vocab.strip_patterns(r.masked))
        words: list[str] = []
        for run in rest.split():
            words += vocab.segment(run) if not run.isascii() else [run]
        tokenizer = vocab.prepare()
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
        mine = r.take(vocab.MINE) is not None
        per_store = r.take(vocab.PER_STORE) is not None
        listing = r.take(vocab.LIST) is not None
        amount = r.take(vocab.AMOUNT) is not None
        age = self._age(r)
        span = self._span(r)
        if vocab.HEALTH.search(r.text) and not (r.skus or r.parts or r.has(vocab.AFTERSALE)
                                                or r.has(vocab.STOCK) or r.has(vocab.INCIDENT) or r.has(vocab.ORDER)
                                                or stores):
            return HealthQuestion()
        if r.has(vocab.AFTERSALE) or (r.staff and (r.has(vocab.APPROVED) or r.has(vocab.REJECTED))):
            return self._aftersale(r, span, listing, amount)
        if r.skus or r.parts:
            return self._stock(r, stores, mine)
        if r.has(vocab.STOCK) and not r.has(vocab.ORDER) and not r.has(vocab.INCIDENT):
            return Clarify("您要查哪个配件的库存？请发送：库存 <SKU或名称> [门店]，如：库存 BP-001")
        if r.has(vocab.INCIDENT) and not r.has(re.compile("签收异常")):
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
        m = r.take(vocab.AGE)
        if m is None:
            return 0
        n, unit = (m[1], m[2]) if m[1] else (m[3], m[4])
        minutes = {"小时": 60, "钟头": 60, "h": 60, "hour": 60, "hours": 60, "天": 1440, "day": 1440,
                   "days": 1440}.get(unit, 1)
        return int(n) * minutes

    def _span(self, r: Reading) -> Span | None:
        for pattern, make in vocab.SPANS:
            m = r.take(pattern)
            if m:
                return make(m)
        return None

    def _aftersale(self, r: Reading, span: Span | None, listing: bool, amount: bool) -> AftersaleQuestion:
        kinds: tuple[str, ...] = ()
        kind_label = "售后"
        for pattern, kind, label in vocab.KINDS:
            if r.has(pattern):
                kinds, kind_label = (kind,), label
                break
        if not kinds and r.has(re.compile(r"退款|refund")):
            kind_label = "退款"
        approver = r.staff[0].entry if r.staff else None
        decision = ""
        states: tuple[str, ...] = ()
        state_label = ""
        if r.has(vocab.PENDING):
            states, state_label = ("pending_approval",), "待审批"
        elif r.has(vocab.REJECTED):
            decision = "rejected"
        elif r.has(vocab.APPROVED) or approver is not None:
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
        for pattern, kind, kind_label in vocab.INCIDENT_KINDS:
            if r.has(pattern):
                kinds, label = (*kinds, kind), kind_label if not label else f"{label}、{kind_label}"
        return IncidentQuestion(listing=listing, kinds=kinds, kind_label=label, older_than_minutes=age, span=span,
                                stores=stores, mine=mine)

    def _orders(self, r: Reading, stores: tuple[Place, ...], mine: bool, per_store: bool, listing: bool,
                amount: bool, age: int, span: Span | None) -> OrderQuestion | None:
        changed = r.take(vocab.ADDRESS_CHANGED) is not None
        words: vocab.StateWords | None = None
        for candidate in vocab.STATES:
            if r.take(candidate.pattern):
                words = candidate
                break
        channel = next(((c, label) for pattern, c, label in vocab.CHANNELS if r.take(pattern)), None)
        customer = r.customers[0].entry if r.customers else None
        asked = (words or changed or channel or customer or amount or per_store or r.has(vocab.ORDER)
                 or (span is not None and (stores or mine)))
        if not asked:
            return None
        time_field = "created"
        if words is not None:
            time_field = words.time_field
            if words.states == vocab.NOT_SHIPPED and span is not None and span.kind == "today":
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


