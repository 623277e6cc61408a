"""Signed, expiring API bearer tokens (itsdangerous) that name a server-side session.

A token carries the secret of one ``auth_sessions`` row (``server/accounts/sessions.py``): the
row decides whether it still works (logout of the token, password reset, disable, "end all
sessions", idle time). The signature stays so that a forged or expired token is refused
without a database lookup.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from server.accounts.sessions import SECRET_MAX_LENGTH


class TokenSigner:
    def __init__(self, secret_key: str, max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="giaoban.api-token")
        self.max_age = max_age

    def issue(self, session_secret: str) -> str:
        return self._serializer.dumps({"s": session_secret})

    def read(self, token: str) -> str | None:
        """The session secret a token carries, or None for a forged, malformed or expired token
        (tokens of the earlier ``[user_id, auth_version]`` form included)."""
        try:
            value = self._serializer.loads(token, max_age=self.max_age)
        except (BadSignature, SignatureExpired):
            return None
        if isinstance(value, dict) and set(value) == {"s"}:
            secret = value["s"]
            if isinstance(secret, str) and 0 < len(secret) <= SECRET_MAX_LENGTH:
                return secret
        return None
