"""Solver work in a second process, beside the main one (the machines have 2 cores).

OR-Tools' min-cost flow holds Python's global interpreter lock, so a thread beside it gains nothing
(measured: 0.90 s + 1.06 s alone, 2.08 s together); a forked process does. The child inherits the
parent's memory (copy on write: nothing is pickled on the way in), runs one function and sends its result
back through a pipe. Where ``fork`` is not available (Windows, or turned off) the function runs in this
process when its result is asked for: the same result, later. If the child fails (killed, out of memory,
an exception) the function runs again here, so the work is never lost and a genuine error is raised here
as itself; ``failure`` keeps what happened to the child.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _child(send: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:  # pragma: no cover - child
    c0 = time.process_time()
    try:
        result = fn(*args)
    except BaseException:  # noqa: BLE001 - every failure goes back to the parent, which raises it
        send.send(("error", traceback.format_exc(), time.process_time() - c0))
    else:
        send.send(("ok", result, time.process_time() - c0))
    send.close()


class Background(Generic[T]):
    """``fn(*args)`` in a forked process, started now; :meth:`result` waits for it. ``fork=False`` (or no
    ``fork`` on this platform) runs it in this process when :meth:`result` is called, as does a failure of
    the child. ``cpu_seconds``: the processor time it took (after :meth:`result`)."""

    def __init__(self, fn: Callable[..., T], *args: Any, fork: bool = True) -> None:
        self._fn, self._args = fn, args
        self._proc: Any = None
        self.cpu_seconds = 0.0
        self.failure: str | None = None  # what happened to the child, when it failed
        if fork and "fork" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("fork")
            self._recv, send = ctx.Pipe(duplex=False)
            # daemonic: ended, not waited for, if this process exits without asking for the result
            proc = ctx.Process(target=_child, args=(send, fn, args), name="frontline-solver", daemon=True)
            try:
                proc.start()
            except (AssertionError, OSError):  # a daemonic process may not have children; no fork left
                self._recv.close()
            else:
                self._proc = proc
            send.close()

    @property
    def forked(self) -> bool:
        return self._proc is not None

    def result(self) -> T:
        """The function's result, from the child; if the child failed, from running the function here."""
        if self._proc is None:
            return self._here()
        try:
            status, payload, cpu = self._recv.recv()
        except EOFError:  # the child ended without a word (killed, out of memory)
            self._proc.join()
            status, payload, cpu = "error", f"ended with code {self._proc.exitcode} and no result", 0.0
        except BaseException:  # interrupted while waiting: the child goes too
            self._proc.terminate()
            raise
        finally:
            self._recv.close()
            self._proc.join()
        if status == "ok":
            self.cpu_seconds = cpu
            return payload
        self.failure = payload
        return self._here()

    def _here(self) -> T:
        c0 = time.process_time()
        out = self._fn(*self._args)
        self.cpu_seconds = time.process_time() - c0
        return out
