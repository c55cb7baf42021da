"""JSON in and out of the HTTP edge: Chinese kept readable, errors always {error, message}."""

from __future__ import annotations

import json
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from domain.errors import DomainError

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


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body; raises an HTTP 400 that names each bad field."""
    try:
        raw = await request.json(loads=json.loads)
    except web.HTTPRequestEntityTooLarge:
        limit = request.client_max_size
        raise web.HTTPRequestEntityTooLarge(
            limit,
            text=dumps({"error": "body_too_large", "message": f"请求体太大，上限 {limit} 字节。"}),
            content_type="application/json",
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text=dumps({"error": "invalid_json", "message": "请求体不是合法的 JSON。"}),
            content_type="application/json",
        ) from None
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        fields = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]} for e in err.errors()
        ]
        names = "、".join(f["field"] for f in fields)
        raise web.HTTPBadRequest(
            text=dumps({"error": "invalid_body", "message": f"字段有误：{names}", "fields": fields}),
            content_type="application/json",
        ) from None
