"""Tencent Cloud SMS (``SendSms``, API version 2021-01-11), signed with TC3-HMAC-SHA256
(Tencent Cloud API 3.0 "Signature v3").

A request is ``POST {base}/`` with a JSON body and the headers ``Host``, ``Content-Type:
application/json; charset=utf-8``, ``X-TC-Action: SendSms``, ``X-TC-Version: 2021-01-11``,
``X-TC-Timestamp`` (Unix seconds), ``X-TC-Region`` and ``Authorization``:

- CanonicalRequest: ``POST\\n/\\n\\n`` + CanonicalHeaders + ``\\n`` + SignedHeaders + ``\\n`` +
  hex(sha256(body)); CanonicalHeaders are ``content-type``, ``host`` and ``x-tc-action``,
  name and value both lower-case, each ``name:value\\n``; SignedHeaders
  ``content-type;host;x-tc-action``.
- StringToSign: ``TC3-HMAC-SHA256\\n<timestamp>\\n<date>/sms/tc3_request\\n`` +
  hex(sha256(CanonicalRequest)), ``date`` being the UTC date of the timestamp (YYYY-MM-DD).
- Key: ``HMAC("TC3" + SecretKey, date)`` → ``HMAC(·, "sms")`` → ``HMAC(·, "tc3_request")``;
  Signature: hex(HMAC(key, StringToSign)).
- Authorization: ``TC3-HMAC-SHA256 Credential=<SecretId>/<date>/sms/tc3_request,
  SignedHeaders=content-type;host;x-tc-action, Signature=<signature>``.

The gateway answers HTTP 200 even for errors: ``Response.Error`` for a refused request,
``Response.SendStatusSet[].Code`` (``Ok`` or an error) for each number.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.channels.sms_gateways.common import host_of, json_body, post, safe_text, template_params
from bot.clock import Clock
from bot.messages import SendError
from bot.pii import mask_phone
from bot.settings import SmsSettings, secret_value
from bot.sms_templates import recipient

log = logging.getLogger("lianxin.sms")

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "sms"
ACTION = "SendSms"
VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = ("content-type", "host", "x-tc-action")

# Per-number frequency limits pass; the account's daily caps do not within the retries.
_RETRYABLE = {
    "LimitExceeded.PhoneNumberThirtySecondLimit",
    "LimitExceeded.PhoneNumberOneHourLimit",
    "LimitExceeded.DeliveryFrequencyLimit",
}
_RETRYABLE_PREFIXES = ("RequestLimitExceeded", "InternalError")

_SECRET_HINT = "the SecretKey does not match (check LIANXIN__SMS__ACCESS_KEY_SECRET)"
_HINTS = {
    "AuthFailure.SignatureFailure": _SECRET_HINT,
    "AuthFailure.SecretIdNotFound": "unknown SecretId (check sms.access_key_id)",
    "AuthFailure.InvalidSecretId": "not a SecretId (check sms.access_key_id)",
    "AuthFailure.SignatureExpire": "the gateway finds our clock off by over 5 minutes",
    "AuthFailure.UnauthorizedOperation": "the SecretId's CAM user may not send SMS",
    "InvalidParameterValue.IncorrectPhoneNumber": "the gateway does not accept this number",
    "FailedOperation.PhoneNumberInBlacklist": "the number is on the do-not-disturb list",
    "FailedOperation.SignatureIncorrectOrUnapproved": "signature not approved "
    "(check sms.sign_name)",
    "FailedOperation.InsufficientBalanceInSmsPackage": "the SMS package is used up",
    "InvalidParameterValue.SdkAppIdNotExist": "unknown SmsSdkAppId (check sms.app_id)",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": "SmsSdkAppId refused (check sms.app_id)",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "the gateway's per-number frequency limit",
    "LimitExceeded.PhoneNumberOneHourLimit": "the gateway's per-number hourly limit",
    "LimitExceeded.PhoneNumberDailyLimit": "the gateway's per-number daily limit",
    "LimitExceeded.DeliveryFrequencyLimit": "the gateway's frequency limit",
}
_TEMPLATE_CODES = {
    "FailedOperation.TemplateIncorrectOrUnapproved": "template not approved or the values do "
    "not fit it (check sms.templates.{kind})",
    "InvalidParameterValue.TemplateParameterFormatError": "a value does not fit the template "
    "(check sms.templates.{kind}.params)",
    "InvalidParameterValue.TemplateParameterLengthLimit": "a value is too long for the "
    "template (check sms.templates.{kind}.params)",
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": "a value looks like a link",
}


def e164(phone: str) -> str:
    """``13812345678`` → ``+8613812345678``; a number already with ``+`` stays as it is."""
    digits = phone.strip()
    if digits.startswith("+"):
        return digits
    if digits.startswith("0086"):
        return "+" + digits[2:]
    if digits.startswith("86") and len(digits) == 13:
        return "+" + digits
    return "+86" + digits


def canonical_request(*, headers: Mapping[str, str], payload: bytes) -> str:
    """The canonical request of a ``POST /`` whose signed headers are ``headers``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    canonical_headers = "".join(
        f"{name}:{lowered[name].strip().lower()}\n" for name in SIGNED_HEADERS
    )
    return "\n".join(
        [
            "POST",
            "/",
            "",  # no query string
            canonical_headers,
            ";".join(SIGNED_HEADERS),
            hashlib.sha256(payload).hexdigest(),
        ]
    )


