"""The understander on its own: text to typed question, against a lexicon built in the test; pure and fast."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.lexicon import Lexicon
from bot.parser import command_for
from bot.question_words import normalise
from bot.understanding import Understander
from domain.chat import InboundMessage
from domain.chat_commands import Answer, AskQuestion, StockLookup
from domain.questions import (
    AftersaleQuestion,
    Clarify,
    OrderQuestion,
    Span,
    StockQuestion,
    WhereIsOrder,
    window,
)
from tests.integration.questions_seed import NOW, SKUS, STORE_NAMES, cst

LEXICON = Lexicon.build(stores=STORE_NAMES, skus=SKUS, staff={"sup1": "李敏", "wh1": "王强", "mgr1": "赵刚"},
                        customers={"C-MP-03": "李女士"})
UNDERSTAND = Understander(LEXICON)


def test_the_five_questions_of_the_issue() -> None:
    q = UNDERSTAND("浦东店今天还有几单没发？")
    assert isinstance(q, OrderQuestion) and [p.code for p in q.stores] == ["SH01"] and q.state_label == "未发货"
    q = UNDERSTAND("昨天有几单改了地址？")
    assert isinstance(q, OrderQuestion) and q.address_changed and q.span == Span("yesterday")
    q = UNDERSTAND("刹车片 BP-001 各店还剩多少？")
    assert isinstance(q, StockQuestion) and q.skus == ("BP-001",)
    assert UNDERSTAND("OB00000012 到哪了") == WhereIsOrder("OB00000012")
    q = UNDERSTAND("李敏这周批了几笔退款？")
    assert isinstance(q, AftersaleQuestion) and (q.approver, q.decision, q.span) == ("sup1", "approved",
                                                                                     Span("this_week"))


def test_typos_pinyin_and_full_width_find_the_same_store() -> None:
    for text in ("蒲东店还有几单没发", "浦东点还有几单没发", "pudong还有几单没发", "ＳＨ０１还有几单没发"):
        q = UNDERSTAND(text)
        assert isinstance(q, OrderQuestion) and [p.code for p in q.stores] == ["SH01"], text


def test_a_near_tie_asks_back_with_at_most_three_choices() -> None:
    q = UNDERSTAND("浦店今天几单")
    assert isinstance(q, Clarify) and q.prompt.startswith("您是说：① ")
    assert {c.label for c in q.choices} == {"浦东店", "浦西店"} and len(q.choices) <= 3


def test_a_choice_button_comes_back_as_the_question_it_names() -> None:
    q = UNDERSTAND("浦店今天几单")
    assert isinstance(q, Clarify)
    key = f"ask {q.choices[0].text}"
    cmd = command_for(InboundMessage("wecom", "mgr1", "card_click", text=key, message_id="c1",
                                     card_response_code="rc"), UNDERSTAND)
    assert isinstance(cmd, AskQuestion) and isinstance(cmd.question, OrderQuestion) and cmd.question.stores


def test_commands_stay_commands_and_nonsense_stays_not_understood() -> None:
    msg = InboundMessage("wecom", "mgr1", "text", text="库存 刹车片 浦东店", message_id="m1")
    cmd = command_for(msg, UNDERSTAND)
    assert isinstance(cmd, StockLookup) and isinstance(cmd.question, StockQuestion)
    assert cmd.question.stores[0].code == "SH01"
    odd = command_for(InboundMessage("wecom", "mgr1", "text", text="拣获 OB1", message_id="m2"), UNDERSTAND)
    assert isinstance(odd, Answer) and "您是不是要：拣货 <单号>？" in odd.text
    assert UNDERSTAND("你好") is None and UNDERSTAND("天气怎么样啊") is None


def test_numerals_and_windows() -> None:
    assert normalise("最近两小时") == "最近2小时" and normalise("三月五号") == "3月5号"
    assert window(Span("today"), NOW) == (cst(3, 11, 0), cst(3, 12, 0))
    assert window(Span("this_week"), NOW) == (cst(3, 9, 0), cst(3, 16, 0))
    assert window(Span("last_week"), NOW) == (cst(3, 2, 0), cst(3, 9, 0))
    assert window(Span("date", month=12, day=31), NOW)[0] == cst(12, 31, 0).replace(year=2025)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60), st.text(alphabet="浦东店今天几单没发刹车片BP-001李敏退款异常一二两三月日号小时", max_size=30)))
def test_any_text_is_a_question_or_none_and_quick(text: str) -> None:
    started = time.perf_counter()
    UNDERSTAND(text)  # never raises
    assert time.perf_counter() - started < 0.05
