"""Rendering formats side by side and putting their files on disk: every format, or none.

Each file is written to a hidden temporary file beside its final name and flushed to disk; only when every
requested format has rendered and staged its files are they renamed over their final names. A reader sees
the old file or the new one, never a part, and a failing format leaves earlier exports untouched. Temporary
files that a killed run left behind are removed by the next run.

Formats render in up to `jobs` lanes: the calling process is one, the others are forked processes (on
Linux) that share the variants with it instead of receiving a copy. Each lane takes the next format not yet
taken, so a slow format does not hold up the rest; the files are the same however many lanes there are.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import glob
import multiprocessing
import os
import pickle
import secrets
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from qbank.collector import fewer_collections
from qbank.errors import QbankError
from qbank.exporting import Exporter, Files, exporter
from qbank.variant import BankInfo, Variant

T = TypeVar("T")
#: What a lane gives back for one format: (True, its result) or (False, the exception it raised).
Outcome = tuple[bool, Any]


def render_all(
    names: Sequence[str], bank: BankInfo, variants: Sequence[Variant], seed: int, jobs: int | None = 1
) -> Files:
    """Every named format rendered in memory (in up to `jobs` lanes); an error if any of them fails."""
    chosen = [exporter(name) for name in names]  # an unknown name fails before any work
    outcomes = _in_lanes(chosen, lambda each: each.export(bank, variants, seed), jobs)
    _raise_first(outcomes)
    return _merged([files for _, files in outcomes])


def export_files(
    names: Sequence[str],
    bank: BankInfo,
    variants: Sequence[Variant],
    seed: int,
    folder: Path,
    jobs: int | None = None,
    left_out: Callable[[str], None] | None = None,
) -> list[Path]:
    """Render every named format (in up to `jobs` lanes, default one per core) into `folder`: all or nothing.

    A format that cannot express some variant refuses, and nothing is written; unless `left_out` is given: then each
    format writes the variants it can express, and `left_out` is told, a line per question, what each left out.

    Each lane writes the files of the formats it renders as soon as they are ready, so writing overlaps with
    rendering; the renames happen once every format has succeeded. Returns the paths written.
    """
    chosen = [exporter(name) for name in names]
    _make_folder(folder)
    run = secrets.token_hex(4)  # marks this call's temporary files, whichever lane wrote them

    def stage_format(each: Exporter) -> tuple[dict[str, str], list[str]]:
        if left_out is None:
            return _stage_all(folder, each.export(bank, variants, seed), run), []
        files, omitted = each.export_what_fits(bank, variants, seed)
        return _stage_all(folder, files, run), omitted

    with _locked(folder):
        try:
            outcomes = _in_lanes(chosen, stage_format, jobs)
            _raise_first(outcomes)
            written = _commit(folder, _merged([temporaries for _, (temporaries, _) in outcomes]))
            if left_out is not None:
                for _, (_, omitted) in outcomes:
                    for line in omitted:
                        left_out(line)
            return written
        except BaseException:  # Ctrl-C included: a lane stopped halfway leaves its files too
            _discard(folder.glob(f".*.{run}.*.tmp"))
            raise


def write_files(folder: Path, files: Files) -> list[Path]:
    """Write `files` (name → content) into `folder`: each staged beside its final name, then all renamed, or none."""
    _make_folder(folder)
    run = secrets.token_hex(4)
    with _locked(folder):
        try:
            return _commit(folder, _stage_all(folder, files, run))
        except BaseException:
            _discard(folder.glob(f".*.{run}.*.tmp"))
            raise


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the folder's lock: a second run writing into it waits, instead of removing this run's temporaries as
    stale ones (or renaming half of its files between this run's)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)  # the folder itself is locked: no lock file is left in it
    except OSError as exc:
        raise QbankError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _merged(outputs: Sequence[Mapping[str, T]]) -> dict[str, T]:
    """One map of file name → content (or temporary file), refusing two formats that write the same name."""
    merged: dict[str, T] = {}
    for output in outputs:
        for filename, content in output.items():
            if filename in merged:
                raise QbankError(f"two formats both write '{filename}'")
            merged[filename] = content
    return merged


def _raise_first(outcomes: Sequence[Outcome]) -> None:
    for ok, payload in outcomes:
        if not ok:
            raise payload


# --- lanes ------------------------------------------------------------------------------------------------


def _in_lanes(chosen: Sequence[Exporter], work: Callable[[Exporter], Any], jobs: int | None) -> list[Outcome]:
    """`work(exporter)` for each exporter, in up to `jobs` lanes; the outcomes in `chosen` order."""
    with fewer_collections():
        return _lanes(chosen, work, min(jobs or os.cpu_count() or 1, len(chosen)))


def _lanes(chosen: Sequence[Exporter], work: Callable[[Exporter], Any], lanes: int) -> list[Outcome]:
    if lanes <= 1 or sys.platform != "linux":  # fork is what shares the variants; elsewhere, one lane
        return [_attempt(work, each) for each in chosen]
    context = multiprocessing.get_context("fork")
    taken = context.Value("i", 0)  # how many formats the lanes have taken, in order
    # Objects that exist now are left out of garbage collection while the children run: a collection in a
    # child would otherwise write to (and so copy) every page holding them.
    gc.freeze()
    children: list[tuple[Any, Any]] = []
    try:
        for _ in range(lanes - 1):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_child_lane, args=(sender, taken, chosen, work), daemon=True)
            process.start()
            sender.close()
            children.append((receiver, process))
        outcomes = dict(_lane(taken, chosen, work))
        for receiver, process in children:
            with receiver, contextlib.suppress(EOFError):  # a lane that died says nothing; see below
                outcomes.update(receiver.recv())
            process.join()
    finally:
        for _, process in children:
            if process.is_alive():
                process.kill()
                process.join()
        gc.unfreeze()
    for index, each in enumerate(chosen):
        if index not in outcomes:
            ended = QbankError(f"the process rendering the {each.name} format ended early; nothing was written")
            outcomes[index] = (False, ended)
    return [outcomes[index] for index in range(len(chosen))]


def _lane(taken: Any, chosen: Sequence[Exporter], work: Callable[[Exporter], Any]) -> list[tuple[int, Outcome]]:
    """Take formats one by one until none is left; what each gave."""
    done: list[tuple[int, Outcome]] = []
    while True:
        with taken.get_lock():
            index = taken.value
            taken.value += 1
        if index >= len(chosen):
            return done
        done.append((index, _attempt(work, chosen[index])))


def _child_lane(sender: Any, taken: Any, chosen: Sequence[Exporter], work: Callable[[Exporter], Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    done = []
    for index, (ok, payload) in _lane(taken, chosen, work):
        if not ok:  # the error travels to the parent: say where it happened, and make sure it can travel
            payload.add_note(f"in the process rendering the {chosen[index].name} format")
            try:
                pickle.dumps(payload)
            except Exception:
                payload = RuntimeError(f"{type(payload).__name__}: {payload}")
        done.append((index, (ok, payload)))
    with sender:
        sender.send(done)


def _attempt(work: Callable[[Exporter], Any], each: Exporter) -> Outcome:
    try:
        return True, work(each)
    except Exception as exc:
        if not isinstance(exc, QbankError):
            exc.add_note(traceback.format_exc())
        return False, exc


# --- files ------------------------------------------------------------------------------------------------


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QbankError(f"cannot create the output folder {folder}: {exc.strerror}") from None


def _stage_all(folder: Path, files: Mapping[str, str | bytes], run: str) -> dict[str, str]:
    """Every file written, flushed, beside its final name; file name → temporary file."""
    temporaries: dict[str, str] = {}
    try:
        for name, content in files.items():
            for stale in folder.glob(f".{glob.escape(name)}.*.tmp"):  # left by a killed run
                stale.unlink()
            data = content.encode("utf-8") if isinstance(content, str) else content
            temporaries[name] = _stage(folder, f".{name}.{run}.", data)
    except BaseException as exc:
        _discard(temporaries.values())
        if isinstance(exc, OSError):
            raise QbankError(f"cannot write into {folder}: {exc.strerror or exc}") from None
        raise
    return temporaries


def _stage(folder: Path, prefix: str, data: bytes) -> str:
    """A fully written, flushed temporary file in `folder` (beside its final name); its path."""
    descriptor, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
    except BaseException:
        _discard([temporary])
        raise
    return temporary


def _commit(folder: Path, temporaries: Mapping[str, str]) -> list[Path]:
    """Rename every staged file over its final name, then make the renames durable.

    Every final name is checked first, so that one that cannot be replaced (a folder of that name) stops the
    export before any file is renamed: all or none.
    """
    for name in temporaries:
        target = folder / name
        if target.is_dir() and not target.is_symlink():  # a rename cannot replace a folder
            raise QbankError(f"cannot write {target}: a folder has that name; nothing was written")
    try:
        for name, temporary in temporaries.items():
            os.replace(temporary, folder / name)
        descriptor = os.open(folder, os.O_RDONLY)  # a folder is synced through a descriptor of its own
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise QbankError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    return [folder / name for name in temporaries]


def _discard(temporaries: Any) -> None:
    for temporary in temporaries:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
