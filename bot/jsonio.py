"""JSON in and out of the HTTP edge: Chinese kept readable, errors always {error, message}."""

from __future__ import annotations

import json
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from domain.errors import DomainError
from domain.limits import Limit

STATUS_BY_CODE = {
    "not_found": 404,
    "forbidden": 403,
    "invalid_input": 400,
    "conflict": 409,
    "illegal_transition": 409,
    "guard_refused": 409,
    "out_of_stock": 409,
}


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


M = TypeVar("M", bound=BaseModel)

dumps = partial(json.dumps, ensure_ascii=False, default=_default)


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status, dumps=dumps)


def domain_error(err: DomainError) -> web.Response:
    return error(STATUS_BY_CODE.get(err.code, 400), err.code, err.reason)


MAX_DEPTH = 16  # the deepest body the API takes is 3 levels; json.loads itself fails (RecursionError) near 1,000
JSON_CHARSETS = ("utf-8", "utf8")  # JSON is UTF-8 (RFC 8259); a body in another charset is refused


def _refuse(status: type[web.HTTPError], code: str, message: str, **extra: Any) -> web.HTTPError:
    return status(text=dumps({"error": code, "message": message, **extra}), content_type="application/json")


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body; raises an HTTP 4xx that names the problem (each bad field for a 400)."""
    if request.content_type != "application/json":
        raise _refuse(web.HTTPUnsupportedMediaType, "unsupported_media_type", "请求体须为 JSON（Content-Type: application/json）。")
    if (request.charset or "utf-8").lower() not in JSON_CHARSETS:
        raise _refuse(web.HTTPUnsupportedMediaType, "unsupported_charset", "请求体须为 UTF-8 编码的 JSON。")
    try:
        raw = json.loads((await request.read()).decode("utf-8"), parse_constant=_no_constant)
    except web.HTTPRequestEntityTooLarge:
        limit = request.client_max_size
        raise web.HTTPRequestEntityTooLarge(
            limit,
            text=dumps({"error": "body_too_large", "message": f"请求体太大，上限 {limit} 字节。"}),
            content_type="application/json",
        ) from None
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _refuse(web.HTTPBadRequest, "invalid_json", "请求体不是合法的 JSON。") from None
    if _depth(raw) > MAX_DEPTH:
        raise _refuse(web.HTTPBadRequest, "invalid_json", f"请求体的 JSON 嵌套太深（最多 {MAX_DEPTH} 层）。")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        errors = err.errors()
        fields = [{"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": _problem(e)} for e in errors]
        names = "、".join(
            f"{f['field']}（{f['problem'].rstrip('。')}）" if e["type"] in OWN_WORDS else f["field"]
            for f, e in zip(fields, errors, strict=True)
        )
        raise _refuse(web.HTTPBadRequest, "invalid_body", f"字段有误：{names}", fields=fields) from None


def path_value(request: web.Request, name: str, limit: Limit) -> str:
    """A path parameter checked against its field's limit: 400 with the limit's sentence, before any query."""
    value = request.match_info[name]
    reason = limit.problem(value)
    if reason:
        raise _refuse(web.HTTPBadRequest, "invalid_path", reason, field=name)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0), without recursion."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, level = todo.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            break
        todo.extend((child, level + 1) for child in children)
    return deepest


OWN_WORDS = ("value_error", "extra_forbidden", "missing", "string_unicode")  # problems worded here or in domain/limits.py


def _problem(e: ErrorDetails) -> str:
    """The limit's own sentence when a limit refused the value; a short Chinese word for the common cases."""
    if e["type"] == "value_error" and "error" in e.get("ctx", {}):
        return str(e["ctx"]["error"])
    words = {"extra_forbidden": "未知字段", "missing": "缺少此字段", "string_unicode": "含有非法字符"}
    return words.get(e["type"], e["msg"])
