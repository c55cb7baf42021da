"""The fake K3's books: AR_receivable (应收单, red ones with negative quantities too) through DynamicFormService
Save, Submit and Audit, and ExecuteBillQuery over the bills saved (FakeK3 routes the calls here after checking the
login). It numbers bills as K3's default coding rule does (AR00000001 ...) and records every call.

Tell it to fail: `refuse_next(op, message)` answers IsSuccess false with that Errors[].Message (op: save | submit |
audit); `accept_then_stall(seconds)` saves the next bill and only then stalls the answer (a client time-out after
K3 accepted); `known_customers` / `known_materials` (None: any) refuse unknown base data as K3 does with
IsVerifyBaseDataField.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FORM = "AR_receivable"
SERVICE = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService."
SAVE_PATH, SUBMIT_PATH, AUDIT_PATH = (f"/{SERVICE}{op}.common.kdsvc" for op in ("Save", "Submit", "Audit"))
FIELDS = {"FBillNo", "FDocumentStatus", "FAR_Remark", "FCUSTOMERID.FNumber", "FDATE", "FSETTLEORGID.FNumber",
          "FBillTypeID.FNumber"}


def result(ok: bool, *, number: str = "", bill_id: int = 0, message: str = "", field_name: str | None = None
           ) -> dict[str, Any]:
    """An answer of Save/Submit/Audit as K3 gives it (the bare {"Result": ...} object)."""
    status: dict[str, Any] = {"ErrorCode": 0 if ok else 500, "IsSuccess": ok, "Errors": [], "SuccessEntitys": [],
                              "SuccessMessages": [], "MsgCode": 0 if ok else 11}
    if ok:
        status["SuccessEntitys"] = [{"Id": bill_id, "Number": number, "DIndex": 0}]
    else:
        status["Errors"] = [{"FieldName": field_name, "Message": message, "DIndex": 0}]
    return {"Result": {"ResponseStatus": status, "Id": bill_id if ok else "", "Number": number,
                       "NeedReturnData": [{}]}}


@dataclass
class Receivable:
    bill_id: int
    number: str
    model: dict[str, Any]
    status: str = "A"  # FDocumentStatus: A 创建, B 审核中, C 已审核

    @property
    def header(self) -> dict[str, Any]:
        m = self.model
        return {"FBillNo": self.number, "FDocumentStatus": self.status, "FAR_Remark": m.get("FAR_Remark", ""),
                "FCUSTOMERID.FNumber": (m.get("FCUSTOMERID") or {}).get("FNumber", ""), "FDATE": m.get("FDATE", ""),
                "FSETTLEORGID.FNumber": (m.get("FSETTLEORGID") or {}).get("FNumber", ""),
                "FBillTypeID.FNumber": (m.get("FBillTypeID") or {}).get("FNUMBER", "")}

    @property
    def lines(self) -> list[tuple[str, float, float]]:
        """(material, FPriceQty, FTaxPrice) of each entry line."""
        return [(str(x["FMATERIALID"]["FNumber"]), x["FPriceQty"], x["FTaxPrice"]) for x in self.model["FEntityDetail"]]

    @property
    def red(self) -> bool:
        return any(qty < 0 for _, qty, _ in self.lines)


@dataclass
class FakeBooks:
    receivables: dict[str, Receivable] = field(default_factory=dict)
    saves: list[dict[str, Any]] = field(default_factory=list)  # each Save's body, answered or not
    submits: list[str] = field(default_factory=list)
    audits: list[str] = field(default_factory=list)
    known_customers: set[str] | None = None
    known_materials: set[str] | None = None
    _refusals: dict[str, deque[str]] = field(default_factory=dict)
    _stalls: deque[float] = field(default_factory=deque)

    # -- test controls -------------------------------------------------------------------------

    def refuse_next(self, op: str, message: str, times: int = 1) -> None:
        self._refusals.setdefault(op, deque()).extend(message for _ in range(times))

    def accept_then_stall(self, seconds: float, times: int = 1) -> None:
        self._stalls.extend(seconds for _ in range(times))

    # -- wire ----------------------------------------------------------------------------------

    async def save(self, body: dict[str, Any]) -> dict[str, Any]:
        self.saves.append(body)
        refused = self._refused("save")
        if refused:
            return result(False, message=refused)
        if str(body.get("formid", "")).lower() != FORM.lower():
            return result(False, message="业务对象不存在")
        model = (body.get("data") or {}).get("Model")
        problem = self._check(model) if isinstance(model, dict) else ("Model", "数据包中缺少Model")
        if problem:
            return result(False, field_name=problem[0], message=problem[1])
        assert isinstance(model, dict)
        bill_id = 100000 + len(self.receivables) + 1
        number = f"AR{len(self.receivables) + 1:08d}"
        self.receivables[number] = Receivable(bill_id, number, model)
        if self._stalls:
            await asyncio.sleep(self._stalls.popleft())  # saved: only the answer is late
        return result(True, number=number, bill_id=bill_id)

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._step(body, "submit", {"A", "Z", "D"}, "B", self.submits, "单据不是创建或重新审核状态，不能提交")

    async def audit(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._step(body, "audit", {"B"}, "C", self.audits, "单据不是审核中状态，不能审核")

    def rows(self, keys: list[str], conditions: list[tuple[str, str, str]]) -> list[list[Any]]:
        for key in keys:
            if key not in FIELDS:
                raise ValueError(f"字段{key}不存在或已禁用")
        found = [r.header for r in self.receivables.values()
                 if all(op == "=" and r.header.get(name) == value for name, op, value in conditions)]
        return [[h[k] for k in keys] for h in found]

    def _step(self, body: dict[str, Any], op: str, sources: set[str], target: str, log: list[str],
              wrong_state: str) -> dict[str, Any]:
        numbers = (body.get("data") or {}).get("Numbers") or []
        log.extend(str(n) for n in numbers)
        refused = self._refused(op)
        if refused:
            return result(False, message=refused)
        if len(numbers) != 1 or str(numbers[0]) not in self.receivables:
            return result(False, message=f"单据编号为“{numbers}”的单据不存在")
        bill = self.receivables[str(numbers[0])]
        if bill.status not in sources:
            return result(False, message=wrong_state)
        bill.status = target
        return result(True, number=bill.number, bill_id=bill.bill_id)

    def _refused(self, op: str) -> str:
        queue = self._refusals.get(op)
        return queue.popleft() if queue else ""

    def _check(self, model: dict[str, Any]) -> tuple[str, str] | None:
        """The first problem K3 would report for this Model, or None."""
        for key, label in (("FCUSTOMERID", "客户"), ("FSETTLEORGID", "结算组织"), ("FCURRENCYID", "币别")):
            if not (model.get(key) or {}).get("FNumber"):
                return key, f"字段“{label}”是必填项"
        if not model.get("FDATE"):
            return "FDATE", "字段“业务日期”是必填项"
        customer = model["FCUSTOMERID"]["FNumber"]
        if self.known_customers is not None and customer not in self.known_customers:
            return "FCUSTOMERID", f"“客户”字段的值“{customer}”在系统中不存在或未审核"
        lines = model.get("FEntityDetail")
        if not isinstance(lines, list) or not lines:
            return "FEntityDetail", "明细信息至少需要一行"
        for i, line in enumerate(lines):
            material = (line.get("FMATERIALID") or {}).get("FNumber")
            if not material:
                return "FMATERIALID", f"第{i + 1}行字段“物料编码”是必填项"
            if self.known_materials is not None and material not in self.known_materials:
                return "FMATERIALID", f"第{i + 1}行“物料编码”字段的值“{material}”在系统中不存在或未审核"
            if not isinstance(line.get("FPriceQty"), int | float) or not isinstance(line.get("FTaxPrice"), int | float):
                return "FPriceQty", f"第{i + 1}行计价数量或含税单价不是数值"
        return None
