"""Every file tilegrad writes follows one rule, kept here (checkpoints, ``--json``, ``--plot``, ``--output``, the
Ctrl-C fallback, bench files):

* never into a missing folder (a typo in a folder name is an error, not a new folder);
* never over a file that holds something else (a checkpoint, another model's checkpoint, a file of another
  kind) unless the caller says ``force``: a JSON file may replace a JSON file, a plot an image, predictions
  predictions, a checkpoint a checkpoint of the same run;
* one writer per checkpoint: a lock file ``.NAME.lock`` beside it holds the writer's pid (created with
  O_EXCL); a second writer is refused in one line while the first runs; the lock of a dead pid is taken over;
* atomically: a temporary file ``.NAME.PID.RANDOM.tmp`` in the same folder, then a rename; temporary files
  whose writer's pid is gone (a kill -9 mid-write) are removed by the next write.

Every refusal is one ``OutputError`` (a ValueError) naming the file, and the option when one is given.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from pathlib import Path

LEGACY_TEMP_AGE_S = 3600  # temp files from before pids were in their names: removed once this old
LARGEST_TEXT_READ = 64 << 20  # identify() reads text files up to this size to tell JSON from other text


class OutputError(ValueError):
    """A file that must not be written (or cannot be), in one line naming it."""


def _name(path, option: str | None) -> str:
    return f"{option} {path}" if option else str(path)


def check_folder(path, option: str | None = None, *, replace: bool = True) -> None:
    """``path`` can be written: not a folder, its folder exists and is writable (``replace``: a temporary file
    is made beside it; otherwise an existing file is written in place, e.g. ``/dev/stdout``)."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise OutputError(f"{_name(path, option)}: that is a folder; give a file name")
    if not folder.is_dir():
        what = f"{folder} is a file, not a folder" if folder.exists() else f"the folder {folder} does not exist"
        raise OutputError(f"{_name(path, option)}: {what}")
    if target.exists() and (not replace or not target.is_file()):
        if not os.access(target, os.W_OK):
            raise OutputError(f"{_name(path, option)}: the file is not writable")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{_name(path, option)}: no permission to write in the folder {folder}")


def check_suffix(path, option: str | None = None, suffixes: tuple[str, ...] = ()) -> None:
    """``path`` ends in one of ``suffixes`` (without dots; none: any name), or one ``OutputError`` naming the
    first three."""
    target = Path(path)
    if suffixes and target.suffix.lower().lstrip(".") not in suffixes and not target.is_dir():
        what = f"'{target.suffix}' is not a format it writes" if target.suffix else "the name has no extension"
        others = f" (also .{', .'.join(suffixes[3:])})" if suffixes[3:] else ""
        raise OutputError(f"{_name(path, option)}: {what}; end the name in .{', .'.join(suffixes[:3])}{others}")


# --- what an existing file holds --------------------------------------------------------------------------

KINDS = ("checkpoint", "predictions", "json", "plot")
_IMAGE_MAGIC = {b"\x89PNG": "PNG", b"%PDF": "PDF", b"\xff\xd8\xff": "JPEG", b"%!PS": "PostScript",
                b"GIF8": "GIF", b"II*\0": "TIFF", b"MM\0*": "TIFF"}


