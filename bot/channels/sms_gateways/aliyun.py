"""Alibaba Cloud SMS (dysmsapi ``SendSms``, API version 2017-05-25), signed with ACS3-HMAC-SHA256.

The V3 signature ("V3版本请求体&签名机制"), not the RPC V2 HMAC-SHA1 one: Alibaba lists V2 as
discontinued, and V2's SignatureDoesNotMatch answer quotes the whole string it signed, which
would hold the resident's number and the code.

A request is ``POST {base}/?{canonical query}`` with an empty body; the business parameters
(PhoneNumbers, SignName, TemplateCode, TemplateParam, OutId) ride in the query, the action and
version in ``x-acs-*`` headers:

- CanonicalQueryString: parameters sorted by name, names and values percent-encoded per
  RFC 3986 (UTF-8; only ``A–Z a–z 0–9 - _ . ~`` stay as they are; space is ``%20``).
- CanonicalHeaders: ``host`` and every ``x-acs-*`` header, names lower-case and sorted, each
  ``name:value\\n`` with the value trimmed; SignedHeaders: the names joined with ``;``.
- CanonicalRequest: ``METHOD\\nURI\\nQUERY\\nHEADERS\\nSIGNED\\nhex(sha256(body))``
  (``x-acs-content-sha256`` carries the same hash).
- StringToSign: ``ACS3-HMAC-SHA256\\n`` + hex(sha256(CanonicalRequest)).
- Authorization: ``ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<…>,
  Signature=<hex(HMAC-SHA256(AccessKeySecret, StringToSign))>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx

from bot.channels.sms_gateways.common import host_of, json_body, post, safe_text, template_params
from bot.clock import Clock
from bot.messages import SendError
from bot.pii import mask_phone
from bot.settings import SmsSettings, secret_value
from bot.sms_templates import recipient

log = logging.getLogger("lianxin.sms")

ALGORITHM = "ACS3-HMAC-SHA256"
ACTION = "SendSms"
VERSION = "2017-05-25"

# Answers worth another try later: throttling, the per-number frequency limit, the gateway's
# own failures, and a nonce it believes it has seen (the next try has a new one).
_RETRYABLE = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "isp.SYSTEM_ERROR",
    "SignatureNonceUsed",
    "ServiceUnavailable",
    "InternalError",
    "UnknownError",
}

_SECRET_HINT = "the AccessKey secret does not match (check LIANXIN__SMS__ACCESS_KEY_SECRET)"
_HINTS = {
    "SignatureDoesNotMatch": _SECRET_HINT,
    "IncompleteSignature": _SECRET_HINT,
    "InvalidAccessKeyId.NotFound": "unknown AccessKey ID (check sms.access_key_id)",
    "InvalidAccessKeyId.Inactive": "the AccessKey is disabled",
    "InvalidTimeStamp.Expired": "the gateway finds our clock off (check the server's time)",
    "isv.MOBILE_NUMBER_ILLEGAL": "the gateway does not accept this number",
    "isv.BUSINESS_LIMIT_CONTROL": "the gateway's per-number frequency limit",
    "isv.AMOUNT_NOT_ENOUGH": "the account has no balance left",
    "isv.OUT_OF_SERVICE": "the account is suspended (no balance)",
    "isv.DAY_LIMIT_CONTROL": "the account's daily sending cap is reached",
    "isv.MONTH_LIMIT_CONTROL": "the account's monthly sending cap is reached",
    "isv.SMS_SIGNATURE_ILLEGAL": "signature not approved (check sms.sign_name)",
    "isv.SMS_SIGN_ILLEGAL": "signature not usable (check sms.sign_name)",
    "isp.RAM_PERMISSION_DENY": "the AccessKey's RAM user may not send SMS",
}
# Template problems name the template of the message's kind.
_TEMPLATE_CODES = {
    "isv.SMS_TEMPLATE_ILLEGAL": "template not approved or unknown (check sms.templates.{kind}.id)",
    "isv.TEMPLATE_MISSING_PARAMETERS": "the template wants other parameters "
    "(check sms.templates.{kind}.params)",
    "isv.TEMPLATE_PARAMS_ILLEGAL": "a parameter value breaks the template's rules "
    "(check sms.templates.{kind}.params)",
    "isv.INVALID_JSON_PARAM": "TemplateParam was refused (check sms.templates.{kind}.params)",
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": "signature and template types do not match "
    "(check sms.sign_name and sms.templates.{kind}.id)",
}


def percent_encode(text: str) -> str:
    """RFC 3986 percent-encoding of UTF-8: everything but ``A–Z a–z 0–9 - _ . ~``."""
    return quote(text, safe="~", encoding="utf-8")


def canonical_query(params: Mapping[str, str]) -> str:
    """The query string both signed and sent: sorted by name, names and values encoded."""
    return "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params))


def authorization(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    key_id: str,
    secret: str,
) -> str:
    """The ``Authorization`` header for a request whose ``host`` and ``x-acs-*`` headers
    (``x-acs-content-sha256`` among them) are ``headers``, every one of which is signed."""
    names = sorted(name.lower() for name in headers)
    lowered = {name.lower(): value for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name].strip()}\n" for name in names)
    signed = ";".join(names)
    canonical_request = "\n".join(
        [
            method,
            quote(path or "/", safe="/~", encoding="utf-8"),
            query,
            canonical_headers,
            signed,
            lowered["x-acs-content-sha256"],
        ]
    )
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{digest}"
    signature = hmac.new(
        secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return f"{ALGORITHM} Credential={key_id},SignedHeaders={signed},Signature={signature}"


class AliyunSmsSender:
    """Sends an SMS outbox row as an Alibaba Cloud template message."""

    def __init__(self, *, settings: SmsSettings, client: httpx.AsyncClient, clock: Clock) -> None:
        self._settings = settings
        self._client = client
        self._clock = clock
        self._url = settings.base_url + "/"
        self._host = host_of(self._url)
        self._path = httpx.URL(self._url).path

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
        params = {
            "PhoneNumbers": phone,
            "SignName": self._settings.sign_name or "",
            "TemplateCode": template_id,
            # Shown in delivery receipts: ties a receipt to the outbox row.
            "OutId": idempotency_key,
        }
        if values:
            params["TemplateParam"] = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
        query = canonical_query(params)
        body = b""
        headers = {
            "host": self._host,
            "x-acs-action": ACTION,
            "x-acs-version": VERSION,
            "x-acs-date": self._clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": secrets.token_hex(16),  # new on every try
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        }
        headers["Authorization"] = authorization(
            method="POST",
            path=self._path,
            query=query,
            headers=headers,
            key_id=self._settings.access_key_id or "",
            secret=secret_value(self._settings.access_key_secret),
        )
        response = await post(
            self._client,
            f"{self._url}?{query}",
            content=body,
            headers=headers,
            timeout_s=self._settings.timeout_s,
        )
        answer = _outcome(response, kind)
        log.debug(
            "sms to %s [%s] accepted by aliyun (BizId %s)",
            mask_phone(phone),
            idempotency_key,
            safe_text(answer.get("BizId")),
        )


def _outcome(response: httpx.Response, kind: str) -> dict[str, Any]:
    """The answer when the gateway took the message, else a :class:`SendError`."""
    body = json_body(response) or {}
    status = response.status_code
    code = body.get("Code")
    if 200 <= status < 300 and code == "OK":
        return body
    if not isinstance(code, str) or not code:
        # No answer we can read (a proxy's page, a gateway outage): only a server-side
        # failure or a garbled 2xx is worth another try.
        retryable = status == 429 or status >= 500 or 200 <= status < 300
        raise SendError(f"aliyun HTTP {status} without an error code", retryable=retryable)
    hint = _HINTS.get(code) or _TEMPLATE_CODES.get(code, "").format(kind=kind)
    reason = f"aliyun {code}: {hint or safe_text(body.get('Message'))}"
    if not 200 <= status < 300:
        reason += f" (HTTP {status})"
    request_id = body.get("RequestId")
    if isinstance(request_id, str) and request_id:
        reason += f" (RequestId {request_id[:64]})"
    retryable = code in _RETRYABLE or code.startswith("Throttling") or status >= 500
    raise SendError(reason, retryable=retryable)
