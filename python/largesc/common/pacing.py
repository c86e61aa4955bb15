#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Feeding PDUs into a running flowgraph without overrunning message queues.

GNU Radio message ports have no backpressure: past max_messages (8192 by
default) queued messages a port drops new ones with only a log line, which in a
simulation looks exactly like channel loss. post_paced() keeps at most
`window` messages in flight by watching a counter of messages consumed
downstream (any callable, e.g. a block's packets_in getter).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pmt

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

DEFAULT_WINDOW = 2048  # well under the 8192 default queue limit


class PacingTimeout(RuntimeError):
    pass


def post_paced(block: Any, port: str, msgs: Iterable[pmt.pmt_base], consumed: Callable[[], int],
               window: int = DEFAULT_WINDOW, timeout: float = 30.0,
               progress: Callable[[int], object] | None = None) -> int:
    """Posts each message of `msgs` into `block`'s input `port`.

    consumed: callable returning how many of the posted messages have been taken
    off the queue so far. Never more than `window` are waiting. Returns the
    number posted. Raises PacingTimeout if the consumer stalls for `timeout` s.
    progress: optional callable(n_posted) called after each window.
    """
    if window < 1:
        raise ValueError("window must be >= 1")
    bb = block.to_basic_block() if hasattr(block, "to_basic_block") else block
    port_sym = pmt.intern(port)
    base = consumed()
    posted = 0
    for m in msgs:
        if posted - (consumed() - base) >= window:
            wait_for(lambda: posted - (consumed() - base) < window, timeout,
                     f"consumer stalled with {posted - (consumed() - base)} messages in flight")
            if progress:
                progress(posted)
        bb._post(port_sym, m)
        posted += 1
    return posted


def wait_for(cond: Callable[[], object], timeout: float = 30.0, what: str = "condition not reached",
             poll: float = 0.0005, progress: Callable[[], object] | None = None) -> None:
    """Polls cond() until it is true; raises PacingTimeout after timeout seconds
    without it becoming true.

    progress: optional callable returning any comparable value (e.g. a tuple of
    counters). Given one, timeout is a stall limit: the clock restarts whenever
    progress() changes, so a slow but moving pipeline is waited for and a stuck
    one fails after `timeout` seconds of standing still. The message then
    names the last progress value."""
    deadline = time.monotonic() + timeout
    last = progress() if progress else None
    next_look = 0.0
    while not cond():
        now = time.monotonic()
        if progress and now >= next_look:     # counters are looked at 4 times a second
            next_look = now + 0.25
            cur = progress()
            if cur != last:
                last, deadline = cur, now + timeout
        if now > deadline:
            raise PacingTimeout(what if progress is None
                                else f"{what} (no progress for {timeout:g} s at {last})")
        time.sleep(poll)
