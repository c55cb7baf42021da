"""The books in K3 Cloud over its WebAPI: a receivable (应收单, FormId AR_receivable) per shipped order and a red
receivable (红字应收单: the same form, negative quantities) per approved refund; saved, then submitted and audited
where configured. The same client and login as the sales-order pull (client.py).

Wire format, as read:
- kingdee-cdp-webapi-sdk 8.2.0 (PyPI, k3cloud_webapi_sdk/main.py): Save, Submit and Audit each POST
  Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.<Save|Submit|Audit>.common.kdsvc with {"formid", "data"};
  Save's data carries "Model" (the bill), Submit's and Audit's carry "Numbers" (bill numbers). An answer is
  {"Result": {"ResponseStatus": {"IsSuccess", "Errors": [{"FieldName", "Message", "DIndex"}], "SuccessEntitys":
  [{"Id", "Number", "DIndex"}], "MsgCode"}, "Id", "Number", ...}}; IsSuccess false is a refusal (client.refusal).
- AR_receivable's fields (vebin/Kingdee.Bos.Plug, MgSoft.K3Cloud.WebApi/Common/Dto/Ar/Ar_ReceivableSaveInputDto.cs
  and Ar_Receivable_EntityDetail.cs): FBillTypeID, FDATE, FENDDATE_H (due date), FCUSTOMERID, FCURRENCYID,
  FSETTLEORGID, FPAYORGID, FSALEORGID, FAR_Remark, and the lines FEntityDetail with FMATERIALID, FPriceQty
  (计价数量), FTaxPrice (含税单价), FEntryTaxRate. Base data travel as {"FNumber": code}.
Idempotence: K3's Save has no idempotency key, so each document carries a stable remark (FAR_Remark, e.g.
"orderbot 发货 SO…") and every attempt first asks ExecuteBillQuery for an AR_receivable with exactly that remark:
a Save that timed out after K3 had accepted it is found, not saved again. A found bill is submitted/audited only as
far as its FDocumentStatus still needs (Z/A saved → Submit → B → Audit → C).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from integrations.channels.k3.client import K3Client, K3Error

FORM = "AR_receivable"
SERVICE = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService."
SAVE, SUBMIT, AUDIT = SERVICE + "Save", SERVICE + "Submit", SERVICE + "Audit"
SAVED, SUBMITTED, AUDITED = "A", "B", "C"
NOT_SUBMITTED = {"Z", "A", "D"}  # 暂存, 创建, 重新审核
STATUS_LABELS = {"Z": "暂存", "A": "已保存", "B": "审核中", "C": "已审核", "D": "重新审核"}
KIND_LABELS = {"receivable": "应收单", "red_receivable": "红字应收单"}


@dataclass(frozen=True)
class BooksConfig:
    org_number: str  # FSETTLEORGID / FSALEORGID / FPAYORGID: the selling organisation's number
    bill_type: str = "YSDLX01_SYS"  # 标准应收单
    currency: str = "PRE001"  # 人民币
    tax_rate: float = 13.0  # FEntryTaxRate, %
    due_days: int = 0  # FENDDATE_H = FDATE + this
    submit: bool = True
    audit: bool = True  # implies submit
    default_customer: str = ""  # FCUSTOMERID for a customer with no K3 number (e.g. a retail "散客" customer)
    refund_material: str = ""  # FMATERIALID of a part refund's one line ("": the order's first SKU)


@dataclass(frozen=True)
class Booked:
    bill_no: str
    status: str  # FDocumentStatus as we left it
    found: bool  # an earlier attempt had saved it already


class BookingStopped(K3Error):
    """The bill is saved in K3 (its number is known) but a later step failed: `cause` says how."""

    def __init__(self, bill_no: str, status: str, step: str, cause: K3Error) -> None:
        super().__init__(f"{bill_no} {step}: {cause}")
        self.bill_no, self.status, self.step, self.cause = bill_no, status, step, cause


def remark(kind: str, payload: dict[str, Any]) -> str:
    """The stable text that names our document in K3 (FAR_Remark), and finds it again."""
    if kind == "red_receivable":
        return f"orderbot 退款 {payload['ref']} 订单 {payload['order_no']}"
    return f"orderbot 发货 {payload['order_no']}"


def _yuan(fen: int) -> float:
    return round(fen / 100, 2)


def entry_lines(kind: str, payload: dict[str, Any], cfg: BooksConfig) -> list[dict[str, Any]]:
    """FEntityDetail. A receivable: the order's lines. A red receivable: the order's lines negated when the whole
    order is refunded; otherwise one line of -1 × the refund (on the refund material, else the first SKU)."""
    lines = payload["lines"]
    total = sum(int(x["qty"]) * int(x["unit_price_fen"]) for x in lines)
    sign = -1 if kind == "red_receivable" else 1
    if sign > 0 or int(payload["amount_fen"]) == total:
        return [_line(x["sku"], sign * int(x["qty"]), int(x["unit_price_fen"]), cfg) for x in lines]
    material = cfg.refund_material or (lines[0]["sku"] if lines else "")
    return [_line(material, -1, int(payload["amount_fen"]), cfg)]


def _line(sku: str, qty: int, price_fen: int, cfg: BooksConfig) -> dict[str, Any]:
    return {"FMATERIALID": {"FNumber": sku}, "FPriceQty": qty, "FTaxPrice": _yuan(price_fen),
            "FEntryTaxRate": cfg.tax_rate}


def save_body(kind: str, payload: dict[str, Any], cfg: BooksConfig) -> dict[str, Any]:
    """Save's JSON for one document."""
    day = date.fromisoformat(str(payload["booked_on"]))
    org = {"FNumber": cfg.org_number}
    model = {
        "FID": 0,
        "FBillTypeID": {"FNUMBER": cfg.bill_type},
        "FDATE": day.isoformat(),
        "FENDDATE_H": (day + timedelta(days=cfg.due_days)).isoformat(),
        "FCUSTOMERID": {"FNumber": payload.get("k3_customer") or cfg.default_customer or payload["customer_id"]},
        "FCURRENCYID": {"FNumber": cfg.currency},
        "FSETTLEORGID": org, "FPAYORGID": org, "FSALEORGID": org,
        "FAR_Remark": remark(kind, payload),
        "FEntityDetail": entry_lines(kind, payload, cfg),
    }
    return {"formid": FORM, "data": {"IsDeleteEntry": "true", "IsVerifyBaseDataField": "true", "Model": model}}


