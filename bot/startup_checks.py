"""What `orderbot check` and `serve` verify before the service faces anyone: one line per problem, saying what to do.

Fatal problems stop `serve`; the others are printed (and logged) and the service starts anyway — a WeCom that
cannot be reached now is retried by the outbox, so it does not keep the service down.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from config.settings import DEFAULT_API_TOKEN, Settings, is_loopback
from integrations.db import migrate
from integrations.dingtalk.client import DingTalkClient, DingTalkError, DingTalkRejected
from integrations.tokens import MemoryTokenCache
from integrations.wecom.client import WeComClient, WeComError, WeComRejected

MIN_API_TOKEN_CHARS = 16  # off loopback; `python -c 'import secrets; print(secrets.token_urlsafe(32))'` gives 43
PLACEHOLDER_TOKENS = frozenset({DEFAULT_API_TOKEN, "a-long-random-token"})  # known to everyone who read the docs
AES_KEY_CHARS = 43
DB_TIMEOUT_S = 10.0
PLATFORM_TIMEOUT_S = 10.0
_FROM_IP = re.compile(r"from ip:\s*([0-9a-fA-F.:]+)")


@dataclass(frozen=True)
class Problem:
    text: str  # one line: what is wrong and what to do
    fatal: bool = True


def settings_problems(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Problem]:
    """Checks that need nothing but the settings."""
    problems = _api_token(settings) + _wecom(settings) + _dingtalk(settings) + _sms(settings) + _k3_books(settings)
    return problems + _unknown_environment(settings, os.environ if environ is None else environ)


def _api_token(settings: Settings) -> list[Problem]:
    token, host = settings.api.token.get_secret_value(), settings.http.host
    if not token.strip():
        return [Problem("ORDERBOT_API__TOKEN 为空：请设置一个足够长的随机令牌（secrets.token_urlsafe(32)）。")]
    if is_loopback(host):
        if token in PLACEHOLDER_TOKENS:
            return [Problem(f"ORDERBOT_API__TOKEN 仍是示例值 {token}：只在本机 {host} 上可用；对外服务前请换成随机令牌。",
                            fatal=False)]
        return []
    if token in PLACEHOLDER_TOKENS:
        return [Problem(f"ORDERBOT_API__TOKEN 仍是示例值 {token}，不能在 {host} 上对外服务：请设置一个足够长的随机令牌"
                        "（secrets.token_urlsafe(32)），或把 ORDERBOT_HTTP__HOST 设为 127.0.0.1。")]
    if len(token) < MIN_API_TOKEN_CHARS:
        return [Problem(f"ORDERBOT_API__TOKEN 只有 {len(token)} 个字符，在 {host} 上对外服务至少要 {MIN_API_TOKEN_CHARS} 个："
                        "请换一个更长的随机令牌。")]
    return []


def _wecom(settings: Settings) -> list[Problem]:
    w = settings.wecom
    problems: list[Problem] = []
    aes_key, token = w.aes_key.get_secret_value(), w.token.get_secret_value()
    if aes_key and not _aes_key_ok(aes_key):
        problems.append(Problem(
            f"ORDERBOT_WECOM__AES_KEY 须是企业微信“接收消息”页上的 43 位 EncodingAESKey（现为 {len(aes_key)} 位）："
            "请从应用的“设置API接收”页原样复制。"))
    app = {"ORDERBOT_WECOM__CORP_ID": bool(w.corp_id), "ORDERBOT_WECOM__SECRET": bool(w.secret.get_secret_value()),
           "ORDERBOT_WECOM__AGENT_ID": bool(w.agent_id)}
    if any(app.values()) and not all(app.values()):
        missing = "、".join(name for name, present in app.items() if not present)
        problems.append(Problem(f"企业微信应用的设置不全，缺 {missing}：企业ID 在“我的企业→企业信息”，"
                                "AgentId 和 Secret 在“应用管理→自建应用”的应用详情页。"))
    callback = {"ORDERBOT_WECOM__TOKEN": bool(token), "ORDERBOT_WECOM__AES_KEY": bool(aes_key),
                "ORDERBOT_WECOM__CORP_ID": bool(w.corp_id)}
    if (token or aes_key) and not all(callback.values()):
        missing = "、".join(name for name, present in callback.items() if not present)
        problems.append(Problem(f"企业微信回调的设置不全，缺 {missing}：Token 和 EncodingAESKey 在应用的"
                                "“接收消息→设置API接收”页；缺了它们 URL 验证和每条消息都会被拒绝（403）。"))
    elif w.corp_id and not (token or aes_key):
        problems.append(Problem("ORDERBOT_WECOM__TOKEN 和 ORDERBOT_WECOM__AES_KEY 未设置：企业微信发来的消息和扫码都会被拒绝"
                                "（403）；在应用的“接收消息→设置API接收”页生成并填入。", fatal=False))
    return problems


def _aes_key_ok(aes_key: str) -> bool:
    if len(aes_key) != AES_KEY_CHARS:
        return False
    try:
        return len(base64.b64decode(aes_key + "=", validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _dingtalk(settings: Settings) -> list[Problem]:
    d = settings.dingtalk
    problems: list[Problem] = []
    if bool(d.app_key) != bool(d.app_secret.get_secret_value()):
        missing = "ORDERBOT_DINGTALK__APP_SECRET" if d.app_key else "ORDERBOT_DINGTALK__APP_KEY"
        problems.append(Problem(f"钉钉应用的设置不全，缺 {missing}：在钉钉开发者后台应用的“凭证与基础信息”页复制 "
                                "Client ID（AppKey）和 Client Secret（AppSecret）。"))
    card = {"ORDERBOT_DINGTALK__CARD_TEMPLATE_ID": bool(d.card_template_id),
            "ORDERBOT_DINGTALK__CARD_CALLBACK_ROUTE_KEY": bool(d.card_callback_route_key),
            "ORDERBOT_DINGTALK__CARD_CALLBACK_SECRET": bool(d.card_callback_secret.get_secret_value())}
    if any(card.values()) and not all(card.values()):
        missing = "、".join(name for name, present in card.items() if not present)
        problems.append(Problem(f"钉钉互动卡片的设置不全，缺 {missing}：卡片将以普通 actionCard 发出，按钮点击不回到 orderbot。",
                                fatal=False))
    return problems


def _sms(settings: Settings) -> list[Problem]:
    """Not fatal: without SMS the texts are kept as unconfigured (counted on /metrics) and sent once configured."""
    m = settings.sms
    given = {"ORDERBOT_SMS__ACCESS_KEY_ID": bool(m.access_key_id),
             "ORDERBOT_SMS__ACCESS_KEY_SECRET": bool(m.access_key_secret.get_secret_value()),
             "ORDERBOT_SMS__SIGN_NAME": bool(m.sign_name)}
    if any(given.values()) and not all(given.values()):
        missing = "、".join(name for name, present in given.items() if not present)
        return [Problem(f"阿里云短信的设置不全，缺 {missing}：客户短信暂不发送，记为 unconfigured（见 /metrics）。", fatal=False)]
    templates = {"ORDERBOT_SMS__SHIPPED_TEMPLATE": m.shipped_template,
                 "ORDERBOT_SMS__ADDRESS_CHANGED_TEMPLATE": m.address_changed_template,
                 "ORDERBOT_SMS__REFUND_TEMPLATE": m.refund_template}
    if m.configured and not all(templates.values()):
        missing = "、".join(name for name, code in templates.items() if not code)
        return [Problem(f"阿里云短信缺模板编号 {missing}：这类短信暂不发送，记为 unconfigured。", fatal=False)]
    return []


def _k3_books(settings: Settings) -> list[Problem]:
    """Not fatal: without book settings receivables are kept as unconfigured (counted on /metrics), booked later."""
    k = settings.k3
    if not k.configured or k.books_configured:
        return []
    missing = "、".join(name for name, given in (("ORDERBOT_K3__ORG_NUMBER", bool(k.org_number)),
                                                 ("ORDERBOT_K3__APP_SECRET", bool(k.app_secret.get_secret_value())))
                       if not given)
    return [Problem(f"金蝶 K3 记账缺 {missing}：应收单暂不记入 K3，记为 unconfigured（见 /metrics）。", fatal=False)]


def _unknown_environment(settings: Settings, environ: Mapping[str, str]) -> list[Problem]:
    """ORDERBOT_ variables no setting reads (a typo such as ORDERBOT_WECOM__SECERT is otherwise silently ignored)."""
    known, open_ended = _env_names(type(settings))
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("ORDERBOT_") or upper == "ORDERBOT_CONFIG" or upper.startswith("ORDERBOT_TEST"):
            continue
        if upper in known or any(upper.startswith(k + "__") for k in open_ended):
            continue
        near = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.8)
        hint = f"，是不是 {near[0]}？" if near else ""
        problems.append(Problem(f"环境变量 {name} 不对应任何设置，已被忽略{hint}", fatal=False))
    return problems


def _env_names(model: type, prefix: str = "ORDERBOT_") -> tuple[set[str], set[str]]:
    """Every variable name a setting reads, and the names of dict settings (any __KEY may follow those)."""
    from pydantic import BaseModel

    names: set[str] = set()
    open_ended: set[str] = set()
    for field, info in model.model_fields.items():  # type: ignore[attr-defined]
        name = prefix + field.upper()
        names.add(name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            inner, inner_open = _env_names(annotation, name + "__")
            names |= inner
            open_ended |= inner_open
        elif not isinstance(annotation, type) or not issubclass(annotation, (str, int, float, bool)):
            open_ended.add(name)  # a dict or list setting
    return names, open_ended


# -- the database --------------------------------------------------------------------------------------------

async def schema_problems(settings: Settings) -> list[Problem]:
    """The schema must be at this code's Alembic head; an unreachable database is one line, not a traceback."""
    url = settings.database_url
    try:
        current = await asyncio.wait_for(migrate.current_revision(url), DB_TIMEOUT_S)
    except Exception as err:  # every driver's own error types: asyncpg, aiosqlite, OSError, timeouts
        return [Problem(database_problem(err, url))]
    head = migrate.head_revision()
    if current is None:
        return [Problem(f"数据库 {safe_url(url)} 还没有建表：请运行 orderbot db upgrade。")]
    if current == head:
        return []
    if current in migrate.known_revisions():
        return [Problem(f"数据库版本 {current} 落后于 {head}：请运行 orderbot db upgrade。")]
    return [Problem(f"数据库版本 {current} 比这个 orderbot 认识的最新版本 {head} 还新：请升级 orderbot。")]


