"""Output directories replaced whole or not at all (SPEC §3).

``staged_dir(target)`` is taken *before* a run simulates: it makes sure the target can be
written, locks it against a second fansim writing there at the same time, and hands out an
empty staging directory beside it (``.NAME.tmp-…``, on the same filesystem). Everything the run
writes goes there; only when the block ends without an error is the staging directory swapped
into place, atomically (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames, with the
old directory kept until the new one is in place). On an error, Ctrl-C or SIGTERM the staging
directory is removed and the target is untouched; after a SIGKILL it is left behind and the next
run into the same place removes it. So a reader finds the previous run or the new one, whole,
never a mix of two.

Files in the target that fansim does not write (a log, notes) are kept: they are hard-linked
into the staging directory before the swap. A target holding subdirectories is someone's tree,
not an output directory, and is refused, so ``--out ~/Documents`` cannot replace it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..scenario.errors import ScenarioError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@contextlib.contextmanager
def staged_dir(target: Path | str, markers: Sequence[str] = ("summary.json",)) -> Iterator[Path]:
    """Yield an empty directory to write into; on success it replaces ``target`` whole,
    keeping the files of ``target`` that fansim does not write.

    Raises ``ScenarioError`` (``TARGET: message``) at once when ``target`` cannot be written,
    is another fansim's to write right now, or holds subdirectories.
    """
    shown = str(target)
    target = Path(os.path.realpath(target))  # a symlink's target; '.' as its real name
    if target == Path(os.getcwd()) or target in Path(os.getcwd()).parents:
        raise ScenarioError.single(
            shown, "is the current directory (or holds it): choose a directory below it"
        )
    _check_replaceable(target, markers)
    parent = target.parent
    with _holding_lock(target):
        _remove_stale(parent, target.name)
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
            os.chmod(stage, 0o755)  # mkdtemp makes 0700; outputs are for everyone to read
        except OSError as e:
            raise ScenarioError.single(str(target), f"cannot write here: {e.strerror}") from None
        try:
            yield stage
            _carry_over(target, stage, markers)
            _swap_in(stage, target)
        finally:
            shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def locked_dir(target: Path | str | None) -> Iterator[Path | None]:
    """Create ``target`` and hold it against a second fansim writing there (a sweep or a plan,
    which add files to it one by one instead of replacing it whole); None passes through.
    Re-entrant in one process: the CLI holds it around ``sweep()`` and the sweep's report."""
    if target is None:
        yield None
        return
    target, real = Path(target), Path(os.path.realpath(target))
    if real in _HELD:
        yield target
        return
    with _holding_lock(real):
        created = not target.exists()
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ScenarioError.single(str(target), _why_unwritable(target, e)) from None
        _HELD.add(real)
        try:
            yield target
        finally:
            _HELD.discard(real)
            if created:  # a sweep or plan that failed before writing leaves no empty directory
                with contextlib.suppress(OSError):
                    target.rmdir()


_HELD: set[Path] = set()  # the directories this process holds through locked_dir


@contextlib.contextmanager
def _holding_lock(target: Path) -> Iterator[None]:
    """An exclusive lock on ``target`` (the file ``.NAME.lock`` beside it), or at once a
    ``ScenarioError`` when another fansim holds it."""
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ScenarioError.single(str(target), _why_unwritable(target, e)) from None
    try:
        _lock(lock, target)
        yield
    finally:
        os.close(lock)  # releases the lock


def _why_unwritable(target: Path, error: OSError) -> str:
    for p in target.parents:
        if p.exists() and not p.is_dir():
            return f"cannot write here: {p} is a file, not a directory"
    return f"cannot write here: {error.strerror}"


# What fansim writes into an output directory: replaced by a run, never carried over (so a
# chart an earlier scenario drew does not linger). Any other file is the user's and is kept.
OUTPUT_SUFFIXES = (".png",)
OUTPUT_NAMES = ("summary.json", "timeseries.csv", "percentiles.csv", "scenario.yaml",
                "report.html", "compare.html")  # fmt: skip


def _is_output(name: str, markers: Sequence[str]) -> bool:
    return name in OUTPUT_NAMES or name in markers or name.endswith(OUTPUT_SUFFIXES)


def _check_replaceable(target: Path, markers: Sequence[str]) -> None:
    """An output directory holds files only: a directory with subdirectories is someone's
    tree, not a run's, and is refused before any work."""
    if target.exists() and not target.is_dir():
        raise ScenarioError.single(str(target), "cannot write here: a file of that name exists")
    if target.is_dir():
        try:
            subdirectories = [p.name for p in target.iterdir() if p.is_dir()]
        except OSError as e:
            raise ScenarioError.single(str(target), f"cannot read: {e.strerror}") from None
        if subdirectories:
            raise ScenarioError.single(
                str(target),
                f"holds directories ({', '.join(sorted(subdirectories)[:3])}), so it is not an "
                "output directory: choose another --out",
            )


def _carry_over(target: Path, stage: Path, markers: Sequence[str]) -> None:
    """Hard-link into ``stage`` every file of ``target`` that fansim did not write (a log,
    notes), so the swap keeps them; a file still being written stays the same file."""
    if not target.is_dir():
        return
    for path in target.iterdir():
        if path.is_file() and not _is_output(path.name, markers):
            if not (stage / path.name).exists():
                try:
                    os.link(path, stage / path.name)
                except OSError:  # a file system without hard links
                    shutil.copy2(path, stage / path.name)


def _lock(fd: int, target: Path) -> None:
    """A POSIX record lock (``lockf``), not ``flock``: a process pool forked while it is held
    does not inherit it, so workers left behind by a killed run cannot keep the directory."""
    import fcntl

    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EAGAIN):
            raise ScenarioError.single(str(target), f"cannot lock it: {e.strerror}") from None
        raise ScenarioError.single(
            str(target), "another fansim is writing this directory now; wait for it or use --out"
        ) from None


def _remove_stale(parent: Path, name: str) -> None:
    """Staging and old directories left by a run that was killed (we hold the lock, so no
    live run owns them)."""
    for prefix in (f".{name}.tmp-", f".{name}.old-"):
        for p in parent.glob(prefix + "*"):
            shutil.rmtree(p, ignore_errors=True)


def _swap_in(stage: Path, target: Path) -> None:
    """Put ``stage`` at ``target``; the previous ``target`` (if any) ends up at ``stage``."""
    try:
        os.rename(stage, target)  # atomic when target does not exist (or is an empty dir)
        return
    except OSError as e:
        if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    if _exchange(stage, target):
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, old / "run")
    os.rename(stage, target)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def default_run_dir(name: str, sets: dict[str, Any]) -> Path:
    """``reports/NAME/``; with ``--set`` overrides ``reports/NAME--KEY=VALUE--.../`` (named
    from them, so a what-if never replaces the baseline's directory), shortened to a hash of
    the overrides when long."""
    if not sets:
        return Path("reports") / name
    parts = [f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in sets.items()]
    slug = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", "--".join(parts)).strip("_")
    if len(slug) > 80:
        slug = "set-" + hashlib.sha1("--".join(parts).encode()).hexdigest()[:12]
    return Path("reports") / f"{name}--{slug}"