def numbers_body(bill_no: str) -> dict[str, Any]:
    """Submit's and Audit's JSON."""
    return {"formid": FORM, "data": {"CreateOrgId": 0, "Numbers": [bill_no], "Ids": ""}}


def _quoted(text: str) -> str:
    return text.replace("'", "''")


class K3Books:
    def __init__(self, client: K3Client, cfg: BooksConfig) -> None:
        self.client, self.cfg = client, cfg

    async def find(self, text: str) -> tuple[str, str] | None:
        """(FBillNo, FDocumentStatus) of the AR_receivable whose remark is exactly `text`, if K3 has one."""
        rows = await self.client.bill_query(FORM, ["FBillNo", "FDocumentStatus"],
                                            filter_string=f"FAR_Remark = '{_quoted(text)}'", limit=1)
        return (str(rows[0][0]), str(rows[0][1])) if rows and rows[0] else None

    async def book(self, kind: str, payload: dict[str, Any]) -> Booked:
        existing = await self.find(remark(kind, payload))
        if existing is not None:
            bill_no, status = existing
        else:
            answer = await self.client.call(SAVE, save_body(kind, payload, self.cfg))
            bill_no, status = saved_number(answer), SAVED
        wants_audit = self.cfg.audit
        try:
            if status in NOT_SUBMITTED and (self.cfg.submit or wants_audit):
                await self.client.call(SUBMIT, numbers_body(bill_no))
                status = SUBMITTED
            if status == SUBMITTED and wants_audit:
                await self.client.call(AUDIT, numbers_body(bill_no))
                status = AUDITED
        except K3Error as err:
            step = "提交" if status in NOT_SUBMITTED else "审核"
            raise BookingStopped(bill_no, status, step, err) from err
        return Booked(bill_no, status, existing is not None)


def saved_number(answer: Any) -> str:
    """The bill number in Save's answer (Result.Number, else the first SuccessEntitys' Number)."""
    result = answer.get("Result") if isinstance(answer, dict) else None
    if isinstance(result, dict):
        number = result.get("Number")
        if not number:
            entities = (result.get("ResponseStatus") or {}).get("SuccessEntitys") or []
            number = entities[0].get("Number") if entities and isinstance(entities[0], dict) else None
        if number:
            return str(number)
    raise K3Error(f"K3 Save answered no bill number: {str(answer)[:120]}")  # retried: the query finds the bill