def _date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def string_to_sign(*, timestamp: int, canonical: str, service: str = SERVICE) -> str:
    """The string signed for a request made at ``timestamp``."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{_date(timestamp)}/{service}/tc3_request\n{digest}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signature(*, secret_key: str, timestamp: int, to_sign: str, service: str = SERVICE) -> str:
    """hex(HMAC-SHA256) of ``to_sign`` with the key derived from the SecretKey and the date."""
    key = _hmac(("TC3" + secret_key).encode("utf-8"), _date(timestamp))
    key = _hmac(_hmac(key, service), "tc3_request")
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    *, secret_id: str, secret_key: str, timestamp: int, headers: Mapping[str, str], payload: bytes
) -> str:
    """The ``Authorization`` header of a ``SendSms`` request."""
    to_sign = string_to_sign(
        timestamp=timestamp, canonical=canonical_request(headers=headers, payload=payload)
    )
    sig = signature(secret_key=secret_key, timestamp=timestamp, to_sign=to_sign)
    scope = f"{_date(timestamp)}/{SERVICE}/tc3_request"
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders={';'.join(SIGNED_HEADERS)}, Signature={sig}"
    )


class TencentSmsSender:
    """Sends an SMS outbox row as a Tencent Cloud template message."""

    def __init__(self, *, settings: SmsSettings, client: httpx.AsyncClient, clock: Clock) -> None:
        self._settings = settings
        self._client = client
        self._clock = clock
        self._url = settings.base_url + "/"
        self._host = host_of(self._url)

    async def send(
        self,
        *,
        idempotency_key: str,
        group_id: str | None,
        user_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        """Deliver one SMS; raises :class:`SendError` (``retryable`` as the answer says)."""
        phone = recipient(user_id, payload)
        kind, template_id, values = template_params(self._settings, payload)
        request: dict[str, Any] = {
            "PhoneNumberSet": [e164(phone)],
            "SmsSdkAppId": self._settings.app_id or "",
            "SignName": self._settings.sign_name or "",
            "TemplateId": template_id,
            # Positional: {1}, {2}, … (the settings made sure the keys are 1..n).
            "TemplateParamSet": [values[k] for k in sorted(values, key=int)],
            # Echoed in delivery receipts: ties a receipt to the outbox row.
            "SessionContext": idempotency_key,
        }
        body = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Host": self._host,
            "Content-Type": CONTENT_TYPE,
            "X-TC-Action": ACTION,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self._settings.region,
        }
        headers["Authorization"] = authorization(
            secret_id=self._settings.access_key_id or "",
            secret_key=secret_value(self._settings.access_key_secret),
            timestamp=timestamp,
            headers=headers,
            payload=body,
        )
        response = await post(
            self._client,
            self._url,
            content=body,
            headers=headers,
            timeout_s=self._settings.timeout_s,
        )
        serial = _outcome(response, kind)
        log.debug(
            "sms to %s [%s] accepted by tencent (SerialNo %s)",
            mask_phone(phone),
            idempotency_key,
            safe_text(serial),
        )


def _reason(code: str, message: Any, kind: str, request_id: Any) -> str:
    hint = _HINTS.get(code) or _TEMPLATE_CODES.get(code, "").format(kind=kind)
    reason = f"tencent {code}: {hint or safe_text(message)}"
    if isinstance(request_id, str) and request_id:
        reason += f" (RequestId {request_id[:64]})"
    return reason


def _retryable(code: str) -> bool:
    return code in _RETRYABLE or code.startswith(_RETRYABLE_PREFIXES)


def _outcome(response: httpx.Response, kind: str) -> str:
    """The SerialNo when the gateway took the message, else a :class:`SendError`."""
    status = response.status_code
    answer = (json_body(response) or {}).get("Response")
    if status < 200 or status >= 300 or not isinstance(answer, dict):
        retryable = status == 429 or status >= 500 or 200 <= status < 300
        raise SendError(f"tencent HTTP {status} without a readable answer", retryable=retryable)
    request_id = answer.get("RequestId")
    error = answer.get("Error")
    if isinstance(error, dict):
        code = str(error.get("Code") or "UnknownError")
        raise SendError(
            _reason(code, error.get("Message"), kind, request_id), retryable=_retryable(code)
        )
    statuses = answer.get("SendStatusSet")
    first = statuses[0] if isinstance(statuses, list) and statuses else None
    if not isinstance(first, dict):
        raise SendError("tencent answered without a SendStatusSet", retryable=True)
    code = str(first.get("Code") or "")
    if code == "Ok":
        return str(first.get("SerialNo") or "")
    raise SendError(
        _reason(code, first.get("Message"), kind, request_id), retryable=_retryable(code)
    )
