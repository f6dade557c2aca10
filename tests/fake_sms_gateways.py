"""Loopback fakes of Alibaba Cloud's and Tencent Cloud's SMS APIs (``SendSms``).

One HTTP server on 127.0.0.1 plays both services at ``/``: a request with ``x-acs-action`` is
Alibaba Cloud's, one with ``X-TC-Action`` Tencent Cloud's. Like the real services, each checks
the request's signature first, recomputing it from what arrived (its own implementation of the
public algorithms, written apart from ``bot/channels/sms_gateways``), and refuses a wrong one with the
service's own error; then it checks the business parameters against the templates "registered"
here, and answers as the service does. Tests script throttling and outages and read what was
received.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes import LoopbackServer

ALIYUN_KEY_ID = "LTAI5tFakeKeyId"
ALIYUN_SECRET = "fake-aliyun-access-key-secret"
TENCENT_SECRET_ID = "AKIDfakeSecretId"
TENCENT_SECRET_KEY = "fake-tencent-secret-key"
TENCENT_APP_ID = "1400000001"
SIGN_NAME = "连心"

# Templates "approved" at each gateway: Alibaba's by their ${names}, Tencent's by their count
# of {n} parameters.
ALIYUN_TEMPLATES = {
    "SMS_100001": {"code"},  # 您的实名验证码是${code},5分钟内有效…
    "SMS_100002": {"ticket", "category", "number"},  # 紧急警情#${ticket}(${category})…
}
TENCENT_TEMPLATES = {"1000001": 2, "1000002": 2}  # {1}验证码 {2}分钟 / #{1} {2}
TENCENT_MAX_VALUE = 6  # Tencent: a template value is at most 6 characters
MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")


@dataclass
class GatewayCall:
    """One request as the fake understood it."""

    provider: str
    accepted: bool
    error: str | None = None  # the error code answered
    phone: str | None = None
    sign_name: str | None = None
    template: str | None = None
    params: Any = None  # Alibaba: the TemplateParam object; Tencent: the TemplateParamSet list
    reference: str | None = None  # OutId / SessionContext
    nonce: str | None = None


@dataclass
class GatewayState:
    calls: list[GatewayCall] = field(default_factory=list)
    # Outcomes for requests that pass the signature check, consumed in order (default "ok"):
    # "throttle", "unavailable" (HTTP 503), "hang" (answers after 2 s).
    script: deque[str] = field(default_factory=deque)
    nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self, provider: str) -> list[GatewayCall]:
        return [c for c in self.calls if c.provider == provider and c.accepted]

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.script.clear()
            self.nonces.clear()

    def _next(self) -> str:
        with self.lock:
            return self.script.popleft() if self.script else "ok"

    def _record(self, call: GatewayCall) -> None:
        with self.lock:
            self.calls.append(call)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rfc3986(text: str) -> str:
    return quote(text, safe="~", encoding="utf-8")


# --- Alibaba Cloud (ACS3-HMAC-SHA256) -----------------------------------------------------------

_ACS3 = re.compile(
    r"ACS3-HMAC-SHA256 Credential=(?P<key>[^,]+),SignedHeaders=(?P<signed>[^,]+),"
    r"Signature=(?P<sig>[0-9a-f]{64})"
)


def _aliyun_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "RequestId": str(uuid.uuid4()).upper(),
            "HostId": "dysmsapi.aliyuncs.com",
            "Code": code,
            "Message": message,
        },
        status_code=status,
    )


def _aliyun_signature_problem(
    request: Request, body: bytes, state: GatewayState
) -> JSONResponse | None:
    headers = {k.lower(): v for k, v in request.headers.items()}
    match = _ACS3.fullmatch(headers.get("authorization", ""))
    if match is None:
        return _aliyun_error(400, "IncompleteSignature", "The request signature is incomplete.")
    if match["key"] != ALIYUN_KEY_ID:
        return _aliyun_error(
            404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        )
    signed = match["signed"].split(";")
    needed = {"host"} | {name for name in headers if name.startswith("x-acs-")}
    if signed != sorted(signed) or not needed <= set(signed) or not set(signed) <= set(headers):
        return _aliyun_error(400, "IncompleteSignature", "SignedHeaders is incomplete.")
    if headers.get("x-acs-content-sha256") != _sha256(body):
        return _aliyun_error(400, "IncompleteSignature", "x-acs-content-sha256 is wrong.")
    try:
        at = datetime.strptime(headers.get("x-acs-date", ""), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC
        )
    except ValueError:
        return _aliyun_error(400, "InvalidTimeStamp.Format", "Specified time stamp is invalid.")
    if abs(time.time() - at.timestamp()) > 15 * 60:
        return _aliyun_error(400, "InvalidTimeStamp.Expired", "Specified time stamp is expired.")
    # The service decodes the query and encodes it again: the client must have encoded it the
    # same way for the signatures to agree.
    params = parse_qsl(request.url.query, keep_blank_values=True)
    canonical_query = "&".join(f"{_rfc3986(k)}={_rfc3986(v)}" for k, v in sorted(params))
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    canonical = "\n".join(
        [
            request.method,
            quote(request.url.path, safe="/~"),
            canonical_query,
            canonical_headers,
            ";".join(signed),
            headers["x-acs-content-sha256"],
        ]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + _sha256(canonical.encode())
    expected = hmac.new(ALIYUN_SECRET.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["sig"]):
        return _aliyun_error(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        )
    nonce = headers.get("x-acs-signature-nonce", "")
    with state.lock:
        if not nonce or nonce in state.nonces:
            return _aliyun_error(400, "SignatureNonceUsed", "Specified signature nonce was used.")
        state.nonces.add(nonce)
    if headers.get("x-acs-action") != "SendSms" or headers.get("x-acs-version") != "2017-05-25":
        return _aliyun_error(400, "InvalidAction.NotFound", "Specified api is not found.")
    return None


async def _aliyun(request: Request, state: GatewayState) -> JSONResponse:
    body = await request.body()
    problem = _aliyun_signature_problem(request, body, state)
    nonce = request.headers.get("x-acs-signature-nonce")
    if problem is not None:
        state._record(GatewayCall("aliyun", False, json.loads(problem.body)["Code"], nonce=nonce))
        return problem
    q = dict(parse_qsl(request.url.query, keep_blank_values=True))
    call = GatewayCall(
        "aliyun",
        False,
        phone=q.get("PhoneNumbers"),
        sign_name=q.get("SignName"),
        template=q.get("TemplateCode"),
        reference=q.get("OutId"),
        nonce=nonce,
    )
    code = "OK"
    try:
        call.params = json.loads(q["TemplateParam"]) if "TemplateParam" in q else {}
    except ValueError:
        code = "isv.INVALID_JSON_PARAM"
    number = re.sub(r"^(\+86|0086|86)(?=1\d{10}$)", "", call.phone or "")
    if not MAINLAND_MOBILE.fullmatch(number):
        code = "isv.MOBILE_NUMBER_ILLEGAL"
    elif call.sign_name != SIGN_NAME:
        code = "isv.SMS_SIGNATURE_ILLEGAL"
    elif call.template not in ALIYUN_TEMPLATES:
        code = "isv.SMS_TEMPLATE_ILLEGAL"
    elif code == "OK" and set(call.params) != ALIYUN_TEMPLATES[call.template]:
        code = "isv.TEMPLATE_MISSING_PARAMETERS"
    recorded = False
    if code == "OK":
        step = state._next()
        if step == "hang":
            # Accepted, but the answer comes too late for the client. Recorded on arrival:
            # later, another test owns the shared state.
            call.accepted = recorded = True
            state._record(call)
            await asyncio.sleep(2)
        elif step == "unavailable":
            call.error = "ServiceUnavailable"
            state._record(call)
            return _aliyun_error(
                503, call.error, "The request has failed due to a temporary failure."
            )
        elif step == "throttle":
            code = "isv.BUSINESS_LIMIT_CONTROL"
    rid = str(uuid.uuid4()).upper()
    if code != "OK":
        call.error = code
        state._record(call)
        # Business errors come back with HTTP 200, as the real service does.
        return JSONResponse({"Code": code, "Message": "refused", "RequestId": rid})
    call.accepted = True
    if not recorded:
        state._record(call)
    return JSONResponse(
        {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": rid}
    )


# --- Tencent Cloud (TC3-HMAC-SHA256) -----------------------------------------------------------

_TC3 = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})"
)


def _tencent(answer: dict[str, Any]) -> JSONResponse:
    # Tencent Cloud API 3.0 answers HTTP 200 whatever happened.
    return JSONResponse({"Response": {**answer, "RequestId": str(uuid.uuid4())}})


def _tencent_error(code: str, message: str) -> JSONResponse:
    return _tencent({"Error": {"Code": code, "Message": message}})


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _tencent_signature_problem(request: Request, body: bytes) -> JSONResponse | None:
    headers = {k.lower(): v for k, v in request.headers.items()}
    match = _TC3.fullmatch(headers.get("authorization", ""))
    if match is None:
        return _tencent_error("AuthFailure.InvalidAuthorization", "Authorization is invalid.")
    if match["id"] != TENCENT_SECRET_ID:
        return _tencent_error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
    raw_ts = headers.get("x-tc-timestamp", "")
    if not raw_ts.isdigit() or abs(time.time() - int(raw_ts)) > 300:
        return _tencent_error("AuthFailure.SignatureExpire", "Signature expired.")
    ts = int(raw_ts)
    date = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
    signed = match["signed"].split(";")
    if (
        match["date"] != date
        or match["service"] != "sms"
        or not {"content-type", "host"} <= set(signed)
        or not set(signed) <= set(headers)
    ):
        return _tencent_error(
            "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
        )
    canonical_headers = "".join(f"{n}:{headers[n].strip().lower()}\n" for n in signed)
    canonical = "\n".join(
        [
            request.method,
            request.url.path,
            request.url.query,
            canonical_headers,
            ";".join(signed),
            _sha256(body),
        ]
    )
    scope = f"{date}/sms/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{ts}\n{scope}\n{_sha256(canonical.encode())}"
    key = _hmac(_hmac(_hmac(("TC3" + TENCENT_SECRET_KEY).encode(), date), "sms"), "tc3_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["sig"]):
        return _tencent_error(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        )
    if headers.get("x-tc-action") != "SendSms":
        return _tencent_error("InvalidAction", "The action does not exist.")
    if headers.get("x-tc-version") != "2021-01-11":
        return _tencent_error("NoSuchVersion", "The API version does not exist.")
    if not headers.get("x-tc-region"):
        return _tencent_error("MissingParameter", "The Region parameter is missing.")
    return None


async def _tencent_send(request: Request, state: GatewayState) -> JSONResponse:
    body = await request.body()
    problem = _tencent_signature_problem(request, body)
    if problem is not None:
        code = json.loads(problem.body)["Response"]["Error"]["Code"]
        state._record(GatewayCall("tencent", False, code))
        return problem
    try:
        req = json.loads(body)
    except ValueError:
        state._record(GatewayCall("tencent", False, "FailedOperation.FailResolvePacket"))
        return _tencent_error("FailedOperation.FailResolvePacket", "Cannot parse the request.")
    phones = req.get("PhoneNumberSet") or []
    call = GatewayCall(
        "tencent",
        False,
        phone=phones[0] if phones else None,
        sign_name=req.get("SignName"),
        template=req.get("TemplateId"),
        params=req.get("TemplateParamSet") or [],
        reference=req.get("SessionContext"),
    )
    if req.get("SmsSdkAppId") != TENCENT_APP_ID:
        call.error = "InvalidParameterValue.SdkAppIdNotExist"
        state._record(call)
        return _tencent_error(call.error, "The SdkAppId does not exist.")
    code = "Ok"
    if not (call.phone or "").startswith("+86") or not MAINLAND_MOBILE.fullmatch(
        (call.phone or "")[3:]
    ):
        code = "InvalidParameterValue.IncorrectPhoneNumber"
    elif call.sign_name != SIGN_NAME:
        code = "FailedOperation.SignatureIncorrectOrUnapproved"
    elif call.template not in TENCENT_TEMPLATES:
        code = "FailedOperation.TemplateIncorrectOrUnapproved"
    elif len(call.params) != TENCENT_TEMPLATES[call.template]:
        code = "InvalidParameterValue.TemplateParameterFormatError"
    elif any(len(str(v)) > TENCENT_MAX_VALUE for v in call.params):
        code = "InvalidParameterValue.TemplateParameterLengthLimit"
    step = state._next() if code == "Ok" else "ok"
    if step == "unavailable":
        call.error = "HTTP 503"
        state._record(call)
        return JSONResponse({"message": "upstream unavailable"}, status_code=503)
    if step == "throttle":
        code = "LimitExceeded.PhoneNumberThirtySecondLimit"
    call.accepted = code == "Ok"
    call.error = None if call.accepted else code
    state._record(call)  # on arrival, also when the answer hangs (see the Alibaba fake)
    if step == "hang":
        await asyncio.sleep(2)
    status = {
        "SerialNo": "5000:1045710669157053657849499619",
        "PhoneNumber": call.phone,
        "Fee": 1 if call.accepted else 0,
        "SessionContext": call.reference or "",
        "Code": code,
        "Message": "send success" if call.accepted else "refused",
        "IsoCode": "CN",
    }
    return _tencent({"SendStatusSet": [status]})


def _app(state: GatewayState) -> FastAPI:
    app = FastAPI()

    @app.post("/")
    async def send(request: Request) -> JSONResponse:
        if "x-acs-action" in request.headers:
            return await _aliyun(request, state)
        if "x-tc-action" in request.headers:
            return await _tencent_send(request, state)
        return JSONResponse({"error": "neither an Alibaba nor a Tencent request"}, status_code=400)

    return app


class FakeGateways(LoopbackServer):
    """Both fakes on one loopback port, in a background thread."""

    def __init__(self) -> None:
        self.state = GatewayState()
        super().__init__(_app(self.state))
