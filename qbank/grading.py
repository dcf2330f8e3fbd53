"""Grading an exam made by `qbank exam`: each student's answers scored with the answer model (`qbank.answers`), and
for every question which options were chosen — and so which mistakes the class made, since every wrong option of a
computed question is the outcome of a named mistake.

An answer to a choice question is the option's letter(s) (`B`, `a, c`), `true`/`false`, or the option's text as a
student would write it (compared by meaning: `(4, 7, 40)` is `torch.Size([4, 7, 40])`). A typed answer is right
when it means the same as an accepted answer (numbers within the question's tolerance). Multiple-answer questions
score 1 only when exactly the right options are ticked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from qbank import answers, display
from qbank.errors import QbankError
from qbank.exam import MANIFEST, csv_rows
from qbank.exporting import LETTERS
from qbank.variant import BLOCK_LETTERS, Choice, Variant

NO_ANSWER = "no answer"
NOT_AN_OPTION = "not one of the options"
SEVERAL = "means several options"
RIGHT = "right answer"
WRONG_TYPED = "wrong answer"
_LETTERS = re.compile(r"[A-Ja-j][.)]?(?:\s*[,;/&+ ]\s*[A-Ja-j][.)]?)*")
_TRUE, _FALSE = {"true", "t", "yes", "y", "1"}, {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class Mark:
    """One student's answer to one question on their sheet."""

    student: str
    name: str
    number: int
    variant: Variant
    answer: str
    score: float
    #: What the answer chose, as origins: `right answer`, `mistake: …`, `no answer`, …
    chosen: tuple[str, ...]
    #: The line of the answers file the answer is on (None: the file has no row for it).
    line: int | None = None
    #: The positions in `variant.choices` of the options it chose (a choice question).
    options: tuple[int, ...] = ()


@dataclass
class Grading:
    title: str
    #: The answers file graded.
    source: Path
    #: Every sheet's questions in order, answered or not.
    marks: list[Mark] = field(default_factory=list)
    #: Every student: (id, name, how many questions their sheet has).
    students: list[tuple[str, str, int]] = field(default_factory=list)


def origin(choice: Choice) -> str:
    """Where an option came from, as a teacher reads it in the report."""
    if choice.correct:
        return RIGHT
    plain = " ".join(display.plain_of(choice.text).split())
    if choice.source == "mistake" and choice.mistake:
        return f"mistake: {choice.mistake}"
    if choice.source == "near-miss":
        return "near miss (a made-up value close to the key)"
    if choice.source == "distractor":
        return f"distractor: {plain}"
    return f"wrong: {plain}"


def score(variant: Variant, answer: str) -> tuple[float, tuple[str, ...]]:
    """An answer's score (0 or 1) and what it chose."""
    answer = answer.strip()
    if not answer:
        return 0.0, (NO_ANSWER,)
    errors = variant.about_errors
    if variant.type in ("multiple_choice", "true_false"):
        picked = _picked(variant, answer, errors)
        if not picked:
            return 0.0, (NOT_AN_OPTION if picked is None else SEVERAL,)
        right = {index for index, choice in enumerate(variant.choices) if choice.correct}
        return float(picked == right), tuple(origin(variant.choices[index]) for index in sorted(picked))
    if variant.type == "matching":  # each item's letter, in the items' order: `B, A, C` (or `BAC`)
        letters = [BLOCK_LETTERS.find(letter.upper()) for letter in re.findall(r"[A-Za-z]", answer)]
        matched = letters == [variant.matches.index(pair.match) for pair in variant.pairs]
        return float(matched), (RIGHT if matched else WRONG_TYPED,)
    if variant.type == "ordering":  # the blocks' letters in order: `C, A, B` or `CAB`
        order = [BLOCK_LETTERS.find(letter.upper()) for letter in re.findall(r"[A-Za-z]", answer)]
        ordered = order in variant.orders
        return float(ordered), (RIGHT if ordered else WRONG_TYPED,)
    if variant.type == "fill_in":  # one value per gap, separated by `;` (or `,` when no value holds one)
        given = [part.strip() for part in re.split(r";" if ";" in answer else r",", answer)]
        if len(given) != len(variant.blanks):
            return 0.0, (WRONG_TYPED,)
        filled = all(
            any(answers.same(value, accepted) for accepted in blank.answers)
            for value, blank in zip(given, variant.blanks, strict=True)
        )
        return float(filled), (RIGHT if filled else WRONG_TYPED,)
    accepted = variant.answers
    tolerance = (variant.tolerance or 0.0) if variant.type == "numeric" else 0.0
    readings = [answer]
    if variant.type == "numeric" and re.fullmatch(r"\s*[+-]?\d+,\d+\s*", answer):
        readings.append(answer.replace(",", "."))  # a decimal comma (`0,6537`), as much of the world writes it
    if any(answers.same(text, key, tolerance=tolerance, errors=errors) for text in readings for key in accepted):
        return 1.0, (RIGHT,)
    return 0.0, (WRONG_TYPED,)


def picked_options(variant: Variant, answer: str) -> set[int]:
    """The options of a choice question an answer chose (none for other questions, or an answer that names none)."""
    if variant.type not in ("multiple_choice", "true_false") or not answer.strip():
        return set()
    return _picked(variant, answer.strip(), variant.about_errors) or set()


