"""Exporters: the base class, the registry of formats, and the one writer that puts files on disk.

An exporter returns content (text or bytes); it never writes. The writer puts every file in place
atomically (temporary file in the same folder, then rename) and only after every requested format
has rendered, so a failing format leaves earlier exports untouched and no partial file behind.
Formats are found through the `qbank.exporters` entry-point group; the built-ins register there too.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import io
import multiprocessing
import multiprocessing.connection
import os
import pickle
import re
import signal
import sys
import tempfile
import traceback
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import jinja2

from qbank.errors import QbankError
from qbank.render import code_html, markdown_html
from qbank.variant import BankInfo, Variant

ENTRY_POINT_GROUP = "qbank.exporters"

Files = dict[str, str | bytes]


class ExportRefused(QbankError):
    """A format cannot express some variants; raised before anything is written, naming them all."""


class Exporter(ABC):
    #: The name given to `--format`.
    name: ClassVar[str]
    #: What the format is for, shown by `qbank formats`.
    description: ClassVar[str]
    #: The suffix of the main file, appended to the bank id.
    suffix: ClassVar[str]

    def refusals(self, bank: BankInfo, variants: Sequence[Variant]) -> list[str]:
        """Why some variants cannot be expressed in this format (empty: all can)."""
        return []

    @abstractmethod
    def render(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        """File name → content (str is written as UTF-8, bytes as they are)."""

    def export(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        refused = self.refusals(bank, variants)
        if refused:
            listed = "; ".join(refused)
            raise ExportRefused(f"the {self.name} format cannot express {len(refused)} variant(s): {listed}")
        return self.render(bank, variants, seed)


LETTERS = "ABCDEFGHIJ"

#: Characters that XML 1.0 cannot carry at all, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_refusals(variants: Sequence[Variant]) -> list[str]:
    """The variants holding a character that no XML document can contain, naming field and character."""
    found = []
    for variant in variants:
        texts = _exported_texts(variant)
        if not _NOT_XML.search("\n".join(texts.values())):
            continue
        field, match = next((f, m) for f, text in texts.items() if (m := _NOT_XML.search(text)))
        found.append(
            f"question '{variant.question_id}' variant {variant.variant_id[:8]}: {field} contains "
            f"the control character U+{ord(match.group()):04X}, which XML cannot carry"
        )
    return found


def _exported_texts(variant: Variant) -> dict[str, str]:
    """Every text of a variant that an exporter may write, by field."""
    texts = {
        "title": variant.title,
        "stem": variant.stem,
        "code": variant.code or "",
        "explanation": variant.explanation,
        "hints": "\n".join(variant.hints),
        "answers": "\n".join(variant.answers),
        "tags": "\n".join(variant.tags),
    }
    for index, choice in enumerate(variant.choices):
        texts[f"choices[{index}]"] = f"{choice.text}\n{choice.feedback}"
    return texts


#: Zip entry times are fixed, so equal content gives equal bytes (no reader of our zips uses them).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def zip_bytes(entries: Mapping[str, bytes]) -> bytes:
    """A deflated zip archive of `entries`, in order, byte-identical for identical entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def question_html(variant: Variant) -> str:
    """A question as LMS formats show it: a line with category, difficulty and time limit; stem; code."""
    meta = (
        f'<p style="color:#57606a;font-size:90%">{variant.category} · {variant.difficulty} · '
        f"time limit {clock(variant.time_limit)}</p>"
    )
    return meta + markdown_html(variant.stem) + (code_html(variant.code) if variant.code else "")


