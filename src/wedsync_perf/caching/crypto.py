"""Key names without personal data, and sealed values for sensitive data classes.

- `KeyNamer`: every cache key names its tenant and logical key by HMAC-SHA256(secret,
  …) only, so Redis never holds an email, a name or an ID in a key name, and tenants'
  keys cannot collide. `RedisKeys` lays the names out: the tenant digest is a Redis
  Cluster hash tag, so all keys of one tenant live in one slot, which the tag scripts
  rely on.
- `Keyring`: AES-256-GCM with key rotation. The first key encrypts; every key decrypts
  (a one-byte key id leads the ciphertext), so keys rotate without a cache flush. The
  cache key name is bound in as associated data: a ciphertext moved under another key
  fails to open. The cache binds the entry's whole header too (`envelope.bound`).
- `EntrySigner`: HMAC-SHA-256 of unsealed entries, under a key derived from the cache
  secret by HKDF (so it is never the key that names entries).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wedsync_perf.errors import InvalidValue, SealError
from wedsync_perf.keys import RedisKeys

__all__ = ["MAC_BYTES", "EntrySigner", "KeyNamer", "Keyring", "SealError"]

_NONCE = 12
MAC_BYTES = 32
_MAC_INFO = b"wedsync-perf cache entry mac v1"


class KeyNamer:
    def __init__(self, secret: bytes, keys: RedisKeys) -> None:
        if len(secret) < 16:
            raise InvalidValue("len(secret)", len(secret), "at least 16 bytes")
        self._secret = secret
        self.keys = keys
        # Names are pure functions of (tenant, key): memoise the HMACs, bounded.
        self._entries: dict[tuple[str | int | None, str], str] = {}
        self._max_memo = 100_000

    def _digest(self, text: str) -> str:
        mac = hmac.new(self._secret, text.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def _tenant(self, tenant: str | int | None) -> str:
        return "shared" if tenant is None else self._digest(f"tenant:{tenant}")[:12]

    def scope(self, tenant: str | int | None) -> str:
        """The hash-tagged prefix shared by a tenant's keys and tags."""
        return self.keys.cache_scope(self._tenant(tenant))

    def entry(self, tenant: str | int | None, key: str) -> str:
        memo = self._entries.get((tenant, key))
        if memo is not None:
            return memo
        name = self.keys.cache_entry(self._tenant(tenant), self._digest(key))
        if len(self._entries) >= self._max_memo:
            self._entries.clear()
        self._entries[(tenant, key)] = name
        return name

    def tag(self, tenant: str | int | None, tag: str) -> str:
        return self.keys.cache_tag(self._tenant(tenant), self._digest("tag:" + tag))

    def lock(self, entry_key: str) -> str:
        return self.keys.cache_lock(entry_key)


class EntrySigner:
    """HMAC-SHA-256 over (what the entry is bound to, its body). The key is
    HKDF-SHA-256(secret, info="wedsync-perf cache entry mac v1"): every process that
    shares the secret shares it, and nobody who only reads key names learns it."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise InvalidValue("len(secret)", len(secret), "at least 16 bytes")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_MAC_INFO)
        self._key = hkdf.derive(secret)

    def sign(self, bound_to: bytes, body: bytes) -> bytes:
        """`MAC_BYTES` bytes. O(len(bound_to) + len(body))."""
        return hmac.digest(self._key, bound_to + body, "sha256")  # one C call: the fast path

    def verify(self, bound_to: bytes, body: bytes, mac: bytes) -> bool:
        """In constant time for a given length."""
        return hmac.compare_digest(self.sign(bound_to, body), mac)


class Keyring:
    def __init__(self, keys: Sequence[bytes]) -> None:
        """`keys[0]` encrypts; all decrypt. Each must be 32 bytes (AES-256); at most 255."""
        if not keys:
            raise InvalidValue("len(keys)", 0, "at least one key")
        if len(keys) > 255:
            raise InvalidValue("len(keys)", len(keys), "at most 255 keys")
        for i, key in enumerate(keys):
            if len(key) != 32:
                raise InvalidValue(f"len(keys[{i}])", len(key), "32 bytes (AES-256-GCM)")
        # Key ids derive from the key itself, so reordering the list keeps old data readable.
        self._by_id = {hashlib.sha256(k).digest()[0]: AESGCM(k) for k in keys}
        if len(self._by_id) != len(keys):
            raise InvalidValue(
                "keys",
                f"{len(keys)} keys, {len(self._by_id)} key ids",
                "one id per key: generate a new key",
            )
        self._current_id = hashlib.sha256(keys[0]).digest()[0]

    @staticmethod
    def generate() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def seal(self, plaintext: bytes, bound_to: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed = self._by_id[self._current_id].encrypt(nonce, plaintext, bound_to)
        return bytes([self._current_id]) + nonce + sealed

    def knows(self, blob: bytes) -> bool:
        """Whether `blob` names a key in this keyring (False: sealed with a retired
        key, or not sealed by us at all)."""
        return bool(blob) and blob[0] in self._by_id

    def open(self, blob: bytes, bound_to: bytes) -> bytes:
        if len(blob) < 1 + _NONCE + 16:
            raise SealError("sealed value too short")
        aead = self._by_id.get(blob[0])
        if aead is None:
            raise SealError("sealed with a key no longer in the keyring")
        try:
            return aead.decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], bound_to)
        except InvalidTag:
            raise SealError("sealed value failed authentication") from None