def _picked(variant: Variant, answer: str, errors: bool) -> set[int] | None:
    """The options an answer chose (by letter, true/false or text); None when it names none of them, and an empty
    set when its text means more than one option (`RuntimeError` when two options are RuntimeErrors)."""
    count = len(variant.choices)
    # Letters, separated (`A, C`) or, where several options may be chosen, run together (`AC`).
    if _LETTERS.fullmatch(answer) or (variant.multiple_answers and re.fullmatch(r"[A-Ja-j]{2,10}", answer)):
        letters = {LETTERS.index(letter.upper()) for letter in re.findall(r"[A-Ja-j]", answer)}
        if all(index < count for index in letters):
            return letters
    if variant.type == "true_false" and answer.lower() in _TRUE | _FALSE:
        wanted = "True" if answer.lower() in _TRUE else "False"
        return {index for index, choice in enumerate(variant.choices) if choice.text == wanted}
    meant = {
        index
        for index, choice in enumerate(variant.choices)
        if answers.same(answer, display.plain_of(choice.text), errors=errors)
    }
    return set() if len(meant) > 1 else meant or None


def grade(folder: Path, answers_path: Path) -> Grading:
    """Score the answers in `answers_path` (CSV: student, question, answer) against the exam in `folder`."""
    document = _manifest(folder)
    variants = _variants(folder, document)
    sheets: dict[str, dict[str, Any]] = {student["id"]: student for student in document["students"]}
    given, lines = _answers(answers_path, sheets)
    grading = Grading(title=str(document.get("title", "")), source=answers_path)
    for student in document["students"]:
        grading.students.append((student["id"], student["name"], len(student["questions"])))
        for entry in student["questions"]:
            variant = variants[entry["variant_id"]]
            where = (student["id"], entry["number"])
            answer = given.get(where, "")
            points, chosen = score(variant, answer)
            grading.marks.append(
                Mark(
                    student["id"],
                    student["name"],
                    entry["number"],
                    variant,
                    answer,
                    points,
                    chosen,
                    line=lines.get(where),
                    options=tuple(sorted(picked_options(variant, answer))),
                )
            )
    return grading


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QbankError(f"{path}: not found; grade the folder that `qbank exam --out` wrote") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QbankError(f"{path}: cannot be read as an exam manifest: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("students"), list):
        raise QbankError(f"{path}: not an exam manifest (no list of students)")
    return document


def _variants(folder: Path, document: dict[str, Any]) -> dict[str, Variant]:
    found: dict[str, Variant] = {}
    for index, data in enumerate(document.get("variants", [])):
        try:
            variant = Variant.model_validate(data)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(map(str, problem["loc"]))
            raise QbankError(f"{folder / MANIFEST}: variants[{index}].{where}: {problem['msg']}") from None
        found[variant.variant_id] = variant
    for student in document["students"]:
        for entry in student["questions"]:
            if entry["variant_id"] not in found:
                raise QbankError(
                    f"{folder / MANIFEST}: student '{student['id']}' has variant {entry['variant_id']}, which the "
                    "manifest does not hold"
                )
    return found


def _answers(
    path: Path, sheets: dict[str, dict[str, Any]]
) -> tuple[dict[tuple[str, int], str], dict[tuple[str, int], int]]:
    """(student id, question number on the sheet) → answer, and → the line it is on. A question may also be named
    by its question id."""
    rows = csv_rows(path, "answers")
    header = [cell.strip().lower() for cell in rows[0]]
    columns: dict[str, int] = {}
    for wanted, names in (("student", ("student", "id", "student_id")), ("question", ("question",))):
        found = next((header.index(name) for name in names if name in header), None)
        if found is None:
            raise QbankError(
                f"{path}, line 1: the answers file needs a header with the columns student, question and answer; "
                f"found {', '.join(map(repr, rows[0]))}"
            )
        columns[wanted] = found
    if "answer" not in header:
        raise QbankError(f"{path}, line 1: the answers file has no 'answer' column")
    columns["answer"] = header.index("answer")
    given: dict[tuple[str, int], str] = {}
    lines: dict[tuple[str, int], int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cell = {name: row[index].strip() if index < len(row) else "" for name, index in columns.items()}
        sheet = sheets.get(cell["student"])
        if sheet is None:
            raise QbankError(f"{path}, line {line}: no student '{cell['student']}' sat this exam")
        number = _number(cell["question"], sheet)
        if number is None:
            numbers = len(sheet["questions"])
            raise QbankError(
                f"{path}, line {line}: student '{cell['student']}' has no question '{cell['question']}' (give its "
                f"number on the sheet, 1 to {numbers}, or its question id)"
            )
        if (cell["student"], number) in lines:
            raise QbankError(
                f"{path}, line {line}: a second answer of student '{cell['student']}' to question {number} "
                f"(the first is on line {lines[cell['student'], number]})"
            )
        lines[cell["student"], number] = line
        given[cell["student"], number] = row[columns["answer"]] if columns["answer"] < len(row) else ""
    return given, lines


def _number(question: str, sheet: dict[str, Any]) -> int | None:
    for entry in sheet["questions"]:
        qualified = f"{entry['bank_id']}/{entry['question_id']}"
        if question in (str(entry["number"]), entry["question_id"], qualified):
            return int(entry["number"])
    return None
