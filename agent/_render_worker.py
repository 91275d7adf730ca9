"""The drawing process (see ``_render``): read jobs from stdin, draw, answer on stdout.

Each job is a length-prefixed pickle of ``(function, kwargs)`` from the training
process that started this one (through a private pipe). An empty frame, or the
end of the input, means quit. Each job gets one line back: ``ok`` or the error.

It quits with ``os._exit``: every file it writes is complete when its job is
answered, and an orderly shutdown (the interpreter tearing down numpy and
matplotlib) took 130 to 180 ms that the training process spent waiting at exit.
"""

import os
import struct
import sys


def main() -> None:
    import pickle

    from autologagent import _render

    header = struct.Struct("<I")
    source = sys.stdin.buffer
    answers = sys.stdout
    while True:
        raw = source.read(header.size)
        if len(raw) < header.size:
            return
        (size,) = header.unpack(raw)
        if size == 0:
            return
        function, kwargs = pickle.loads(source.read(size))
        try:
            _render.call(function, kwargs)
            answers.write("ok\n")
        except OSError as exc:  # the store cannot be written: the parent warns once,
            # naming it an OSError itself
            answers.write(f"store {exc}".replace("\n", " ") + "\n")
        except Exception as exc:
            answers.write(f"{function}: {type(exc).__name__}: {exc}".replace("\n", " ") + "\n")
        try:
            answers.flush()
        except OSError:  # the training process is gone: nobody to answer
            return


def _quit(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # the training process is gone
            pass
    os._exit(status)


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        import traceback

        traceback.print_exc()
        _quit(1)
    _quit(0)