def identify(path) -> tuple[str, str]:
    """(kind, description) of an existing regular file: kind is one of ``KINDS``, or "empty", "npz", "npy",
    "text", "data"; the description names it for a message (``a tilegrad checkpoint (Sequential(...), epoch 3)``)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "empty", "an empty file"
    if head.startswith(b"PK"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return "data", "a damaged zip archive"
        if "meta.npy" in names:
            return "checkpoint", _describe_checkpoint(path)
        if "classes.npy" in names and "probabilities.npy" in names:
            return "predictions", "predictions (classes and probabilities)"
        return "npz", "a zip archive (an .npz?)" if not names else "an .npz archive of arrays"
    if head.startswith(b"\x93NUMPY"):
        return "npy", "a NumPy .npy array"
    for magic, what in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return "plot", f"a {what} image"
    if head[8:12] == b"WEBP":
        return "plot", "a WebP image"
    if path.stat().st_size > LARGEST_TEXT_READ:
        return "data", "a large file of another kind"
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError):
        return "data", "data of another kind"
    stripped = text.lstrip()
    if stripped.startswith(("<svg", "<?xml")) and "<svg" in stripped[:4096]:
        return "plot", "an SVG image"
    if stripped.startswith(("{", "[")):
        try:
            json.loads(text)
            return "json", "JSON"
        except ValueError:
            pass
    return "text", "a text file"


def _describe_checkpoint(path) -> str:
    from .checkpoint import CheckpointError, describe, read

    try:
        meta, _ = read(path)
    except CheckpointError as exc:
        return f"a tilegrad checkpoint, {exc.problem}"
    epoch = meta.get("extra", {}).get("epoch")
    return f"a tilegrad checkpoint ({describe(meta['architecture'])}" + (
        f", epoch {epoch})" if epoch is not None else ")")


_WHAT = {"checkpoint": "a checkpoint", "predictions": "predictions", "json": "JSON", "plot": "a plot"}


def check_target(path, kind: str, option: str | None = None, *, force: bool = False, same_run=None,
                 suffixes: tuple[str, ...] = ()) -> None:
    """Before any work: ``path`` may be written with a file of ``kind`` (one of ``KINDS``), or one
    ``OutputError`` says why not.

    The folder rule of ``check_folder``; ``suffixes``: the accepted extensions, without dots. An existing
    file is replaced only when it holds the same kind (or nothing); a checkpoint only when ``same_run(meta)``
    returns None (else the reason it returns is the message); ``force`` lifts the content rule, not the
    folder rule. Not a regular file (``/dev/stdout``): written in place."""
    if kind not in KINDS:
        raise ValueError(f"check_target: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    target = Path(path)
    check_suffix(path, option, suffixes)
    check_folder(path, option, replace=target.is_file() or not target.exists())
    if force or not target.is_file():
        return
    chosen = f", or choose another {option} file" if option else ""
    try:
        found, description = identify(target)
    except OSError as exc:
        raise OutputError(f"{_name(path, option)}: the file cannot be read ({exc.strerror or exc}), so it is not "
                          f"replaced; pass --force to replace it{chosen}") from None
    if found == "empty" or (found == kind and kind != "checkpoint"):
        return
    if kind == "checkpoint":
        from .checkpoint import CheckpointError, read

        try:
            meta, _ = read(target)
        except CheckpointError as exc:
            raise OutputError(f"refusing to overwrite {path}: {exc.problem}; pass --force to replace it{chosen}") \
                from None
        reason = same_run(meta) if same_run is not None else None
        if reason:
            raise OutputError(reason)
        return
    raise OutputError(f"refusing to overwrite {path} with {_WHAT[kind]}: it holds {description}; pass --force to "
                      f"replace it{chosen}")


# --- one writer at a time -----------------------------------------------------------------------------------

_HELD: dict[str, int] = {}  # lock files this process holds, by real path: how many times taken (re-entrant)


def lock_path(path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts; another user's process counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _lock_holder(lock: Path) -> int | None:
    """The pid written in a lock file; None when the file is gone; 0 when it holds no pid (yet)."""
    try:
        text = lock.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def _refuse_locked(path, option, pid: int):
    return OutputError(f"{_name(path, option)}: another process (pid {pid}) is writing this checkpoint now; wait "
                       f"for it to finish, or choose another file (its lock is {lock_path(path).name})")


def acquire(path, option: str | None = None) -> None:
    """Take the writer's lock of ``path`` (re-entrant within a process), or one ``OutputError`` when a live
    process holds it. A lock left by a dead process (kill -9) is taken over."""
    lock = lock_path(path)
    key = os.path.realpath(lock)
    if key in _HELD:
        _HELD[key] += 1
        return
    for _ in range(50):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = _lock_holder(lock)
            if pid is None:
                continue  # released meanwhile: try again
            if pid == 0:  # a writer between its O_EXCL and its pid, or an unreadable lock: wait a moment
                time.sleep(0.02)
                pid = _lock_holder(lock)
                if pid == 0 and time.time() - _mtime(lock) < 5:
                    continue
            if pid and pid != os.getpid() and pid_alive(pid):
                raise _refuse_locked(path, option, pid) from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its writer is gone (or it is ours, left by an earlier fork)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        _HELD[key] = 1
        return
    raise OutputError(f"{_name(path, option)}: could not take its lock {lock.name} (it keeps changing hands)")


def release(path) -> None:
    """Give back a lock ``acquire`` took (the file goes with the last release)."""
    lock = lock_path(path)
    key = os.path.realpath(lock)
    if key not in _HELD:
        return
    _HELD[key] -= 1
    if _HELD[key] == 0:
        del _HELD[key]
        if _lock_holder(lock) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()


@contextlib.contextmanager
def writing(path, option: str | None = None):
    """``with writing(path):`` holds the writer's lock of ``path`` for the block."""
    acquire(path, option)
    try:
        yield
    finally:
        release(path)


def check_unlocked(path, option: str | None = None) -> None:
    """One ``OutputError`` when a live process other than this one holds the lock of ``path``."""
    lock = lock_path(path)
    if os.path.realpath(lock) in _HELD:
        return
    pid = _lock_holder(lock)
    if pid and pid != os.getpid() and pid_alive(pid):
        raise _refuse_locked(path, option, pid)


def _mtime(path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


# --- atomic writes and what dead writers left ---------------------------------------------------------------

def remove_stale_temps(path) -> list[Path]:
    """Remove the temporary files of ``path`` whose writer's pid is gone (and pid-less ones from before pids
    were in the names, once an hour old); returns the files removed."""
    path = Path(path)
    ours = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[A-Za-z0-9_]+\.tmp$")
    legacy = re.compile(rf"^\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp$")
    removed = []
    try:
        candidates = list(path.parent.glob(f".{glob_escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    for temp in candidates:
        match = ours.match(temp.name)
        stale = (not pid_alive(int(match.group(1)))) if match else (
            bool(legacy.match(temp.name)) and time.time() - _mtime(temp) > LEGACY_TEMP_AGE_S)
        if stale:
            with contextlib.suppress(OSError):
                temp.unlink()
                removed.append(temp)
    return removed


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def temp_name(path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_atomic(path, write, mode: str = "wb") -> None:
    """``write(file)`` into a temporary file beside ``path``, synced, then renamed over ``path`` (the mode
    follows the umask). A path that is not a regular file (``/dev/stdout``) is written in place."""
    path = Path(path)
    if path.exists() and not path.is_file():
        with open(path, mode) as f:
            write(f)
        return
    remove_stale_temps(path)
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # the umask applies, as to any file
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def free_name(path, usable) -> Path:
    """``path`` if ``usable(path)``, else the first of ``stem-2.suffix``, ``stem-3.suffix``, ... that is."""
    path = Path(path)
    candidate, n = path, 1
    while not usable(candidate):
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
