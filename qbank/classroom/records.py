"""The answer record: one student's answer to one question, as any source gives it.

Every reader (a Moodle Responses report, a Canvas Student Analysis, a paper exam's CSV) turns its source into these
records; everything after them (finding the variant, regrading, item analysis, the report) reads nothing else. A new
source is one reader.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from qbank.errors import QbankError

#: How a source joins several chosen options (Moodle: `; `; Canvas: `,`, a comma inside one as `\,`).
Separator = Literal["; ", ","]


@dataclass(frozen=True)
class Where:
    """The place in a source a record comes from, for messages a teacher can find: file, line, column."""

    file: Path
    line: int
    column: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}, column '{self.column}'"


@dataclass(frozen=True)
class AnswerRecord:
    """One answer of one attempt at one question."""

    #: Who answered: a stable id (the e-mail address or user id where the source has one, else the name).
    student: str
    name: str
    #: Which attempt of this student (1, 2, …, in the order of the source).
    attempt: int
    #: The question's place in the quiz or on the sheet (Moodle's slot, Canvas's question id, the sheet's number).
    position: str
    #: What was answered, as the source writes it; "" for no answer.
    answer: str
    where: Where
    #: The question as the source shows it (Moodle's summary, Canvas's header): how its variant is found.
    question_text: str | None = None
    #: The variant, when the source names it (a paper exam's manifest).
    variant_id: str | None = None
    #: The key as the source shows it, when it does.
    right_answer: str | None = None
    #: The mark the source gave, as a fraction of the question's marks (None: the source does not say).
    source_mark: float | None = None
    #: How many tries the student made at the question (1 unless the source lists every try).
    tries: int = 1


@dataclass(frozen=True)
class Attempt:
    """One attempt as its source totals it: for checking marks, and for the grades written back."""

    student: str
    name: str
    attempt: int
    #: The attempt's grade as the source shows it, and out of how much (None: not shown).
    grade: float | None
    out_of: float | None
    where: Where


@dataclass
class Reading:
    """What a reader found in one source."""

    source: Path
    #: The kind of source, as a teacher names it ("Moodle Responses report", …).
    kind: str
    records: list[AnswerRecord] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    #: What was left out, and why (an attempt still in progress, a question that is not qbank's, …).
    notes: list[str] = field(default_factory=list)


class Reader(Protocol):
    """Reads one kind of source into answer records."""

    #: The kind of source, as a teacher names it.
    kind: str
    #: How the source joins several chosen options.
    separator: Separator

    def recognizes(self, header: Sequence[str]) -> bool:
        """Whether a CSV file with this header row is this reader's kind."""
        ...

    def read(self, path: Path, rows: list[list[str]]) -> Reading:
        """The records of a file whose rows (the header first) this reader recognizes."""
        ...


#: The largest report read (a quiz's report of 100,000 attempts is far below it; a larger file is the wrong one).
MAX_BYTES = 200 * 1024 * 1024


def read_rows(path: Path, what: str) -> list[list[str]]:
    """A CSV file's rows as an LMS or a spreadsheet writes them: UTF-8 with or without a BOM (or UTF-16 with one);
    commas, semicolons or tabs between cells. A clear error naming the file when it is none of that."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise QbankError(f"{path}: {path.stat().st_size:,} bytes is too large for a {what}")
        data = path.read_bytes()
    except FileNotFoundError:
        raise QbankError(f"{path}: no such file") from None
    except OSError as exc:
        raise QbankError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    text = _decoded(path, data, what)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count) if first else ","
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise QbankError(f"{path}: the {what} is not valid CSV: {exc}") from None
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise QbankError(f"{path}: the {what} is empty")
    return rows


def _decoded(path: Path, data: bytes, what: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise QbankError(
            f"{path}, line {line}: the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "download it again as CSV, or save it from the spreadsheet as 'CSV UTF-8'"
        ) from None


def cell(row: Sequence[str], index: int | None) -> str:
    """The cell of `row` at `index`, stripped; "" when the row is short or there is no such column."""
    return row[index].strip() if index is not None and index < len(row) else ""


def numbered_columns(header: Sequence[str], names: Sequence[str]) -> dict[int, int]:
    """Columns named `NAME N` (in any of the spellings `names`): N → column index."""
    pattern = re.compile(rf"^(?:{'|'.join(map(re.escape, names))})\s+(\d+)$", re.IGNORECASE)
    found: dict[int, int] = {}
    for index, name in enumerate(header):
        match = pattern.match(name.strip())
        if match:
            found.setdefault(int(match.group(1)), index)
    return found
