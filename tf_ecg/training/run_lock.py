"""One writer per run directory: an operating-system file lock (the ``filelock`` library,
``flock`` on POSIX) held while a run trains, and a note of who holds it.

The kernel drops the lock when its process dies, so a killed run leaves no stale lock: the
next ``train`` takes it and resumes. The holder note (host, pid, start) is what a refused
process reports; a note left by a killed process is simply overwritten.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from tf_ecg.errors import RunError

LOCK_FILE, HOLDER_FILE = ".lock", ".lock.json"
LOCK_FILES = (LOCK_FILE, HOLDER_FILE)


@contextmanager
def run_lock(run_dir: str | Path):
    """Hold ``run_dir`` for this process (creating it); refuse at once with a
    :class:`RunError` naming the holder if another process holds it. Yields whether the
    directory was created here; if it is left holding nothing but the lock, it is removed."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run_dir / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunError(run_dir, f"in use by another training process ({_holder(run_dir / HOLDER_FILE)}); wait "
                                f"for it to finish or stop it, then run the same command to resume") from None
    try:
        (run_dir / HOLDER_FILE).write_text(json.dumps({
            "host": socket.gethostname(), "pid": os.getpid(),
            "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}))
        yield created
    finally:
        (run_dir / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()
        if created and run_dir.is_dir() and all(p.name in LOCK_FILES for p in run_dir.iterdir()):
            (run_dir / LOCK_FILE).unlink(missing_ok=True)
            run_dir.rmdir()


def _holder(holder_file: Path) -> str:
    try:
        holder = json.loads(holder_file.read_text())
        return f"pid {holder['pid']} on host {holder['host']}, since {holder['since']}"
    except (OSError, ValueError, KeyError):
        return "its holder note is not written yet"
