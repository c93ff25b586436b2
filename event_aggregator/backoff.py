"""Capped exponential backoff with jitter, for reconnect loops."""

from __future__ import annotations

import random


class Backoff:
    """Delays that grow by ``multiplier`` from ``initial`` up to ``maximum``.

    Each delay is spread by up to ``jitter`` (a fraction) either way, so
    that many aggregators restarted together do not knock on a recovering
    server in step. :meth:`reset` after a success starts again from
    ``initial``.
    """

    def __init__(
        self,
        initial: float,
        maximum: float,
        multiplier: float = 2.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"need 0 < initial <= maximum, got {initial}, {maximum}")
        if multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {multiplier}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter must be within 0..1, got {jitter}")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._base = initial
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt, in seconds."""
        base = self._base
        self._base = min(self.maximum, self._base * self.multiplier)
        self.attempt += 1
        spread = base * self.jitter
        return max(0.0, base + self._rng.uniform(-spread, spread))

    def reset(self) -> None:
        """Start again from the initial delay (after a success)."""
        self._base = self.initial
        self.attempt = 0
