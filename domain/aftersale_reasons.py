"""Sort a customer's stated after-sale reason into one category, offline, by a weighted keyword table.

Categories (the ids are what is stored in `aftersales.category` and shown to people):

| category | means | typical phrasing |
|---|---|---|
| 型号不符 | the part does not fit the car: wrong model, size, interface (often the buyer's own pick) | 装不上、尺寸不对、买错了型号、跟我的车不匹配、孔位对不上 |
| 质量问题 | the part is faulty or wears out early | 用了两天就异响、漏油、不亮了、生锈、开裂、假货 |
| 发错货 | we sent something other than what was ordered, or too few | 收到的跟下单的不一样、发错了、少发一个、货不对板 |
| 物流损坏 | damaged or lost in transit | 包装压坏了、快递盒子破了零件变形、摔碎了、丢件 |
| 不想要了 | the buyer changed their mind | 不需要了、七天无理由、拍多了、车卖了用不上 |
| 其他 | nothing above matched | |

How it decides: the text is NFKC-folded (full-width to ASCII) and lower-cased; every rule whose pattern
occurs adds its weight to its category (once per rule). A match right after a negator (没有、不是、并非、
没、非) does not count, so "不是质量问题" is not evidence of a quality problem. Phrases that clear a
category ("质量没问题", "包装完好") carry negative weights. The category with the highest score wins; a
tie goes to the earlier category in `PRIORITY` (physical evidence before a change of mind). A best score
below `MIN_SCORE` gives 其他: a context word alone ("快递太慢了") is not a reason.

Weights: 3 = the phrase names the category by itself (压坏、异响、发错、装不上); 2 = strong but shared
(漏、变形、买错); 1 = context that tips a close call (快递、包装、用了几天). Add a rule here, and a real
sentence to tests/unit/test_aftersale_reasons.py, whenever a reason lands in the wrong place.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

WRONG_MODEL = "型号不符"
QUALITY = "质量问题"
WRONG_ITEM = "发错货"
TRANSIT_DAMAGE = "物流损坏"
CHANGED_MIND = "不想要了"
OTHER = "其他"

CATEGORIES = (WRONG_MODEL, QUALITY, WRONG_ITEM, TRANSIT_DAMAGE, CHANGED_MIND, OTHER)
PRIORITY = (TRANSIT_DAMAGE, WRONG_ITEM, QUALITY, WRONG_MODEL, CHANGED_MIND)

_NEGATORS = ("没有", "不是", "并非", "没", "非")
MIN_SCORE = 2  # context words alone ("快递太慢了") do not make a category


@dataclass(frozen=True)
class Rule:
    category: str
    pattern: re.Pattern[str]
    weight: int


def _rules(category: str, *entries: tuple[str, int]) -> list[Rule]:
    return [Rule(category, re.compile(pattern), weight) for pattern, weight in entries]


RULES: tuple[Rule, ...] = tuple(
    _rules(
        WRONG_MODEL,
        (r"型号(不对|不符|错|不一样|不匹配|对不上)", 3),
        (r"(买|拍|选|下单)错(了)?(型号|规格|尺寸|车型|件)?", 2),
        (r"装不(上|进|了|进去)|安装不(上|了)|无法安装|没法(装|安装)|装不到", 3),
        (r"(尺寸|尺码)(不对|不符|偏大|偏小|太大|太小|不合)|大小不(对|合适)|太(大|小)了", 3),
        (r"(拧|插|卡|扣|套)不(上|进)", 3),
        (r"(跟|和|与)(原车|原厂|旧件|旧的|原来的|我的车)[^，,。]{0,4}(不一样|不符|不同|对不上)", 3),
        (r"(不匹配|不适配|不适用|不通用|不兼容|匹配不上|适配不了|对不上)", 3),
        (r"(孔位|孔距|接口|卡扣|螺丝孔|插头|规格)(不对|不符|对不上|不一样|不匹配)", 3),
        (r"(车型|年款|排量)(不对|不符|不一样)|不是我(的)?车(型)?(用)?的", 3),
        (r"(我的|我家)?车(上)?用不了", 2),
    )
    + _rules(
        QUALITY,
        (r"异响|噪音|吱吱|咯吱|响声|嗡嗡", 3),
        (r"质量(问题|差|不好|太差|不行|有问题)|劣质|做工(差|粗糙)", 3),
        (r"(坏了|坏掉|损坏了|故障|失灵|不工作|不转|不亮|不制冷|不出水|打不着|没反应)", 3),
        (r"(漏油|渗油|漏水|漏液|漏气)", 2),
        (r"(生锈|锈迹|开裂|裂了|裂纹|起皮|掉漆|脱胶|磨损|抖动|发抖|异味)", 3),
        (r"(假货|不是正品|不是原厂|副厂|翻新|二手|旧货|是旧的|用过的|使用痕迹)", 3),
        (r"(没电|充不进电|不充电|刮不干净|不回位|不灵敏)", 3),
        (r"用了(不到)?[\d一二两三四五六七八九十几半]+(天|周|个月|次|公里)", 1),
        (r"(装上|装好|安装后|用了|开了)[^，,。]{0,6}(就|又|还)", 1),
        (r"(报故障灯|故障灯|亮灯)", 2),
        (r"质量(没|没有)(问题|毛病)|东西(没|没有)(问题|毛病)", -4),
    )
    + _rules(
        WRONG_ITEM,
        (r"发错|错发|发成了|寄错|给错", 3),
        (r"(收到|寄来|发来|到手)的?[^，,。]{0,6}(跟|和|与)[^，,。]{0,8}(不一样|不符|不同|不一致)", 3),
        (r"(跟|和|与)(图片|页面|描述|详情|订单|下单)[^，,。]{0,4}(不一样|不符|不同|不一致)", 3),
        (r"货不对板|不是我(买|要|订|下单|拍)的", 3),
        (r"(发来|寄来|收到|到手)的(是|却是).{0,12}我(要|买|订|下单|拍)的是", 3),
        (r"我(要|买|订|下单|拍)的是.{0,12}(发来|寄来|收到|到手|给我发)的(是|却是)", 3),
        (r"(少发|漏发|少了一|少一个|少一件|少一只|缺件|缺了一|数量不对|少寄)", 3),
        (r"(颜色|品牌)(不对|不符|错了)", 2),
    )
    + _rules(
        TRANSIT_DAMAGE,
        (r"(压坏|压扁|压碎|压变形|摔坏|摔碎|摔裂|磕坏|磕碰|碰坏|砸坏)", 3),
        (r"(快递|物流|运输|路上|配送)[^，,。]{0,6}(坏|破|损|变形|碎|丢|漏)", 3),
        (r"(包装|盒子|箱子|外箱|纸箱|快递盒|外包装)[^，,。]{0,4}(破|烂|坏|损|压|湿|变形|漏)", 3),
        (r"(丢件|丢了|没收到|未收到|一直没到|显示签收)", 3),
        (r"(到货|到手|收到|拆开)[^，,。]{0,4}(就|已经|时)?[^，,。]{0,3}(碎|裂|变形|破|坏)", 2),
        (r"(漏了|洒了|流出来)", 2),
        (r"变形", 2),
        (r"快递|物流|包装|运输", 1),
        (r"(包装|外包装|盒子|快递)(完好|没问题|没有问题|没坏|好好的)", -4),
    )
    + _rules(
        CHANGED_MIND,
        (r"不(需要|想要|要)了|用不(上|着)了?|不需要", 3),
        (r"[7七]天无理由|无理由", 3),
        (r"(拍|买|下单|订)(多|重)了|(拍|买|下单|订)重复|重复(下单|购买|拍)|多拍|多买", 3),
        (r"(改变主意|不想买了|不打算|后悔|暂时不用|先不用|车(已经)?卖了|找到更便宜|别家更便宜|买贵了|价格贵)", 3),
        (r"(退了吧|想退|不合心意|不喜欢)", 1),
    )
)


def normalise(reason: str) -> str:
    folded = unicodedata.normalize("NFKC", reason).lower()
    return re.sub(r"\s+", "", folded)


def _negated(text: str, start: int) -> bool:
    before = text[max(0, start - 2) : start]
    return any(before.endswith(word) for word in _NEGATORS)


def scores(reason: str) -> dict[str, int]:
    """Each category's score for `reason` (categories with no matching rule are left out)."""
    text = normalise(reason)
    out: dict[str, int] = {}
    for rule in RULES:
        match = next((m for m in rule.pattern.finditer(text) if rule.weight < 0 or not _negated(text, m.start())),
                     None)
        if match is not None:
            out[rule.category] = out.get(rule.category, 0) + rule.weight
    return out


def classify(reason: str) -> str:
    """The category of a customer's stated reason: one of CATEGORIES."""
    found = scores(reason)
    best = max((found.get(cat, 0) for cat in PRIORITY), default=0)
    if best < MIN_SCORE:
        return OTHER
    return next(cat for cat in PRIORITY if found.get(cat, 0) == best)
