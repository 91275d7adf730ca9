"""Room on CPython's frame stack, so that the agent's frames do not make a program churn memory.

Since 3.11 CPython keeps a thread's Python frames in chunks of 16 KiB, and frees
a chunk as soon as the frame that began it returns. A function called in a loop
whose frame happens to begin a chunk maps a fresh chunk, page-faults it in and
unmaps it again on every call. Where those edges fall depends on how deep the
program runs, and every frame the agent puts below the program's (the command
door's own, a hooked import's) moves them: importing scikit-learn under the
command door mapped and unmapped 17,600 chunks, against 1,400 under plain
python, and took 120 to 140 ms longer than plain, of which the agent's hooks
were 33 ms.

So the agent runs the program (the command door), and each outermost import of
a watched framework (the other doors), from one frame that asks for 516 KiB of
stack. CPython gives that frame a chunk of its own of 1 MiB, and every frame
called from it fits in the ~520 KiB left: no edge until a thousand frames or
so deeper, and scikit-learn's import maps two chunks instead of 17,600. The big
frame's stack is never written, so it costs address space, not memory. Python
before 3.11 allocates each frame apart and has no such edges: nothing is done.
"""

import sys
from _thread import get_ident

TYPE_CHECKING = False
if TYPE_CHECKING:  # start-up cost: no typing at run time (the finder imports this)
    from collections.abc import Callable
    from types import CodeType, TracebackType
    from typing import Any

# Stack slots of the frame that makes the room: just over half of 1 MiB, so that
# CPython's chunk for it (a power of two of at least the frame plus 1,000 slots)
# is 1 MiB and the rest of it, ~66,000 slots, holds the frames called from it.
RESERVED_SLOTS = 64_600
ENABLED = sys.implementation.name == "cpython" and sys.version_info >= (3, 11)

_inside: set[int] = set()  # the threads that run in a room now


def call_in_room(function: "Callable[..., Any]", *args: "Any") -> "Any":
    """``function(*args)`` with room on the frame stack (once per thread: nested calls
    run as they are, in the room of the outermost)."""
    ident = get_ident()
    if not ENABLED or ident in _inside:
        return function(*args)
    _inside.add(ident)
    try:
        return _call_from_a_large_frame(function, args)
    finally:
        _inside.discard(ident)


def _call_from_a_large_frame(function: "Callable[..., Any]", args: tuple) -> "Any":
    return function(*args)


if ENABLED:
    _call_from_a_large_frame.__code__ = _call_from_a_large_frame.__code__.replace(
        co_stacksize=RESERVED_SLOTS
    )

OWN_CODE = (call_in_room.__code__, _call_from_a_large_frame.__code__)


def without_frames(
    tb: "TracebackType | None", codes: "tuple[CodeType, ...]"
) -> "TracebackType | None":
    """The traceback without the entries of frames running ``codes`` (the agent's own),
    so that the user sees the traceback plain Python would show."""

    def ours(entry: "TracebackType") -> bool:
        code = entry.tb_frame.f_code
        return any(code is own for own in codes)

    while tb is not None and ours(tb):
        tb = tb.tb_next
    entry = tb
    while entry is not None:
        following = entry.tb_next
        while following is not None and ours(following):
            following = following.tb_next
        if following is not entry.tb_next:
            entry.tb_next = following
        entry = following
    return tb


def reset_after_fork() -> None:
    """In a forked child only the thread that forked lives on (perhaps in a room)."""
    ident = get_ident()
    inside = ident in _inside
    _inside.clear()
    if inside:
        _inside.add(ident)
