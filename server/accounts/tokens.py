"""Signed, expiring API bearer tokens (itsdangerous). Nothing is stored: a token names the
user and the user's ``auth_version``, so a password reset or a disable revokes every token."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class TokenSigner:
    def __init__(self, secret_key: str, max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="giaoban.api-token")
        self.max_age = max_age

    def issue(self, user_id: int, auth_version: int) -> str:
        return self._serializer.dumps([user_id, auth_version])

    def read(self, token: str) -> tuple[int, int] | None:
        """``(user_id, auth_version)``, or None for a forged, malformed or expired token."""
        try:
            value = self._serializer.loads(token, max_age=self.max_age)
        except (BadSignature, SignatureExpired):
            return None
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            return value[0], value[1]
        return None
