"""Errors the SFU reports back to the web process, with a code the signalling passes on."""

from __future__ import annotations


class MediaError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def bad_sdp(message: str) -> MediaError:
    return MediaError("bad_sdp", message)
