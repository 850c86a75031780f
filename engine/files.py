"""Atomic file output, shared by every writer (sweep results, forecasts and plots,
calibration files, user catalogs).

A writer fills a temporary file in the target's directory, which then replaces the
target in one ``os.replace`` (atomic on POSIX and Windows within one file system), so
a failure or an interrupt never leaves a partial output file, and the temporary file
is removed. The temporary file is created with mode 0o666 filtered by the process
umask, like any file ``open()`` creates (``tempfile.mkstemp`` would make it 0o600,
unreadable to the user's group), and keeps the target's suffix, so writers that infer
the format from it (matplotlib's ``savefig``) see the right one.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write"]


def atomic_write(path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file, then move it onto ``path``.

    Raises ``ValueError`` naming the directory when it does not exist, before
    anything is written.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise ValueError(f"output directory does not exist: {str(directory)!r}")
    while True:
        tmp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp{target.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # 48 random bits named an existing file: draw again
            continue
    os.close(fd)
    try:
        write(str(tmp))
        os.replace(tmp, target)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
