"""Work for the idle core: a forked child computes bytes while this process goes on.

After the fit, a training pod has two kinds of single-threaded work left: the model files (skops, the ONNX
conversion and its check) and the card's figures (bootstrap intervals, the data summary), which need only numpy and
the test predictions. A forked child inherits the predictions without copying them and sends its result back as
bytes. The child must not call into libraries with thread pools (libgomp, which XGBoost and LightGBM use, is not
fork-safe).

If fork is unavailable or the child fails, the work runs again in this process, so its errors are raised here as
if it had never been forked.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable

__all__ = ["Forked"]

log = logging.getLogger(__name__)


class Forked:
    """`work()` started in a forked child; `result()` waits for its bytes (once; later calls return them again).

    Used as a context manager, the child is also reaped when the parent's own work raises first.
    """

    def __init__(self, work: Callable[[], bytes], *, fork: bool = True) -> None:
        self._work = work
        self._pid: int | None = None
        self._read_fd: int | None = None
        self._value: bytes | None = None
        if fork and hasattr(os, "fork"):
            self._start()

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            log.info("fork failed (%s); the work runs in this process", exc)
            return
        if pid == 0:  # the child: never returns
            os.close(read_fd)
            code = 1
            try:
                data = self._work()
                with os.fdopen(write_fd, "wb") as out:
                    out.write(data)
                code = 0
            except BaseException:  # the parent runs the work again and raises it there
                pass
            finally:
                os._exit(code)
        os.close(write_fd)
        self._pid, self._read_fd = pid, read_fd

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pid is not None and self._read_fd is not None:
            # Nobody will read the result (the parent's own work raised): stop the child rather than wait for it.
            os.kill(self._pid, signal.SIGKILL)
            os.close(self._read_fd)
            os.waitpid(self._pid, 0)
            self._pid = self._read_fd = None

    def result(self) -> bytes:
        if self._value is not None:
            return self._value
        if self._pid is not None and self._read_fd is not None:
            with os.fdopen(self._read_fd, "rb") as pipe:
                data = pipe.read()  # before waiting: a child blocked on a full pipe would never exit
            _, status = os.waitpid(self._pid, 0)
            self._pid = self._read_fd = None
            if os.waitstatus_to_exitcode(status) == 0:
                self._value = data
                return data
            log.info("the forked work failed (status %s); running it in this process", status)
        self._value = self._work()
        return self._value
