"""From report files to traced results: each file read by the reader that recognizes it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qbank.classroom.canvas import StudentAnalysisReader
from qbank.classroom.identify import Finder
from qbank.classroom.moodle import GradesReader, ResponsesReader, moodle_mark
from qbank.classroom.records import Reading, read_rows
from qbank.classroom.results import Results, trace
from qbank.errors import QbankError
from qbank.variant import Variant

READERS = (ResponsesReader(), StudentAnalysisReader())


def read_report(path: Path) -> tuple[ResponsesReader | StudentAnalysisReader, Reading]:
    """A report file read by the reader that recognizes its header; an error naming what it is not."""
    rows = read_rows(path, "report")
    for reader in READERS:
        if reader.recognizes(rows[0]):
            return reader, reader.read(path, rows)
    shown = ", ".join(repr(name) for name in rows[0][:6]) or "an empty line"
    grades = (
        " It looks like Moodle's Grades report: pass it with --grades."
        if any(name.strip().startswith(("Q. ", "F. ")) for name in rows[0])
        else ""
    )
    raise QbankError(
        f"{path}, line 1: neither a Moodle Responses report (columns 'Response 1', …) nor a Canvas Student Analysis "
        f"report (… 'n correct', 'n incorrect', 'score'); its columns begin {shown}. Download Quiz → Results → "
        f"Responses in Moodle, or Quiz Statistics → Student Analysis in Canvas, as CSV.{grades}"
    )


def results_of(reports: Sequence[Path], variants: Sequence[Variant], grades: Path | None = None) -> Results:
    """Every report's records traced to `variants` and scored; `grades`: Moodle's Grades report for the marks."""
    finder = Finder(variants)
    results = Results()
    marks = GradesReader().marks(grades) if grades is not None else None
    for path in reports:
        reader, reading = read_report(path)
        if isinstance(reader, ResponsesReader):
            trace(reading, finder, separator=reader.separator, marker=moodle_mark, marks=marks, results=results)
        else:
            trace(reading, finder, separator=reader.separator, results=results)
    return results