def database_problem(err: BaseException, url: str) -> str:
    """One line for a database error, with what to do."""
    text = " ".join(str(err).split())[:200] or type(err).__name__
    if "no such table" in text or ("does not exist" in text and "relation" in text):
        return f"数据库 {safe_url(url)} 还没有建表：请运行 orderbot db upgrade。"
    if isinstance(err, TimeoutError):
        text = f"{DB_TIMEOUT_S:.0f} 秒内没有连上"
    return (f"无法连接数据库 {safe_url(url)}（{type(err).__name__}: {text}）：请检查 ORDERBOT_DATABASE_URL，"
            "以及数据库是否在运行、能否从本机连到。")


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(ORDERBOT_DATABASE_URL 无法解析)"


# -- the platforms -------------------------------------------------------------------------------------------

async def platform_problems(settings: Settings) -> list[Problem]:
    """One token call to WeCom and to DingTalk where each is configured."""
    problems: list[Problem] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(PLATFORM_TIMEOUT_S)) as http:
        w = settings.wecom
        if w.corp_id and w.secret.get_secret_value():
            wecom = WeComClient(http, api_base=w.api_base, corp_id=w.corp_id, secret=w.secret.get_secret_value(),
                                agent_id=w.agent_id, token_cache=MemoryTokenCache())
            try:
                await wecom.check_credentials()
            except WeComError as err:
                problems.append(_wecom_problem(err, w.api_base))
        d = settings.dingtalk
        if d.app_key and d.app_secret.get_secret_value():
            dingtalk = DingTalkClient(http, api_base=d.api_base, app_key=d.app_key,
                                      app_secret=d.app_secret.get_secret_value(), token_cache=MemoryTokenCache())
            try:
                await dingtalk.check_credentials()
            except DingTalkError as err:
                problems.append(_dingtalk_problem(err, d.api_base))
    return problems


