"""A person's messages are handed out one after the other, in the order they came; other people's are not held."""

from __future__ import annotations

from bot.sender_turns import SenderTurns

WH1, WH2 = ("wecom", "wh1"), ("wecom", "wh2")


def test_a_second_message_waits_behind_the_first_and_comes_next_in_order() -> None:
    turns: SenderTurns[str] = SenderTurns()

    assert turns.take(WH1, "拣货") is True
    assert turns.take(WH1, "质检") is False  # another worker must not start it
    assert turns.take(WH1, "打包") is False
    assert turns.take(WH2, "拣货") is True  # someone else is not held up

    assert [turns.after(WH1), turns.after(WH1), turns.after(WH1)] == ["质检", "打包", None]
    assert turns.after(WH2) is None
    assert len(turns) == 0  # idle senders leave nothing behind
    assert turns.take(WH1, "发货") is True
