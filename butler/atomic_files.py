"""Writing files atomically: a temporary file in the target's directory, then a rename.

A reader never sees a half-written file, and a failure leaves neither the file nor the temporary.
Temporary files are created private (mode 0600); the result gets the mode a plain ``open`` would
give it under the current umask, so other users of a shared repository can read it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_output", "default_file_mode", "write_text_atomically"]


def default_file_mode() -> int:
    """The permission bits ``open(path, "w")`` would give a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_output(path: str | Path, *, fsync: bool = False) -> Iterator[IO[bytes]]:
    """A binary stream whose content replaces ``path`` when the block ends without an exception."""
    target = Path(path)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, default_file_mode())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    with atomic_output(path) as stream:
        stream.write(text.encode("utf-8"))
