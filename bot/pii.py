"""Personal data at rest: AES-GCM encryption, keyed look-up hashes, masking for display.

Ciphertext layout: ``b"\\x01" + key_id(4) + nonce(12) + AES-GCM(ciphertext+tag)``. The key id
lets old rows be read after ``lianxin keys rotate`` has installed a new current key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any, overload

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
# What replaces a resident's channel id once they have cut the link (註銷實名). No channel's ids
# contain ":" (wxids, OpenIDs and WeCom user ids are letters, digits, "_-@."), and the
# channels refuse inbound ids with this prefix, so a pseudonym never matches a real sender.
PSEUDONYM_PREFIX = "anon:"


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"lianxin-key-id" + key).digest()[:4]


class PiiCipher:
    """Encrypts personal data with the current key; decrypts with any known key."""

    def __init__(self, current: bytes, previous: list[bytes] | None = None) -> None:
        if len(current) != 32:
            raise ValueError("PII key must be 32 bytes")
        self._current = current
        self._current_id = _key_id(current)
        self._keys = {_key_id(k): AESGCM(k) for k in [*(previous or []), current]}
        # Look-up hashes use a key derived from the PII key, never the key itself.
        self._hash_key = hmac.new(current, b"lianxin-lookup-hash", hashlib.sha256).digest()

    @overload
    def encrypt(self, plaintext: str) -> bytes: ...
    @overload
    def encrypt(self, plaintext: None) -> None: ...
    @overload
    def encrypt(self, plaintext: str | None) -> bytes | None: ...
    def encrypt(self, plaintext: str | None) -> bytes | None:
        """Encrypt text; ``None`` stays ``None``."""
        if plaintext is None:
            return None
        nonce = os.urandom(12)
        sealed = self._keys[self._current_id].encrypt(nonce, plaintext.encode("utf-8"), None)
        return _VERSION + self._current_id + nonce + sealed

    @overload
    def decrypt(self, blob: bytes) -> str: ...
    @overload
    def decrypt(self, blob: None) -> None: ...
    @overload
    def decrypt(self, blob: bytes | None) -> str | None: ...
    def decrypt(self, blob: bytes | None) -> str | None:
        """Decrypt what :meth:`encrypt` produced, with whichever known key made it."""
        if blob is None:
            return None
        blob = bytes(blob)
        if blob[:1] != _VERSION or len(blob) < 1 + 4 + 12 + 16:
            raise ValueError("not a Lianxin ciphertext")
        aes = self._keys.get(blob[1:5])
        if aes is None:
            raise ValueError("ciphertext made with an unknown key")
        return aes.decrypt(blob[5:17], blob[17:], None).decode("utf-8")

    def encrypt_json(self, value: Any) -> bytes:
        """Encrypt a JSON-serialisable value."""
        return self.encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def decrypt_json(self, blob: bytes | None) -> Any:
        """Inverse of :meth:`encrypt_json`."""
        text = self.decrypt(blob)
        return None if text is None else json.loads(text)

    def knows(self, key_id: bytes) -> bool:
        """Whether one of the configured keys has the id stored in a ciphertext (bytes 1–4)."""
        return bytes(key_id) in self._keys

    def is_current(self, blob: bytes) -> bool:
        """Whether a ciphertext was made with the current key."""
        return bytes(blob)[1:5] == self._current_id

    def lookup_hash(self, value: str) -> str:
        """A keyed hash for equality look-ups (phone → binding) without storing the value."""
        return hmac.new(self._hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def pseudonym(self, channel: str, member_id: int, sender_id: str) -> str:
        """What replaces ``sender_id`` when a resident cuts the link: ``anon:`` and 32 hex
        digits of a keyed hash, so that without the key nobody can test a known id against it.

        The member id is hashed too: a resident who binds and deletes twice leaves two member
        rows, and ``(channel, sender_id)`` is unique."""
        digest = self.lookup_hash(f"pseudonym:{channel}:{member_id}:{sender_id}")
        return PSEUDONYM_PREFIX + digest[:32]


def is_pseudonym(value: str | None) -> bool:
    """Whether a stored sender id is a pseudonym (the resident can no longer be reached)."""
    return value is not None and value.startswith(PSEUDONYM_PREFIX)


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``."""
    digits = phone.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_name(name: str) -> str:
    """``楊某某`` → ``楊**``; Latin names keep their first letter."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * max(1, len(name) - 1)
