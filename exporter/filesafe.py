"""Reading a configuration file that may be hostile or broken without ever hanging on it.

A path can name a FIFO, a device or a file on a mount that no longer answers, and a file can be
far larger than any configuration. :func:`read_bounded` reads only regular files, at most
``limit`` bytes, and gives up after ``timeout`` seconds. The blocking calls run on a daemon thread
of their own: a read that never returns leaves that thread behind, but never the caller, and
never holds up the process's exit (the event loop's default executor would: ``asyncio.run``
waits for its threads).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import functools
import os
import stat
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "MAX_FILE_BYTES",
    "READ_TIMEOUT",
    "UnreadableFile",
    "read_bounded",
    "read_regular_file",
    "run_in_daemon_thread",
]

# 1 MiB, as much as a Kubernetes ConfigMap holds: a static list of 10,000 instances takes about
# 400 KiB. Parsing is pure Python and slow (a dense megabyte takes seconds and hundreds of MB);
# larger fleets belong in `discovery:`.
MAX_FILE_BYTES = 1024 * 1024
READ_TIMEOUT = 10.0  # seconds; a local file takes milliseconds

_T = TypeVar("_T")

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class UnreadableFile(Exception):
    """The file cannot be used; ``reason`` is one line, worded to follow ``path: ``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def size_text(size: int) -> str:
    """``1 MiB``, ``64 KiB`` or ``1,234 bytes``."""
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size:,} bytes"


def read_regular_file(path: str, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, refused (UnreadableFile) if it is more than
    ``limit`` bytes or not a regular file. Blocks as long as the file system does."""
    too_large = f"over the {size_text(limit)} limit for configuration files"
    try:
        # O_NONBLOCK: opening a FIFO for reading must not wait for a writer. It changes nothing
        # for a regular file.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFile(f"cannot read: {os.strerror(errno.EISDIR)}")
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "special")
            raise UnreadableFile(f"cannot read: {kind}, not a regular file")
        if info.st_size > limit:
            raise UnreadableFile(f"is {info.st_size:,} bytes, {too_large}")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)  # one byte more tells a file that grew from one that fits
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnreadableFile(f"is {too_large}")
    return data


def read_bounded(
    path: str,
    limit: int = MAX_FILE_BYTES,
    timeout: float = READ_TIMEOUT,
    read: Callable[[str, int], bytes] = read_regular_file,
) -> bytes:
    """``read(path, limit)`` on a daemon thread, given up (UnreadableFile) after ``timeout``
    seconds. ``read`` is replaceable for tests."""
    future: concurrent.futures.Future[bytes] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(read(path, limit))
        except BaseException as exc:  # handed to the caller, whatever it is
            future.set_exception(exc)

    threading.Thread(target=run, name=f"read {path}", daemon=True).start()
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        raise UnreadableFile(f"cannot read: no answer within {timeout:g}s") from None


async def run_in_daemon_thread(function: Callable[[], _T], name: str) -> _T:
    """``function()`` on a daemon thread of its own, awaited. Cancelling the wait returns at
    once; the thread finishes (or not) on its own and never delays the process's exit."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[_T] = loop.create_future()

    def settle(action: Callable[[], None]) -> None:
        if not waiter.done():  # not cancelled meanwhile
            action()

    def run() -> None:
        action: Callable[[], None]
        try:
            action = functools.partial(waiter.set_result, function())
        except BaseException as exc:  # handed to the caller, whatever it is
            action = functools.partial(waiter.set_exception, exc)
        # RuntimeError: the loop has closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, action)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await waiter
