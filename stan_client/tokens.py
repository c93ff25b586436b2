"""Unique tokens for inboxes and publish guids."""

from __future__ import annotations

import itertools
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_PREFIX_LENGTH = 16


class TokenGenerator:
    """Thread-safe source of unique tokens, cheap enough for every publish.

    A token is a random prefix (16 characters of 62, about 95 bits, drawn
    once per generator) followed by a counter in hexadecimal: unique across
    processes by the prefix and within one by the counter. pynats2 ships a
    NUID generator, but it divides with floats and loses digits once the
    sequence passes 2**53, so it is not used for guids.
    """

    def __init__(self) -> None:
        self._prefix = "".join(secrets.choice(_ALPHABET) for _ in range(_PREFIX_LENGTH))
        # next() on itertools.count is atomic under the GIL.
        self._counter = itertools.count(1)

    def next(self) -> str:
        """A new token, never returned before by any generator."""
        return f"{self._prefix}{next(self._counter):x}"

    def inbox(self) -> str:
        """A new unique subject under ``_INBOX.``."""
        return "_INBOX." + self.next()