def _wecom_problem(err: WeComError, api_base: str) -> Problem:
    code = err.errcode
    if code == 40013:
        return Problem("ORDERBOT_WECOM__CORP_ID 不对（企业微信 errcode 40013）：从管理后台“我的企业→企业信息”底部复制企业ID。")
    if code in (40001, 42001):
        return Problem(f"ORDERBOT_WECOM__SECRET 不对（企业微信 errcode {code}）：在“应用管理→自建应用”详情页查看 Secret"
                       "（会发到管理员的企业微信里），注意是这个应用的，不是通讯录的。")
    if code == 60020:
        ip = _FROM_IP.search(err.message)
        where = f" {ip.group(1)}" if ip else ""
        return Problem(f"本机出口 IP{where} 不在应用的“企业可信IP”里（企业微信 errcode 60020）：在“应用管理→自建应用→"
                       "企业可信IP”里加上它，否则消息一条也发不出去。")
    if isinstance(err, WeComRejected) and code is not None:
        return Problem(f"企业微信拒绝了 gettoken（errcode {code}: {err.message[:120]}）：见 README 的“排错”表。")
    return Problem(f"连不上企业微信 {api_base}（{err.message[:120]}）：请检查本机能否访问外网或 ORDERBOT_WECOM__API_BASE；"
                   "服务照常启动，消息等连通后再发。", fatal=False)


def _dingtalk_problem(err: DingTalkError, api_base: str) -> Problem:
    if isinstance(err, DingTalkRejected):
        return Problem(f"钉钉拒绝了 accessToken（{err.code}）：ORDERBOT_DINGTALK__APP_KEY / ORDERBOT_DINGTALK__APP_SECRET "
                       "不对，请在钉钉开发者后台应用的“凭证与基础信息”页重新复制。")
    return Problem(f"连不上钉钉 {api_base}（{str(err)[:120]}）：请检查本机能否访问外网或 ORDERBOT_DINGTALK__API_BASE；"
                   "服务照常启动，消息等连通后再发。", fatal=False)


async def all_problems(settings: Settings) -> list[Problem]:
    problems = settings_problems(settings)
    problems += await schema_problems(settings)
    problems += await platform_problems(settings)
    return problems
