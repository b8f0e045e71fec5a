"""Writing files atomically: a crash mid-write never leaves a half-written file at ``path``.

The new contents go to a temporary file beside the target, are flushed to disk, then renamed over
it, so a reader sees the old file or the new one, never a mix. What the user had stays theirs:

- a symbolic link stays a link, and the file it points to is the one replaced;
- a file that exists keeps its permission bits (a checkpoint made private stays private); a new
  file gets what a plain ``open`` would give it;
- the temporary file is named after the target and this process, ``.NAME.PID.tmp-XXXX``; one
  left behind by a process that was killed mid-write is removed by the next write to the target.
"""

import glob
import os
import tempfile


def atomic_write(path, write):
    """Call ``write(f)`` on a temporary file beside ``path``, flush it to disk, then rename it
    over ``path``. Returns ``path``. An ``OSError`` names ``path``, not the temporary file."""
    path = os.fspath(path)
    target = os.path.realpath(path)                 # through symlinks: replace what they name
    folder, name = os.path.split(target)
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError as e:
        raise _naming(e, path) from None
    _remove_stale(folder, name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.tmp-", dir=folder)
    except OSError as e:
        raise _naming(e, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise _naming(e, path) from None
        raise
    return path


def _naming(error, path):
    """The same kind of OSError, its message naming the file the caller asked for."""
    return type(error)(error.errno, f"cannot write {path!r}: {error.strerror}", path)


def _remove_stale(folder, name):
    """Remove the temporary files of earlier writes to ``name`` whose process is gone."""
    for tmp in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp-*")):
        pid = os.path.basename(tmp)[len(name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                os.remove(tmp)
            except OSError:
                pass                                  # another process cleaned it up first


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                           # someone else's process: alive
        return True
    return True
