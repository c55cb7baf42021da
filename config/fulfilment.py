"""Settings sections for getting an order to its customer: address checks (Amap), customer texts (Aliyun SMS),
labels at the packing bench, e-waybills (Cainiao, Kuaidi100) and courier tracking."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator


class LogisticsSettings(BaseModel):
    """Courier tracking (Kuaidi100-style query API)."""

    api_base: str = "https://poll.kuaidi100.com"
    customer: str = ""
    key: SecretStr = SecretStr("")
    default_carrier: str = "shunfeng"
    concurrency: int = 200
    batch_size: int = 1000
    timeout_s: float = 5.0
    # Kuaidi100 subscription push (订阅推送): our public callback URL (…/channels/kuaidi100/callback) and the
    # salt Kuaidi100 signs each push with. Both empty: no subscriptions are sent and every push is refused.
    callback_url: str = ""
    salt: SecretStr = SecretStr("")


class GeoSettings(BaseModel):
    """Address validation through Amap geocoding. No key: addresses are not validated (changes go straight through)."""

    api_base: str = "https://restapi.amap.com"
    key: SecretStr = SecretStr("")
    timeout_s: float = 2.0  # past this the address counts as unverified: changed, and customer service checks it


class SmsSettings(BaseModel):
    """Customer text messages through Aliyun SMS (SendSms). ACCESS_KEY_ID, ACCESS_KEY_SECRET and SIGN_NAME all
    set: texts are sent; otherwise each SMS row is set aside as "unconfigured" (counted on /metrics) and, once
    configured, the ones younger than `drain_max_age_hours` are sent at start-up (older ones are skipped).
    A template code per kind of text; a kind with no code is "unconfigured" the same way."""

    access_key_id: str = ""
    access_key_secret: SecretStr = SecretStr("")
    sign_name: str = ""  # the registered sign (签名), e.g. 某某汽配
    api_base: str = "https://dysmsapi.aliyuncs.com"
    timeout_s: float = Field(default=5.0, gt=0)
    shipped_template: str = ""  # SMS_… with ${order_no}, ${waybill}, ${courier}
    address_changed_template: str = ""  # SMS_… with ${order_no}, ${address}
    refund_template: str = ""  # SMS_… with ${order_no}, ${amount}
    quiet_start: str = Field(default="21:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # Beijing time: no texts from …
    quiet_end: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # … until (held, sent then)
    drain_max_age_hours: float = Field(default=24, ge=0)  # unconfigured rows younger than this are sent once configured

    @property
    def configured(self) -> bool:
        return bool(self.access_key_id and self.access_key_secret.get_secret_value() and self.sign_name)


class PrintingSettings(BaseModel):
    """Labels at the packing bench: `printers` maps a store code to its printer's URL — tspl://host:9100 or
    zpl://host:9100 (a raw job over TCP), cainiao://host:13528 (Cainiao's print component, WebSocket),
    pdf://dir (a PDF file per label); cainiao://host:13528?printer=NAME picks the component's printer by name.
    A store with no entry has its labels set aside as "unconfigured"."""

    printers: dict[str, str] = Field(default_factory=dict)
    connect_timeout_s: float = Field(default=3.0, gt=0)  # a printer that does not take the connection by then is off
    send_timeout_s: float = Field(default=10.0, gt=0)  # the whole job written (or the component's answer) by then
    notify_timeout_s: float = Field(default=15.0, ge=0)  # Cainiao: wait this long for notifyPrintResult
    retry_window_s: float = Field(default=600.0, gt=0)  # a label not printed by then is given up: a card to the bench
    drain_max_age_hours: float = Field(default=24, ge=0)  # unconfigured labels younger than this print once configured

    @field_validator("printers")
    @classmethod
    def _known_schemes(cls, value: dict[str, str]) -> dict[str, str]:
        def usable(url: str) -> bool:
            parts = urlsplit(url.strip())
            if parts.scheme == "pdf":
                return bool(parts.netloc + parts.path)
            try:
                parts.port  # noqa: B018 - raises ValueError for a port that is not a number
            except ValueError:
                return False
            return parts.scheme in ("tspl", "zpl", "cainiao") and bool(parts.hostname)

        bad = [f"{store}={url}" for store, url in value.items() if not usable(url)]
        if bad:
            raise ValueError("a printer URL is tspl://host:9100, zpl://host:9100, cainiao://host:13528 or "
                             f"pdf://folder ({', '.join(bad)})")
        return value


class WaybillSettings(BaseModel):
    """E-waybills at the packing bench: which provider issues each store's waybills. A store with none (no entry and
    no default, or the provider's settings incomplete) types its waybill at 发货, as without e-waybills."""

    providers: dict[str, Literal["cainiao", "kuaidi100"]] = Field(default_factory=dict)  # store code → provider
    default: Literal["", "cainiao", "kuaidi100"] = ""  # for the stores not named in `providers`
    timeout_s: float = Field(default=10.0, gt=0)


class CainiaoSettings(BaseModel):
    """Cainiao LINK (菜鸟电子面单云打印): TMS_WAYBILL_GET / TMS_WAYBILL_DISCARD."""

    api_base: str = "https://link.cainiao.com/gateway/link.do"
    provider_id: str = ""  # logistic_provider_id (the LINK app's resource code)
    secret: SecretStr = SecretStr("")  # signs data_digest
    cp_code: str = ""  # the courier the account is subscribed to, e.g. YTO, ZTO, STO
    to_code: str = ""  # only when Cainiao told the account to send one
    template_url: str = ""  # the standard template (templateURL) of the courier's 100 × 150 mm label

    @property
    def configured(self) -> bool:
        return bool(self.provider_id and self.secret.get_secret_value() and self.cp_code)


class Kuaidi100WaybillSettings(BaseModel):
    """Kuaidi100 e-waybills (label/order): the API key and secret, and the courier account (partnerId/partnerKey)."""

    api_base: str = "https://api.kuaidi100.com"
    key: str = ""
    secret: SecretStr = SecretStr("")
    partner_id: str = ""  # 电子面单客户账户或月结账号
    partner_key: SecretStr = SecretStr("")
    kuaidicom: str = "yuantong"  # Kuaidi100's courier code
    exp_type: str = "标准快递"
    pay_type: Literal["SHIPPER", "CONSIGNEE", "MONTHLY", "THIRDPARTY"] = "MONTHLY"

    @property
    def configured(self) -> bool:
        return bool(self.key and self.secret.get_secret_value() and self.partner_id)
