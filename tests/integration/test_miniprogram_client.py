"""The jscode2session client against the fake, which speaks WeChat's wire format: each errcode lands where the
edge needs it (a refused code, a rate limit, WeChat busy), and the secret stays out of what is raised."""

from __future__ import annotations

import httpx
import pytest

from integrations.channels.miniprogram import LoginRefused, LoginUnavailable, MiniprogramClient, WxSession
from integrations.fakes.wechat_mini import FakeWeChatMini

APP_ID, SECRET = "wx1111222233334444", "client-secret-do-not-leak"


async def test_codes_errcodes_and_outages() -> None:
    async with FakeWeChatMini(APP_ID, SECRET) as fake, httpx.AsyncClient(timeout=10) as http, \
            httpx.AsyncClient(timeout=0.3) as impatient:
        client = MiniprogramClient(http, api_base=fake.base_url, app_id=APP_ID, secret=SECRET)
        code = fake.issue_code("o-1", unionid="u-1")
        assert await client.code2session(code) == WxSession("o-1", "u-1")
        with pytest.raises(LoginRefused) as used:
            await client.code2session(code)
        assert used.value.errcode == 40163
        with pytest.raises(LoginRefused) as unknown:
            await client.code2session("never-issued")
        assert unknown.value.errcode == 40029
        for errcode, rate_limited in ((45011, True), (-1, False)):
            fake.fail_next(errcode=errcode)
            with pytest.raises(LoginUnavailable) as busy:
                await client.code2session(fake.issue_code("o-2"))
            assert busy.value.rate_limited is rate_limited
        fake.fail_next(errcode=40226)
        with pytest.raises(LoginRefused):
            await client.code2session(fake.issue_code("o-2"))
        fake.stall_next(2.0)
        hurried = MiniprogramClient(impatient, api_base=fake.base_url, app_id=APP_ID, secret=SECRET)
        with pytest.raises(LoginUnavailable) as slow:
            await hurried.code2session(fake.issue_code("o-2"))
        assert SECRET not in str(slow.value) and slow.value.__cause__ is None
        wrong = MiniprogramClient(http, api_base=fake.base_url, app_id=APP_ID, secret="wrong")
        with pytest.raises(LoginUnavailable) as config:
            await wrong.code2session(fake.issue_code("o-3"))
        assert config.value.errcode == 40125
        assert await client.code2session(fake.issue_code("o-3")) == WxSession("o-3", "")