def templates(autoescape: bool, **filters: Callable[..., Any]) -> jinja2.Environment:
    """A Jinja2 environment for an exporter's templates (escaping on for XML and HTML targets)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("qbank.exporters", "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["LETTERS"] = LETTERS
    env.filters["clock"] = clock
    env.filters.update(filters)
    return env


def clock(seconds: int) -> str:
    """A time limit as the reference page shows it: 2:30."""
    return f"{seconds // 60}:{seconds % 60:02d}"


@cache
def formats() -> dict[str, type[Exporter]]:
    """Every registered format by name; a name registered twice is an error."""
    found: dict[str, type[Exporter]] = {}
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.value):
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, Exporter)):
            raise QbankError(f"entry point '{entry.name}' ({entry.value}) is not a qbank Exporter subclass")
        if entry.name in found and found[entry.name] is not cls:
            raise QbankError(
                f"two exporters are registered as '{entry.name}': {found[entry.name].__module__} and {entry.value}"
            )
        found[entry.name] = cls
    return dict(sorted(found.items()))


def exporter(name: str) -> Exporter:
    known = formats()
    if name not in known:
        raise QbankError(f"unknown format '{name}'; known formats: {', '.join(known)}")
    return known[name]()


def render_all(
    names: Sequence[str], bank: BankInfo, variants: Sequence[Variant], seed: int, jobs: int | None = None
) -> Files:
    """Every requested format rendered in memory; nothing is written if any of them fails.

    Formats render side by side in up to `jobs` processes (default: one per core) where the system can
    fork, so the variants are shared rather than copied; the files are the same either way.
    """
    chosen = [exporter(name) for name in names]  # an unknown name fails before any work
    workers = min(jobs or os.cpu_count() or 1, len(chosen))
    if workers > 1 and sys.platform == "linux":
        rendered = _render_forked(chosen, bank, variants, seed, workers)
    else:
        rendered = [each.export(bank, variants, seed) for each in chosen]
    files: Files = {}
    for output in rendered:
        for filename, content in output.items():
            if filename in files:
                raise QbankError(f"two formats both write '{filename}'")
            files[filename] = content
    return files


def _render_forked(
    chosen: Sequence[Exporter], bank: BankInfo, variants: Sequence[Variant], seed: int, workers: int
) -> list[Files]:
    """Each exporter's files, rendered in forked processes, at most `workers` at a time, in `chosen` order."""
    context = multiprocessing.get_context("fork")
    # Objects that exist now are left out of garbage collection while the children run: a collection in a
    # child would otherwise write to (and so copy) every page holding them.
    gc.freeze()
    rendered: dict[int, Files] = {}
    waiting = list(enumerate(chosen))
    running: dict[Any, tuple[int, Any]] = {}  # receiving end of a pipe → (index, process)
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                index, each = waiting.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=_render_child, args=(sender, each, bank, variants, seed), daemon=True)
                process.start()
                sender.close()
                running[receiver] = (index, process)
            for receiver in multiprocessing.connection.wait(list(running)):
                index, process = running.pop(receiver)
                with receiver:
                    try:
                        ok, payload = receiver.recv()
                    except EOFError:
                        process.join()
                        raise QbankError(
                            f"the process rendering the {chosen[index].name} format ended early "
                            f"(exit code {process.exitcode}); nothing was written"
                        ) from None
                process.join()
                if not ok:
                    raise payload
                rendered[index] = payload
    finally:
        for _, process in running.values():
            process.kill()
            process.join()
        gc.unfreeze()
    return [rendered[index] for index in range(len(chosen))]


def _render_child(sender: Any, each: Exporter, bank: BankInfo, variants: Sequence[Variant], seed: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    try:
        reply: tuple[bool, Any] = (True, each.export(bank, variants, seed))
    except Exception as exc:
        if not isinstance(exc, QbankError):  # a bug: keep where it happened
            exc.add_note("in the process rendering the " + each.name + " format:\n" + traceback.format_exc())
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        reply = (False, exc)
    with sender:
        sender.send(reply)


def write_files(folder: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write each file atomically into `folder` (made if missing). Returns the paths written.

    Every file is written to a hidden temporary file beside its final name, flushed to disk, then renamed
    over the final name: a reader sees the old file or the new one, never a part. Temporary files that a
    killed run left behind are removed first.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in files:
            for stale in folder.glob(f".{glob.escape(name)}.*.tmp"):
                stale.unlink()
    except OSError as exc:
        raise QbankError(f"cannot create the output folder {folder}: {exc.strerror}") from None
    staged: list[tuple[str, Path]] = []
    try:
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            staged.append((_stage(folder, name, data), folder / name))
        for temporary, final in staged:
            os.replace(temporary, final)
        _sync_folder(folder)
    except BaseException as exc:
        for temporary, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        if isinstance(exc, OSError):
            raise QbankError(f"cannot write into {folder}: {exc.strerror or exc}") from None
        raise
    return [final for _, final in staged]


def _sync_folder(folder: Path) -> None:
    """Make the renames durable (a folder is synced through a descriptor of its own)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _stage(folder: Path, name: str, data: bytes) -> str:
    """A fully written, flushed temporary file beside its final name; its path."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return temporary
