"""Every file and directory llmcap writes: checked before the work, written atomically.

One implementation for reports, traces, plots, calibration profiles and validation results:

- `check_output(path, field, kind)` runs before any work starts and raises a `UserError`
  naming the flag (``--out``) when the target cannot be written: it exists as the wrong kind
  (a directory where a file goes, or the reverse), a name is longer than the file system allows
  (255 bytes), it lies under ``/proc`` or ``/sys``, the nearest existing folder above it is a
  file or is not writable. Missing folders between that one and the target are created.
- `write_atomic(path, data)` writes a file through a temporary file in the same folder and
  `os.replace`, so readers see the old file or the new one, never half of one.
- `staged_dir(path, field)` yields a hidden temporary directory beside `path`; when the block
  ends without an exception its content is committed (a new directory is renamed into place in
  one step; into an existing directory each file is renamed in turn, with SIGINT/SIGTERM held
  back for those few renames), and on any exception (Ctrl-C included) it is removed.
- `exclusive(path, field)` holds a lock file beside `path`, so two processes writing the same
  target (two ``calibrate --out SAME``) give one complete result and one clear refusal.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from hwprofiles.errors import UserError

NAME_MAX = 255
"""Longest file name in bytes on Linux file systems (ext4, xfs, btrfs, tmpfs: NAME_MAX)."""
PATH_MAX = 4096
"""Longest path in bytes the Linux kernel accepts (PATH_MAX, include/uapi/linux/limits.h)."""
_PSEUDO = (Path("/proc"), Path("/sys"), Path("/dev"))
"""Kernel interfaces: never a place for a report (writes there fail or do something else)."""


def umask() -> int:
    """The process's file-mode creation mask (mkstemp/mkdtemp ignore it: 0600/0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and not p.is_symlink() and p != p.parent:
        p = p.parent
    return p


def check_output(
    path: str | os.PathLike[str], field: str, kind: Literal["file", "dir"] = "file"
) -> Path:
    """`path` as an absolute Path if llmcap can write a `kind` there; else a `UserError`.

    See the module docstring for the checks. It creates nothing, so a refused command leaves
    nothing behind.
    """
    try:
        return _check_output(path, field, kind)
    except OSError as exc:  # a folder on the way that cannot be searched, a symlink loop...
        text = os.fspath(path)
        raise UserError(field, text, f"cannot be checked ({exc.strerror or exc})") from None


def _check_output(path: str | os.PathLike[str], field: str, kind: str) -> Path:
    text = os.fspath(path)
    if not text.strip():
        raise UserError(field, text, "is empty; give a path")
    if "\0" in text:
        raise UserError(field, text, "contains a NUL byte")
    p = Path(text).expanduser().absolute()
    if len(os.fsencode(str(p))) >= PATH_MAX:
        raise UserError(field, text, f"is longer than {PATH_MAX} bytes")
    for part in p.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise UserError(field, text, f"has a name longer than {NAME_MAX} bytes")
    real = Path(os.path.realpath(p))
    for root in _PSEUDO:
        if real == root or root in real.parents:
            raise UserError(field, text, f"is under {root}, a kernel interface, not a folder")
    if p.exists():
        if kind == "file" and p.is_dir():
            raise UserError(field, text, "is a directory; give a file name")
        if kind == "dir" and not p.is_dir():
            raise UserError(field, text, "exists and is not a directory")
        if not p.is_dir() and not p.is_file():
            raise UserError(field, text, "exists and is not a regular file")
    parent = _nearest_existing(p.parent)
    if not parent.is_dir():
        raise UserError(field, text, f"cannot be created: {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(field, text, f"cannot be written: folder {str(parent)!r} is read-only")
    if kind == "dir" and p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
        raise UserError(field, text, "is a read-only directory")
    return p


def _tmp_name(path: Path, suffix: str) -> str:
    """A hidden temporary name beside `path` that fits in NAME_MAX (long names are cut)."""
    stem = os.fsencode(path.name)[: NAME_MAX - 32].decode(errors="ignore")
    return f".{stem}.{os.getpid()}{suffix}"


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`.

    Missing parent folders are created; the file gets the usual mode (0666 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_name(path, "."), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_output(path: str | os.PathLike[str], data: str | bytes, field: str) -> Path:
    """`check_output` then `write_atomic`: the one call for a file a command writes."""
    return write_atomic(check_output(path, field, "file"), data)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back for a few renames, then deliver the first that came.

    The Python handlers are swapped for one that only records the signal (a signal mask would
    not do: Python runs handlers in the main thread whichever thread the kernel picked). Only
    the main thread can set handlers; elsewhere the renames run unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])  # now, to the handler that was there before


def _merge_into(src: Path, dst: Path) -> None:
    """Move every file of `src` into `dst` (folders created, files replaced one by one)."""
    for entry in sorted(src.rglob("*")):
        target = dst / entry.relative_to(src)
        if entry.is_dir() and not entry.is_symlink():
            target.mkdir(exist_ok=True)
        else:
            os.replace(entry, target)


def commit_dir(tmp: Path, out: Path, *, replace: bool = False) -> None:
    """Put the finished directory `tmp` at `out`.

    `out` absent: one rename. `out` present: with `replace` it is swapped out whole (and put
    back if the swap fails); otherwise `tmp`'s files are renamed into it one by one.
    """
    with _signals_held():
        if not out.exists():
            os.replace(tmp, out)
            return
        if not replace:
            _merge_into(tmp, out)
            shutil.rmtree(tmp, ignore_errors=True)
            return
        old = Path(tempfile.mkdtemp(prefix=_tmp_name(out, "."), suffix=".old", dir=out.parent))
        try:
            os.replace(out, old / "previous")
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old / "previous", out)  # put the previous one back
                raise
        finally:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(
    path: str | os.PathLike[str], field: str, *, replace: bool = False, check: bool = True
) -> Iterator[Path]:
    """A temporary directory beside `path`, committed to `path` if the block succeeds.

    See the module docstring and `commit_dir`; `check` runs `check_output` first.
    """
    out = check_output(path, field, "dir") if check else Path(path).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_name(out, "."), suffix=".tmp", dir=out.parent))
    os.chmod(tmp, 0o777 & ~umask())
    try:
        yield tmp
        commit_dir(tmp, out, replace=replace)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], field: str) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside `path` for the block; `UserError` if another holds it.

    The lock is `flock` on that file, so a crashed holder never leaves a stale lock (the
    kernel drops it); the file is removed when the block ends.
    """
    p = Path(path).absolute()
    p.parent.mkdir(parents=True, exist_ok=True)
    lock = p.parent / f".{os.fsencode(p.name)[: NAME_MAX - 16].decode(errors='ignore')}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = ""
            with contextlib.suppress(OSError, ValueError):
                owner = f" (pid {int(lock.read_text().strip())})"
            raise UserError(
                field, str(path), f"is being written by another llmcap{owner}; try again later"
            ) from None
        try:  # the holder before us may have removed the file: lock the one on disk
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
