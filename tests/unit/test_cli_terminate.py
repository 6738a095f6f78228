"""SIGTERM ends a command as Ctrl-C does, wherever the signal finds it: where a raised exception
would be swallowed (the import system's weakref callbacks, a finalizer), the stop is asked again
a moment later instead of being lost (a command once ran on, hung, after such a SIGTERM)."""

from __future__ import annotations

import signal
import sys
import threading
import time
import weakref
from types import FrameType

import pytest

import aris3nb.cli as cli
from aris3nb.core.errors import Terminated


def _frame_in(filename: str, name: str = "job") -> FrameType:
    code = compile(f"def {name}():\n    return sys._getframe()\nframe = {name}()", filename, "exec")
    namespace: dict[str, object] = {"sys": sys}
    exec(code, namespace)  # noqa: S102 -- a frame that looks like the given code's, for the handler
    frame = namespace["frame"]
    assert isinstance(frame, FrameType)
    return frame


def test_sigterm_in_ordinary_code_raises_terminated() -> None:
    with pytest.raises(Terminated):
        cli._terminated(signal.SIGTERM, _frame_in("/srv/app/job.py"))
    with pytest.raises(Terminated):  # the import system itself lets it through
        cli._terminated(signal.SIGTERM, _frame_in("<frozen importlib._bootstrap>", "_find_and_load"))
    with pytest.raises(Terminated):
        cli._terminated(signal.SIGTERM, None)


@pytest.mark.parametrize(
    ("filename", "name"),
    [("<frozen importlib._bootstrap>", "cb"), ("x.py", "__del__")],
)
def test_sigterm_where_an_exception_would_be_swallowed_is_sent_again(
    monkeypatch: pytest.MonkeyPatch, filename: str, name: str
) -> None:
    sent: list[tuple[int, int]] = []
    again = threading.Event()

    def kill(pid: int, signum: int) -> None:
        sent.append((pid, signum))
        again.set()

    monkeypatch.setattr(cli.os, "kill", kill)
    started = time.monotonic()
    assert cli._terminated(signal.SIGTERM, _frame_in(filename, name)) is None, "nothing raised there"
    assert again.wait(5), "the signal is sent again"
    assert sent == [(cli.os.getpid(), signal.SIGTERM)]
    assert time.monotonic() - started >= cli.TERMINATE_RETRY_SEC * 0.9


def _handled_in(place: str) -> list[str]:
    """What the handler does when the signal finds the program in a function called from
    ``place``: a finalizer called by a collection (``finalize``), a ``__del__`` (``del``), or
    ordinary code (``call``)."""
    seen: list[str] = []

    def helper() -> None:  # a frame below the callback's own
        try:
            seen.append("sent again" if cli._terminated(signal.SIGTERM, sys._getframe()) is None else "?")
        except Terminated:
            seen.append("raised")

    class Held:
        def __del__(self) -> None:
            if place == "del":
                helper()

    held = Held()
    if place == "finalize":
        weakref.finalize(held, helper)
    del held  # the last reference: collected now, its finalizer and __del__ called by the interpreter
    if place == "call":
        helper()
    return seen


def test_sigterm_below_a_finalizer_or_a_del_is_sent_again_and_raised_in_ordinary_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(cli.threading, "Timer", lambda delay, kill, args: _Started(sent, args[1]))
    assert _handled_in("finalize") == ["sent again"]
    assert _handled_in("del") == ["sent again"]
    assert _handled_in("call") == ["raised"]
    assert sent == [signal.SIGTERM, signal.SIGTERM]


class _Started:
    """A timer that records the signal it would send instead of sending it."""

    def __init__(self, sent: list[int], signum: int) -> None:
        self.sent, self.signum, self.daemon = sent, signum, False

    def start(self) -> None:
        self.sent.append(self.signum)
