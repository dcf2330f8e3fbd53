"""Exams per student: one variant of each question (or K questions per category) for every student, drawn from the
seed, with a printable sheet (Markdown and PDF) and an answer key each, a class key (`key.csv`) and a manifest that
`qbank grade` reads back.

All randomness happens before anything is written, from the seed and the student ids alone: the same banks, roster
and seed give byte-identical files. Each question's variants are dealt to its students in an order drawn from
(seed, question, student id), so two students get the same variant only when the question has fewer variants than
students.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from qbank import __version__, typeset
from qbank.errors import QbankError
from qbank.exporters.markdown import page
from qbank.exporting import LETTERS, Files
from qbank.generate import Failure, generate
from qbank.models import Bank, Category, Question
from qbank.params import rng_for
from qbank.runner import Store, WorkerPool
from qbank.variant import BLOCK_LETTERS, BankInfo, Variant
from qbank.writing import write_files

#: The most students one exam may have (a roster longer than this is most likely the wrong file).
MAX_STUDENTS = 100_000
#: Column names a roster's id column may have (the first found is used), and its name column.
ID_COLUMNS = ("id", "student", "student_id", "username", "email")
NAME_COLUMNS = ("name", "student_name", "full_name")
MANIFEST = "manifest.json"
KEY_CSV = "key.csv"


@dataclass(frozen=True)
class Student:
    id: str
    name: str = ""


@dataclass(frozen=True)
class Sheet:
    student: Student
    #: The file names' stem: the id made safe for a file name (unique within the exam).
    file: str
    variants: list[Variant]


@dataclass
class Exam:
    title: str
    seed: int
    banks: list[BankInfo]
    sheets: list[Sheet]
    failures: list[Failure] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


# --- students -----------------------------------------------------------------------------------------------


def numbered(count: int) -> list[Student]:
    """Students without a roster: s001, s002, … (as many digits as the count needs, at least three)."""
    if not 1 <= count <= MAX_STUDENTS:
        raise QbankError(f"the number of students must be from 1 to {MAX_STUDENTS:,} (got {count:,})")
    width = max(3, len(str(count)))
    return [Student(f"s{number:0{width}d}") for number in range(1, count + 1)]


def read_roster(path: Path) -> list[Student]:
    """Students from a CSV file with a header: an id column (`id`, `student`, `student_id`, `username` or `email`)
    and optionally a `name` column; other columns are ignored."""
    rows = csv_rows(path, "roster")
    header = [cell.strip().lower() for cell in rows[0]]
    id_column = next((header.index(name) for name in ID_COLUMNS if name in header), None)
    if id_column is None:
        raise QbankError(
            f"{path}, line 1: the roster needs a header with an id column ({', '.join(ID_COLUMNS)}); "
            f"found {', '.join(map(repr, rows[0])) or 'an empty line'}"
        )
    name_column = next((header.index(name) for name in NAME_COLUMNS if name in header), None)
    students: list[Student] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines (a trailing one, most often) are not students
        student_id = row[id_column].strip() if id_column < len(row) else ""
        if not student_id:
            raise QbankError(f"{path}, line {line}: the student has no id (column '{rows[0][id_column]}')")
        if student_id in seen:
            raise QbankError(f"{path}, line {line}: the id '{student_id}' is already on line {seen[student_id]}")
        seen[student_id] = line
        name = row[name_column].strip() if name_column is not None and name_column < len(row) else ""
        students.append(Student(student_id, name))
    if not students:
        raise QbankError(f"{path}: the roster lists no students")
    if len(students) > MAX_STUDENTS:
        raise QbankError(f"{path}: the roster lists {len(students):,} students; at most {MAX_STUDENTS:,}")
    return students


def csv_rows(path: Path, what: str) -> list[list[str]]:
    """The rows of a CSV file (a BOM is allowed); an error naming the file when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise QbankError(f"{path}: no such {what} file") from None
    except UnicodeDecodeError as exc:
        raise QbankError(f"{path}: the {what} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise QbankError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise QbankError(f"{path}: the {what} is not valid CSV: {exc}") from None
    if not rows:
        raise QbankError(f"{path}: the {what} file is empty")
    return rows


def parse_pick(text: str) -> dict[str, int]:
    """`Debug=1,Predict Output=2` → {category: how many questions of it each student gets}."""
    known = get_args(Category)
    picks: dict[str, int] = {}
    for part in filter(None, (part.strip() for part in text.split(","))):
        category, _, count = part.partition("=")
        category = category.strip()
        if category not in known:
            raise QbankError(f"--pick: unknown category '{category}'; the categories are {', '.join(known)}")
        if not count.strip().isdigit() or int(count) < 1:
            raise QbankError(f"--pick: '{part}' needs a whole number of at least 1 after '='")
        picks[category] = int(count)
    if not picks:
        raise QbankError("--pick: give CATEGORY=K pairs separated by commas, e.g. 'Debug=1,Predict Output=2'")
    return picks


# --- drawing ------------------------------------------------------------------------------------------------


def make_exam(
    banks: Sequence[Bank],
    students: Sequence[Student],
    seed: int,
    *,
    pick: dict[str, int] | None = None,
    title: str | None = None,
    jobs: int | None = None,
    store: Store | None = None,
    pool: WorkerPool | None = None,
    progress: Callable[[int, int], None] | None = None,
    sandbox: bool = True,
) -> Exam:
    """Every student's sheet: each question's variants made (as many as students, where the bank allows), then
    dealt. Pass a `pool` to share torch workers with other calls; otherwise one is made and closed."""
    ids = [bank.id for bank in banks]
    if len(set(ids)) != len(ids):
        raise QbankError(f"the bank '{next(i for i in ids if ids.count(i) > 1)}' is given twice")
    questions = [(bank.id, question) for bank in banks for question in bank.questions]
    if pick:
        for category, count in pick.items():
            have = sum(1 for _, question in questions if question.category == category)
            if have < count:
                raise QbankError(
                    f"--pick asks for {count} '{category}' question{'s' if count != 1 else ''} per student; "
                    f"the bank{'s have' if len(banks) > 1 else ' has'} {have}"
                )
    exam = Exam(title or " · ".join(bank.title for bank in banks), seed, [BankInfo.of(bank) for bank in banks], [])
    pools: dict[tuple[str, str], list[Variant]] = {}
    active = pool or WorkerPool(jobs, store=store, sandbox=sandbox)
    try:
        for bank in banks:
            result = generate(bank, len(students), seed, pool=active, progress=progress)
            exam.failures += result.failures
            exam.notices += [f"bank '{bank.id}', {notice}; students share them" for notice in result.notices]
            for variant in result.variants:
                pools.setdefault((bank.id, variant.question_id), []).append(variant)
    finally:
        if pool is None:
            active.close()
    for bank_id, question in questions:
        if (bank_id, question.id) not in pools:
            reasons = [f.reason for f in exam.failures if f.question_id == question.id and f.bank_id == bank_id]
            raise QbankError(
                f"bank '{bank_id}', question '{question.id}': no variant could be made, so no exam can be "
                f"({reasons[0] if reasons else 'no reason recorded'})"
            )
    chosen = {student.id: _questions_of(student, questions, seed, pick) for student in students}
    dealt: dict[tuple[str, str], dict[str, Variant]] = {}
    for key, variants in pools.items():
        takers = sorted((s.id for s in students if key in chosen[s.id]), key=lambda sid: _order(seed, key, sid))
        dealt[key] = {sid: variants[rank % len(variants)] for rank, sid in enumerate(takers)}
    for student, file in zip(students, _file_names(students), strict=True):
        variants = [dealt[key][student.id] for key in chosen[student.id]]
        exam.sheets.append(Sheet(student, file, variants))
    return exam


def _questions_of(
    student: Student, questions: list[tuple[str, Question]], seed: int, pick: dict[str, int] | None
) -> list[tuple[str, str]]:
    """The (bank id, question id) pairs on a student's sheet, in the banks' order."""
    keys = [(bank_id, question.id) for bank_id, question in questions]
    if not pick:
        return keys
    rng = rng_for(seed, "exam", "pick", student.id)
    taken: set[tuple[str, str]] = set()
    for category, count in pick.items():
        of_category = [(bank_id, q.id) for bank_id, q in questions if q.category == category]
        taken.update(rng.sample(of_category, count))
    return [key for key in keys if key in taken]


def _order(seed: int, key: tuple[str, str], student_id: str) -> str:
    return hashlib.sha256("\x1f".join(["qbank-exam", str(seed), *key, student_id]).encode()).hexdigest()


#: Stems a student's files must not have: `report.md` is written by `qbank grade` into the same folder.
_RESERVED_STEMS = {"report"}


def _file_names(students: Sequence[Student]) -> list[str]:
    """A file-name stem per student: the id with anything but letters, digits, `.`, `-` and `_` made `_`, and a
    number added where two students' files (`X.md`, `X.key.md`, `X.pdf`) or grading's would have the same name (the
    comparison ignores case, for case-blind disks)."""
    names: list[str] = []
    taken: set[str] = set()
    for student in students:
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", student.id).strip(".") or "student"
        stem = stem[:80]
        name, number = stem, 1
        # `a.key`'s sheet would be `a.key.md`, the key of student `a`: such a stem gets a number too.
        while name.lower() in taken | _RESERVED_STEMS or name.lower().endswith(".key"):
            number += 1
            name = f"{stem}-{number}"
        taken.add(name.lower())
        names.append(name)
    return names


# --- files --------------------------------------------------------------------------------------------------


def exam_files(exam: Exam, *, pdf: bool = True, jobs: int | None = None) -> Files:
    """Every file of the exam, by name: per student `FILE.md`, `FILE.key.md` (and `FILE.pdf`), then `key.csv` and
    `manifest.json`. PDFs are typeset in up to `jobs` threads (default one per core): Typst works outside the GIL."""
    files: Files = {}
    for sheet in exam.sheets:
        context = {"exam": exam, "sheet": sheet, "student": sheet.student, "variants": sheet.variants}
        files[f"{sheet.file}.md"] = page("exam_sheet.md.j2", context)
        files[f"{sheet.file}.key.md"] = page("exam_key.md.j2", context)
    if pdf:
        with ThreadPoolExecutor(jobs or os.cpu_count() or 1) as lanes:
            sources = (sheet_typst(exam, sheet) for sheet in exam.sheets)
            for sheet, document in zip(exam.sheets, lanes.map(typeset.pdf, sources), strict=True):
                files[f"{sheet.file}.pdf"] = document
    files[KEY_CSV] = key_csv(exam)
    files[MANIFEST] = json.dumps(manifest(exam), indent=1, ensure_ascii=False) + "\n"
    return files


def key_csv(exam: Exam) -> str:
    """One row per student and question: where it is on the sheet, which variant, its key and accepted answers."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "name", "question", "bank", "question_id", "variant_id", "type", "key", "accepted"])
    for sheet in exam.sheets:
        for number, variant in enumerate(sheet.variants, start=1):
            writer.writerow(
                [
                    sheet.student.id,
                    sheet.student.name,
                    number,
                    variant.bank_id,
                    variant.question_id,
                    variant.variant_id,
                    variant.type,
                    key_cell(variant),
                    _accepted(variant),
                ]
            )
    return out.getvalue()


def _accepted(variant: Variant) -> str:
    """Every accepted answer of a typed question (` | ` between them; `; ` between a fill_in question's gaps)."""
    if variant.type == "fill_in":
        return "; ".join(" | ".join(blank.answers) for blank in variant.blanks)
    return " | ".join(variant.answers) if variant.type in ("short_answer", "numeric") else ""


def key_cell(variant: Variant) -> str:
    """The key as a teacher marks it: the letters of the right options (`B`, `A, C`), or the answer itself."""
    if variant.type in ("multiple_choice", "true_false"):
        return ", ".join(LETTERS[index] for index, choice in enumerate(variant.choices) if choice.correct)
    if variant.type == "fill_in":
        return "; ".join(blank.answers[0] for blank in variant.blanks)
    return variant.key_text  # an ordering question's: the letters in order (`C, A, B`), every order that works


def manifest(exam: Exam) -> dict[str, Any]:
    """What `qbank grade` needs, self-contained: students, their sheets, and every variant dealt (as in JSON)."""
    variants: dict[str, Any] = {}
    for sheet in exam.sheets:
        for variant in sheet.variants:
            variants.setdefault(variant.variant_id, variant.model_dump(mode="json"))
    return {
        "qbank": __version__,
        "title": exam.title,
        "seed": exam.seed,
        "banks": [bank.model_dump(mode="json") for bank in exam.banks],
        "students": [
            {
                "id": sheet.student.id,
                "name": sheet.student.name,
                "file": sheet.file,
                "questions": [
                    {"number": number, "bank_id": v.bank_id, "question_id": v.question_id, "variant_id": v.variant_id}
                    for number, v in enumerate(sheet.variants, start=1)
                ],
            }
            for sheet in exam.sheets
        ],
        "variants": [variants[key] for key in sorted(variants)],
    }


# --- the printed sheet --------------------------------------------------------------------------------------


def sheet_typst(exam: Exam, sheet: Sheet) -> str:
    """A student's sheet as Typst: a header with name and id, every question with its code and a place to answer;
    each page's footer names the student, so loose pages find their owner."""
    t = typeset.text
    student = sheet.student
    parts = [
        typeset.PREAMBLE,
        "#set page(footer: context [#text(size: 8pt)["
        + t(f"{exam.title} · {student.id}")
        + '] #h(1fr) #text(size: 8pt)[#counter(page).display("1 / 1", both: true)]])\n',
        f'#align(center)[#text(size: 16pt, weight: "bold")[{t(exam.title)}]]\n',
        "#v(4pt)\n#grid(columns: (1fr, auto), column-gutter: 12pt, row-gutter: 10pt,\n"
        f"  [#strong[Name:] {t(student.name) if student.name else '#box(width: 1fr, repeat[.])'}],"
        f" [#strong[ID:] {t(student.id)}],\n"
        f"  [#text(size: 9pt)[{t(f'{len(sheet.variants)} questions · seed {exam.seed}')}]], [],\n)\n",
        "#line(length: 100%, stroke: 0.5pt)\n",
    ]
    for number, variant in enumerate(sheet.variants, start=1):
        parts.append(_question_typst(number, variant))
    return "".join(parts)


#: Questions whose code is shorter than this many lines are never split across pages.
KEEP_TOGETHER_LINES = 35
_LETTER_BOX = "box(width: 30pt, height: 16pt, stroke: 0.6pt)"
_BOX = "#box(width: 9pt, height: 9pt, stroke: 0.6pt, baseline: 1pt)"


def _question_typst(number: int, variant: Variant) -> str:
    t = typeset.text
    lines = [
        f"#strong[{t(f'{number}. {variant.title}')}] #h(1fr) "
        f"#text(size: 9pt, fill: luma(90))[{t(f'{variant.category} · {variant.difficulty}')}]\n\n",
        typeset.markdown(variant.stem),
        "\n",
    ]
    if variant.shown_code:
        lines.append(typeset.code_block(variant.shown_code))
        lines.append("\n")
    if variant.type in ("multiple_choice", "true_false"):
        if variant.multiple_answers:
            lines.append(f"#emph[{t('Tick every correct answer.')}]\n\n")
        texts = ["True", "False"] if variant.type == "true_false" else [c.text for c in variant.choices]
        cells = ", ".join(
            f"[{_BOX}], [#strong[{LETTERS[index]}.] {typeset.inline_markdown(text)}]"
            for index, text in enumerate(texts)
        )
        lines.append(f"#grid(columns: (auto, 1fr), column-gutter: 8pt, row-gutter: 7pt, {cells})\n")
    elif variant.type == "matching":
        rows = ", ".join(
            f"[{t(f'{number}.')}], [{typeset.inline_markdown(pair.item)}], {_LETTER_BOX}"
            for number, pair in enumerate(variant.pairs, start=1)
        )
        lines.append(
            f"#grid(columns: (auto, 1fr, auto), column-gutter: 8pt, row-gutter: 6pt, align: horizon, {rows})\n"
        )
        matches = ", ".join(
            f"[#strong[{t(BLOCK_LETTERS[index] + '.')}]], [#raw({typeset.string(match)})]"
            for index, match in enumerate(variant.matches)
        )
        lines.append(f"\n#grid(columns: (auto, 1fr), column-gutter: 8pt, row-gutter: 6pt, {matches})\n")
    elif variant.type == "ordering":
        if variant.orders and len(variant.orders[0]) < len(variant.blocks):
            lines.append(f"#emph[{t('Some blocks do not belong: leave them out.')}]\n\n")
        for index, block in enumerate(variant.blocks):
            lines.append(f"#strong[{t(BLOCK_LETTERS[index] + '.')}]\n")
            lines.append(typeset.code_block(block))
        lines.append(
            f"#grid(columns: (auto, 1fr), column-gutter: 8pt, align: horizon, [{t('Order (letters):')}], "
            "box(width: 100%, height: 22pt, stroke: 0.6pt, radius: 2pt))\n"
        )
    elif variant.type == "fill_in":
        cells = ", ".join(
            f"[{t(f'Gap ({number}):')}], box(width: 100%, height: 20pt, stroke: 0.6pt, radius: 2pt)"
            for number in range(1, len(variant.blanks) + 1)
        )
        lines.append(f"#grid(columns: (auto, 1fr), column-gutter: 8pt, row-gutter: 6pt, align: horizon, {cells})\n")
    else:
        label = "Answer (a number):" if variant.type == "numeric" else "Answer:"
        lines.append(
            f"#grid(columns: (auto, 1fr), column-gutter: 8pt, align: horizon, [{t(label)}], "
            "box(width: 100%, height: 22pt, stroke: 0.6pt, radius: 2pt))\n"
        )
    # A question that fits on a page is kept on one; a longer one may break (it could not fit anyway).
    short = "\n".join([variant.shown_code or "", *variant.blocks]).count("\n") < KEEP_TOGETHER_LINES
    return f"#v(10pt)\n#block(width: 100%, breakable: {'false' if short else 'true'})[\n{''.join(lines)}]\n"


def write_exam(exam: Exam, folder: Path, *, pdf: bool = True, jobs: int | None = None) -> list[Path]:
    """Render every file of the exam, then write them into `folder`: all or none."""
    return write_files(folder, exam_files(exam, pdf=pdf, jobs=jobs))
