"""Writing files atomically: a crash mid-write never leaves a half-written file at ``path``."""

import os
import tempfile


def atomic_write(path, write):
    """Call ``write(f)`` on a temporary file beside ``path``, flush it to disk, then rename it
    over ``path``. The file gets the permissions a plain ``open`` would give it (mkstemp's
    are owner-only). Returns ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
