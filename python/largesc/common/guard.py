#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""One guard for the message handlers of every Python block.

An exception escaping a Python message handler ends that block's message
thread for good (every later message is lost and tb.wait() never returns).
Each Python block therefore registers its handlers through Guard.install
(Guard.wrap plus the gateway's registration): an
exception is caught, counted under the block's name and a reason
("<port>: <ExceptionType>"), logged at WARNING level, the block's on_error
callback produces the block's documented malformed output (or nothing: the
message is dropped), and the block goes on with the next message.

Input the block itself rejects (malformed frames, out-of-range feedback, ...)
goes through Guard.note with a stable reason, so that it is counted and
logged the same way.

Logging is rate-limited per reason: the first occurrence and then every
LOG_EVERY-th one (1, 1001, 2001, ...) are logged, each line saying how many
times the reason has been seen. Counters: Guard.counts() -> {reason: n},
Guard.total(), Guard.logged() (lines written)."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    import pmt

    class _Logger(Protocol):
        """What Guard needs of a logger (gr.logger has it)."""

        def warn(self, text: str) -> object: ...

    _Handler = Callable[[pmt.pmt_base], object]
    _ErrorHandler = Callable[[pmt.pmt_base, Exception], object]

LOG_EVERY = 1000
_DETAIL_MAX = 200


class Guard:
    block_name: str
    _counts: collections.Counter[str]

    def __init__(self, block_name: str, logger: _Logger | None = None) -> None:
        self.block_name = block_name
        if logger is None:
            from gnuradio import gr
            logger = gr.logger(block_name)
        self._logger = logger
        self._counts = collections.Counter()
        self._logged = 0
        self._lock = threading.Lock()

    def log(self, text: str) -> None:
        """Writes one WARNING line (tests may replace this attribute)."""
        self._logger.warn(text)

    def note(self, reason: str, detail: object = "") -> int:
        """Counts one rejected / failed message under `reason`; logs the
        first and every LOG_EVERY-th of each reason at WARNING level."""
        with self._lock:
            self._counts[reason] += 1
            n = self._counts[reason]
            emit = n % LOG_EVERY == 1 or LOG_EVERY == 1
            if emit:
                self._logged += 1
        if emit:
            d = str(detail)
            if len(d) > _DETAIL_MAX:
                d = d[:_DETAIL_MAX] + "..."
            try:
                self.log(f"{self.block_name}: {reason}{': ' + d if d else ''} "
                         f"({n} so far; logged the first time and every {LOG_EVERY}th)")
            except Exception:  # noqa: BLE001 - logging must never kill a handler
                pass
        return n

    def wrap(self, handler: _Handler, port: str, on_error: _ErrorHandler | None = None) -> Callable[[pmt.pmt_base], None]:
        """A message handler that never raises: handler(msg); on an exception,
        note(f"{port}: {type}") and on_error(msg, exc) (itself guarded)."""
        def guarded(msg: pmt.pmt_base) -> None:
            try:
                handler(msg)
            except Exception as e:  # noqa: BLE001 - the whole point
                self.note(f"{port}: {type(e).__name__}", e)
                if on_error is not None:
                    try:
                        on_error(msg, e)
                    except Exception as e2:  # noqa: BLE001
                        self.note(f"{port}: error output failed: {type(e2).__name__}", e2)
        guarded.__name__ = f"_guarded_{port}"
        return guarded

    def install(self, block: Any, port: str, handler: _Handler,
                on_error: _ErrorHandler | None = None) -> Callable[[pmt.pmt_base], None]:
        """Registers wrap(handler, port, on_error) as `block`'s handler of the
        message input `port` (a string). GNU Radio's Python gateway calls a
        handler by its attribute name on the block, so the wrapper is also
        stored as the attribute `_guarded_<port>`."""
        import pmt
        h = self.wrap(handler, port, on_error)
        setattr(block, h.__name__, h)
        block.set_msg_handler(pmt.intern(port), h)
        return h

    def counts(self) -> dict[str, int]:
        """{reason: count} of every rejected or failed message so far."""
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def logged(self) -> int:
        """Number of warning lines written so far."""
        return self._logged
