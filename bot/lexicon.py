"""The names the understander knows, built from the data: stores, SKU codes and part names, staff, customers.

Names are found in a sentence exactly (one regular expression over every alias, longest first) or fuzzily:
by characters and by pinyin (rapidfuzz over pypinyin spellings), so "蒲东店", "浦东点" and "pudong" all find
浦东店, and "刹车皮" finds 刹车片. A near tie between different names is not guessed: the caller asks back.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz import fuzz, process

# Names are spelled a character at a time, which needs only pypinyin's single-character table: its phrase table
# and the segmenter built from it held ~45 MiB for nothing (every character spells the same without them).
# pypinyin reads both variables when first imported; one already set by the operator is kept.
os.environ.setdefault("PYPINYIN_NO_PHRASES", "1")
os.environ.setdefault("PYPINYIN_NO_DICT_COPY", "1")  # no copy of the character table: no custom dictionary is loaded
from pypinyin import lazy_pinyin  # noqa: E402

Kind = Literal["store", "sku", "part", "staff", "customer"]
FUZZY_KINDS: tuple[Kind, ...] = ("store", "staff", "part")
CUTOFF = 75.0  # below this a name is not considered at all
TIE = 10.0  # candidates this close to the best are all offered
_CITY = re.compile(r"^(?:上海|杭州|北京|南京|苏州|宁波|无锡|广州|深圳|成都|武汉|天津|重庆|西安|合肥|嘉兴|绍兴)(?:市)?")
_BRACKETS = re.compile(r"[（(【\[].*$")
_ASCII = re.compile(r"[a-z0-9]")


@dataclass(frozen=True)
class Entry:
    kind: Kind
    key: str  # store code, SKU, userid, customer id; a part's name for "part"
    name: str  # what answers call it
    alias: str  # the form found in text, lower-case


@dataclass(frozen=True)
class Found:
    entry: Entry
    start: int
    end: int
    score: float = 100.0


@dataclass
class Lexicon:
    stores: dict[str, str] = field(default_factory=dict)  # code -> name
    skus: dict[str, str] = field(default_factory=dict)  # sku -> part name ("" when unnamed)
    staff: dict[str, str] = field(default_factory=dict)  # userid -> name
    customers: dict[str, str] = field(default_factory=dict)  # customer id -> name

    def __post_init__(self) -> None:
        self.part_skus: dict[str, tuple[str, ...]] = {}
        for sku, name in sorted(self.skus.items()):
            if name:
                self.part_skus[name] = (*self.part_skus.get(name, ()), sku)
        entries = [*self._store_entries(), *self._sku_entries(), *self._staff_entries(), *self._customer_entries()]
        self.by_alias: dict[str, list[Entry]] = {}
        for e in entries:
            same = self.by_alias.setdefault(e.alias, [])
            if not any(x.kind == e.kind and x.key == e.key for x in same):
                same.append(e)
        aliases = sorted(self.by_alias, key=len, reverse=True)
        self._pattern = re.compile("|".join(_bounded(a) for a in aliases)) if aliases else None
        self._fuzzy: dict[Kind, tuple[list[Entry], list[str], list[str]]] = {}
        for kind in FUZZY_KINDS:
            chosen = [e for e in entries if e.kind == kind and not _ASCII.fullmatch(e.alias[:1] or "x")]
            self._fuzzy[kind] = (chosen, [e.alias for e in chosen], [spell(e.alias) for e in chosen])

    @classmethod
    def build(cls, *, stores: Mapping[str, str], skus: Mapping[str, str], staff: Mapping[str, str],
              customers: Mapping[str, str] | None = None) -> Lexicon:
        return cls(dict(stores), dict(skus), dict(staff), dict(customers or {}))

    @property
    def words(self) -> Iterable[str]:
        """Every alias, for the segmenter's dictionary."""
        return self.by_alias.keys()

    def find_exact(self, text: str) -> list[Found]:
        """Every alias in `text` (lower-case), longest first, without overlaps."""
        if self._pattern is None:
            return []
        return [Found(e, m.start(), m.end()) for m in self._pattern.finditer(text)
                for e in self.by_alias[m.group(0)]]

    def find_fuzzy(self, token: str) -> list[tuple[Entry, float]]:
        """Names `token` may be a typo or a pinyin spelling of: the best per name, best first, close ones only."""
        ascii_only = token.isascii()
        spelled = token if ascii_only else spell(token)
        best: dict[tuple[Kind, str], tuple[Entry, float]] = {}
        for kind in FUZZY_KINDS:
            chosen, aliases, spellings = self._fuzzy[kind]
            if not chosen:
                continue
            by_sound = process.extract(spelled, spellings, scorer=fuzz.ratio, score_cutoff=CUTOFF, limit=5)
            by_char = [] if ascii_only else process.extract(token, aliases, scorer=fuzz.ratio, score_cutoff=CUTOFF,
                                                           limit=5)
            for _, score, i in [*by_sound, *by_char]:
                entry = chosen[i]
                if not ascii_only and not (set(token) & set(entry.alias)) and spelled != spellings[i]:
                    continue  # sounds a bit alike but shares no character: 退款 is not 涂宽
                if ascii_only and score < 90:
                    continue  # pinyin typed in Latin letters must be close
                key = (entry.kind, entry.key)
                if key not in best or best[key][1] < score:
                    best[key] = (entry, float(score))
        ranked = sorted(best.values(), key=lambda pair: -pair[1])
        if not ranked:
            return []
        return [pair for pair in ranked if pair[1] >= ranked[0][1] - TIE]

    def short_store(self, code: str) -> str:
        name = self.stores.get(code, "")
        return _CITY.sub("", name) if len(name) >= 4 else name or code

    def _store_entries(self) -> Iterable[Entry]:
        for code, name in self.stores.items():
            yield Entry("store", code, name or code, code.lower())
            if not name:
                continue
            forms = {name, _CITY.sub("", name)}
            forms |= {f.removesuffix("店") for f in forms if f.endswith("店") and len(f) >= 3}
            forms |= {f.removesuffix("门") for f in forms if f.endswith("门") and len(f) >= 3}
            for form in forms:
                if len(form) >= 2:
                    yield Entry("store", code, name, form.lower())

    def _sku_entries(self) -> Iterable[Entry]:
        for sku, name in self.skus.items():
            yield Entry("sku", sku, name or sku, sku.lower())
            plain = sku.lower().replace("-", "").replace("_", "")
            if plain != sku.lower() and len(plain) >= 4:
                yield Entry("sku", sku, name or sku, plain)
        for name in self.part_skus:
            for form in {name, _BRACKETS.sub("", name).strip()}:
                if len(form) >= 2:
                    yield Entry("part", name, name, form.lower())

    def _staff_entries(self) -> Iterable[Entry]:
        for userid, name in self.staff.items():
            if len(name) >= 2:
                yield Entry("staff", userid, name, name.lower())

    def _customer_entries(self) -> Iterable[Entry]:
        for customer_id, name in self.customers.items():
            for form in {name, _CITY.sub("", name)}:
                if len(form) >= 3:
                    yield Entry("customer", customer_id, name, form.lower())


def _bounded(alias: str) -> str:
    """An alias as a pattern; one that starts or ends with a letter or digit does not match inside a longer code."""
    head = r"(?<![a-z0-9_-])" if _ASCII.match(alias[0]) else ""
    tail = r"(?![a-z0-9_])" if _ASCII.match(alias[-1]) else ""
    return head + re.escape(alias) + tail


@functools.lru_cache(maxsize=8192)
def _char_sound(ch: str) -> str:
    if ch.isascii():
        return ch
    sounds = lazy_pinyin(ch)
    return sounds[0] if sounds else ch


def spell(text: str) -> str:
    """Pinyin without tones or spaces, a character at a time (cached): 浦东店 -> pudongdian."""
    return "".join(_char_sound(ch) for ch in text)
