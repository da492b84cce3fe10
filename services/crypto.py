"""Encryption of secrets at rest: AES-256-GCM under a key id, several keys, newest first."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.errors import InvalidInput

_VERSION = "v1"


@dataclass(frozen=True)
class Keyring:
    """Named 256-bit keys; the first encrypts, all of them decrypt."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Build a keyring from ``kid:base64key,kid2:base64key`` (newest first)."""
        keys: list[tuple[str, bytes]] = []
        for item in filter(None, (part.strip() for part in spec.split(","))):
            kid, sep, encoded = item.partition(":")
            if not sep or not kid.isalnum():
                raise InvalidInput("ENCRYPTION_KEYS must look like 'kid:base64key,...'")
            try:
                key = base64.b64decode(encoded, validate=True)
            except ValueError as exc:
                raise InvalidInput(f"ENCRYPTION_KEYS key '{kid}' is not valid base64") from exc
            if len(key) != 32:
                raise InvalidInput(f"ENCRYPTION_KEYS key '{kid}' must be 32 bytes (256 bits)")
            keys.append((kid, key))
        if not keys:
            raise InvalidInput("ENCRYPTION_KEYS holds no key")
        return cls(tuple(keys))

    @staticmethod
    def generate_spec(kid: str = "k1") -> str:
        """Return a new ``kid:base64key`` item for configuration."""
        return f"{kid}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"

    @property
    def current_kid(self) -> str:
        return self.keys[0][0]

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Encrypt text; ``context`` (e.g. the column) is bound as associated data."""
        kid, key = self.keys[0]
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}:{kid}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        """Decrypt a value made by :meth:`encrypt` under any configured key."""
        version, kid, payload = self._split(token)
        key = dict(self.keys).get(kid)
        if key is None:
            raise InvalidInput(f"no configured encryption key has id '{kid}'")
        raw = base64.b64decode(payload)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise InvalidInput("an encrypted value failed its integrity check") from exc

    def key_id_of(self, token: str) -> str:
        """Return the key id a value was encrypted under."""
        return self._split(token)[1]

    @staticmethod
    def _split(token: str) -> tuple[str, str, str]:
        parts = token.split(":", 2)
        if len(parts) != 3 or parts[0] != _VERSION:
            raise InvalidInput("not an encrypted value of this application")
        return parts[0], parts[1], parts[2]


_keyring: Keyring | None = None


def configure(spec: str) -> Keyring:
    """Set the process-wide keyring from configuration."""
    global _keyring
    _keyring = Keyring.parse(spec)
    return _keyring


def keyring() -> Keyring:
    """Return the configured keyring."""
    if _keyring is None:
        raise RuntimeError("encryption keys are not configured: call services.crypto.configure()")
    return _keyring
