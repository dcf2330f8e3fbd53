"""Exporters: the base class, the registry of formats, and what several formats share.

An exporter returns content (text or bytes); it never writes: `qbank.writing` renders the requested
formats and puts their files on disk, all or none. Formats are found through the `qbank.exporters`
entry-point group; the built-ins register there too.
"""

from __future__ import annotations

import io
import re
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from typing import Any, ClassVar

import jinja2
from pydantic import BaseModel

from qbank.errors import QbankError
from qbank.render import PALETTE, code_html, markdown_html
from qbank.variant import BLOCK_LETTERS, BankInfo, BlankKey, Variant

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

    def refusal(self, variant: Variant) -> str | None:
        """Why this format cannot express `variant` (None: it can). A format that cannot express a question type
        says so here, and `refusals`, `export` and `export_what_fits` follow from it."""
        return None

    def refusals(self, bank: BankInfo, variants: Sequence[Variant]) -> list[str]:
        """Why some variants cannot be expressed in this format, one line per question and reason (empty: all can)."""
        return _grouped(variants, [(variant, self.refusal(variant)) for variant in variants])

    @abstractmethod
    def render(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        """File name → content (str is written as UTF-8, bytes as they are)."""

    def export(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        """Every variant rendered, or ExportRefused naming every one the format cannot express."""
        refused = self.refusals(bank, variants)
        if refused:
            listed = "; ".join(refused)
            raise ExportRefused(f"the {self.name} format cannot express what follows; nothing was written: {listed}")
        return self.render(bank, variants, seed)

    def export_what_fits(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> tuple[Files, list[str]]:
        """The variants this format can express rendered (no file when there is none), and a line per question and
        reason for those it left out."""
        verdicts = [(variant, self.refusal(variant)) for variant in variants]
        kept = [variant for variant, reason in verdicts if reason is None]
        left_out = [f"{self.name}: left out {line}" for line in _grouped(variants, verdicts)]
        return (self.render(bank, kept, seed) if kept else {}), left_out


def _grouped(variants: Sequence[Variant], verdicts: Sequence[tuple[Variant, str | None]]) -> list[str]:
    """Refusals as a teacher reads them: one line per question and reason, naming the variants unless it is all."""
    of_question: dict[str, int] = {}
    for variant in variants:
        of_question[variant.question_id] = of_question.get(variant.question_id, 0) + 1
    grouped: dict[tuple[str, str], list[str]] = {}
    for variant, reason in verdicts:
        if reason is not None:
            grouped.setdefault((variant.question_id, reason), []).append(variant.variant_id[:8])
    lines = []
    for (question_id, reason), ids in grouped.items():
        which = ""
        if len(ids) < of_question[question_id]:
            which = f" variant{'s' if len(ids) > 1 else ''} {', '.join(ids)}"
        lines.append(f"question '{question_id}'{which}: {reason}")
    return lines


LETTERS = "ABCDEFGHIJ"

#: Characters that XML 1.0 cannot carry at all, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_refusal(variant: Variant) -> str | None:
    """Why no XML document can hold `variant` (a character XML cannot carry, naming field and character), or None."""
    texts = _exported_texts(variant)
    if not _NOT_XML.search("\n".join(texts.values())):
        return None
    field, match = next((f, m) for f, text in texts.items() if (m := _NOT_XML.search(text)))
    return f"{field} contains the control character U+{ord(match.group()):04X}, which XML cannot carry"


def _exported_texts(variant: Variant) -> dict[str, str]:
    """Every text of a variant that an exporter may write, by field: found by walking the model, so that a field
    added to a question type is checked without being listed here."""
    texts: dict[str, str] = {}

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str):
            texts[where] = value
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name), f"{where}.{name}" if where else name)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}")

    walk(variant, "")
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


def question_html(variant: Variant, gap: Callable[[int, BlankKey], str] | None = None) -> str:
    """A question as LMS formats show it: a line with category, difficulty and time limit; stem; code (a fill_in
    question's with `gap(number, blank)` in each blank)."""
    meta = (
        f'<p style="color:#57606a;font-size:90%">{variant.category} · {variant.difficulty} · '
        f"time limit {clock(variant.time_limit)}</p>"
    )
    if variant.gapped_code is not None and gap is not None:
        code = variant.with_gaps(code_html(variant.gapped_code), gap)
    else:
        code = code_html(variant.shown_code) if variant.shown_code else ""
    return meta + markdown_html(variant.stem) + code


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
    env.globals["BLOCK_LETTERS"] = BLOCK_LETTERS
    env.filters["clock"] = clock
    env.filters.update(filters)
    return env


@cache
def style_sheet() -> str:
    """qbank's shared CSS (code, inline code, light and dark palettes) for pages that use `classes=True` HTML."""
    return templates(autoescape=False).get_template("qbank.css.j2").render(palette=PALETTE)


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
