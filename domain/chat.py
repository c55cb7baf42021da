"""Platform-neutral chat values: what the edges hand to handlers and what handlers hand back."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InboundMessage:
    platform: str  # "wecom" | "dingtalk" | "console"
    sender: str  # the platform's user id (WeCom userid, DingTalk staffId)
    kind: str  # "text" | "card_click" | "scan" | "menu" | "enter"
    text: str = ""
    message_id: str = ""
    conversation: str = ""  # where to answer (a chat id, or the sender for a direct chat)
    card_task_id: str = ""
    card_response_code: str = ""
    event_key: str = ""
    scan_result: str = ""
    reply_hint: str = ""  # platform detail the adapter needs to answer (e.g. a DingTalk sessionWebhook)


@dataclass(frozen=True)
class Button:
    key: str  # the command it runs, e.g. "approve AS000012"
    text: str
    style: int = 1  # 1 = primary, 2 = secondary (WeCom button styles)


@dataclass(frozen=True)
class Reply:
    text: str
    markdown: bool = False


@dataclass(frozen=True)
class Card:
    title: str
    description: str
    task_id: str
    buttons: tuple[Button, ...] = ()
    fields: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    highlight: bool = False


def to_payload(item: Reply | Card) -> dict[str, object]:
    """Outbox rows carry platform-neutral messages; each adapter renders them for its platform."""
    if isinstance(item, Reply):
        return {"type": "markdown" if item.markdown else "text", "text": item.text}
    return {
        "type": "card",
        "title": item.title,
        "description": item.description,
        "task_id": item.task_id,
        "highlight": item.highlight,
        "fields": [list(f) for f in item.fields],
        "buttons": [{"key": b.key, "text": b.text, "style": b.style} for b in item.buttons],
    }


def from_payload(payload: dict[str, object]) -> Reply | Card:
    if payload["type"] in ("text", "markdown"):
        return Reply(str(payload["text"]), markdown=payload["type"] == "markdown")
    fields = payload.get("fields") or []
    buttons = payload.get("buttons") or []
    return Card(
        title=str(payload["title"]),
        description=str(payload["description"]),
        task_id=str(payload["task_id"]),
        highlight=bool(payload.get("highlight")),
        fields=tuple((str(k), str(v)) for k, v in fields),  # type: ignore[attr-defined]
        buttons=tuple(Button(b["key"], b["text"], int(b.get("style", 1))) for b in buttons),  # type: ignore[attr-defined]
    )
