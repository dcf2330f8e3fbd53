"""Grading an exam made by `qbank exam`: each student's answers scored with the answer model (`qbank.answers`), and
for every question which options were chosen — and so which mistakes the class made, since every wrong option of a
computed question is the outcome of a named mistake.

An answer to a choice question is the option's letter(s) (`B`, `a, c`), `true`/`false`, or the option's text as a
student would write it (compared by meaning: `(4, 7, 40)` is `torch.Size([4, 7, 40])`). A typed answer is right
when it means the same as an accepted answer (numbers within the question's tolerance). Multiple-answer questions
score 1 only when exactly the right options are ticked.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pydantic import ValidationError

from qbank import answers, display
from qbank.errors import QbankError
from qbank.exam import MANIFEST, csv_rows
from qbank.exporting import LETTERS, Files
from qbank.variant import BLOCK_LETTERS, Choice, Variant
from qbank.writing import write_files

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


@dataclass
class Grading:
    title: str
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
    if any(answers.same(answer, key, tolerance=tolerance, errors=errors) for key in accepted):
        return 1.0, (RIGHT,)
    return 0.0, (WRONG_TYPED,)


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
    given = _answers(answers_path, sheets)
    grading = Grading(title=str(document.get("title", "")))
    for student in document["students"]:
        grading.students.append((student["id"], student["name"], len(student["questions"])))
        for entry in student["questions"]:
            variant = variants[entry["variant_id"]]
            answer = given.get((student["id"], entry["number"]), "")
            points, chosen = score(variant, answer)
            grading.marks.append(Mark(student["id"], student["name"], entry["number"], variant, answer, points, chosen))
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


def _answers(path: Path, sheets: dict[str, dict[str, Any]]) -> dict[tuple[str, int], str]:
    """(student id, question number on the sheet) → answer. A question may also be named by its question id."""
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
    return given


def _number(question: str, sheet: dict[str, Any]) -> int | None:
    for entry in sheet["questions"]:
        qualified = f"{entry['bank_id']}/{entry['question_id']}"
        if question in (str(entry["number"]), entry["question_id"], qualified):
            return int(entry["number"])
    return None


# --- files --------------------------------------------------------------------------------------------------


def grading_files(grading: Grading) -> Files:
    """`grades.csv` (one row per student), `scored.csv` (one row per answer), `report.md` and a chart per question."""
    files: Files = {"grades.csv": _grades_csv(grading), "scored.csv": _scored_csv(grading)}
    report = [f"# {_md(grading.title)}: report\n\n" if grading.title else "# Report\n\n"]
    total = sum(mark.score for mark in grading.marks)
    report.append(
        f"{len(grading.students)} students, {len(grading.marks)} answers to mark, {total:g} right "
        f"({_percent(total, len(grading.marks))}).\n"
    )
    for (bank_id, question_id), marks in _by_question(grading).items():
        title = marks[0].variant.title
        right = sum(mark.score for mark in marks)
        answered = sum(1 for mark in marks if mark.chosen != (NO_ANSWER,))
        counts = _ranked(Counter(label for mark in marks for label in mark.chosen))
        chart = f"chart-{_slug(bank_id)}-{_slug(question_id)}.svg"
        files[chart] = bar_chart(title, counts)
        report.append(f"\n## {_md(title)}\n\n`{bank_id}/{question_id}` · {marks[0].variant.category}\n")
        report.append(
            f"\n{len(marks)} students, {answered} answered, {right:g} right ({_percent(right, len(marks))}).\n"
        )
        report.append("\n| chosen | students |\n|---|---:|\n")
        for label, count in counts:
            report.append(f"| {_md(label)} | {count} |\n")
        wrong = _common_wrong(marks)
        if wrong:
            report.append("\nMost common wrong answers: " + ", ".join(f"`{t}` ×{n}" for t, n in wrong) + ".\n")
        report.append(f"\n![Chosen options: {_md(title)}]({chart})\n")
    files["report.md"] = "".join(report)
    return files


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    """The right answer first, then what was chosen most; no answer last."""
    first = {RIGHT: 0, NO_ANSWER: 2}
    return sorted(counts.items(), key=lambda item: (first.get(item[0], 1), -item[1], item[0]))


def _by_question(grading: Grading) -> dict[tuple[str, str], list[Mark]]:
    grouped: dict[tuple[str, str], list[Mark]] = {}
    for mark in grading.marks:
        grouped.setdefault((mark.variant.bank_id, mark.variant.question_id), []).append(mark)
    return grouped


def _common_wrong(marks: list[Mark], most: int = 5) -> list[tuple[str, int]]:
    """Typed wrong answers, those that mean the same counted together (first spelling shown)."""
    groups: list[list[str]] = []
    for mark in marks:
        if mark.chosen != (WRONG_TYPED,):
            continue
        text = mark.answer.strip()
        errors = mark.variant.about_errors
        group = next((g for g in groups if answers.same(g[0], text, errors=errors)), None)
        if group is None:
            groups.append([text])
        else:
            group.append(text)
    ranked = sorted(groups, key=lambda g: -len(g))[:most]
    return [(group[0].replace("`", "'"), len(group)) for group in ranked]


def _grades_csv(grading: Grading) -> str:
    most = max((count for _, _, count in grading.students), default=0)
    scores: dict[str, dict[int, float]] = {}
    for mark in grading.marks:
        scores.setdefault(mark.student, {})[mark.number] = mark.score
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "name", "score", "out_of", "percent", *(f"q{n}" for n in range(1, most + 1))])
    for student, name, count in grading.students:
        own = scores.get(student, {})
        got = sum(own.values())
        cells = [f"{own[n]:g}" if n in own else "" for n in range(1, most + 1)]
        writer.writerow([student, name, f"{got:g}", count, f"{100 * got / count:.1f}" if count else "", *cells])
    return out.getvalue()


def _scored_csv(grading: Grading) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "name", "question", "bank", "question_id", "variant_id", "answer", "score", "chosen"])
    for mark in grading.marks:
        v = mark.variant
        where = [v.bank_id, v.question_id, v.variant_id]
        writer.writerow(
            [mark.student, mark.name, mark.number, *where, mark.answer, f"{mark.score:g}", " + ".join(mark.chosen)]
        )
    return out.getvalue()


def _percent(part: float, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "–"


def _md(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


# --- the chart ----------------------------------------------------------------------------------------------

_BAR_COLOURS = {
    RIGHT: "#1a7f37",
    NO_ANSWER: "#afb8c1",
    NOT_AN_OPTION: "#8c959f",
    SEVERAL: "#8c959f",
    WRONG_TYPED: "#cf222e",
}


def bar_chart(title: str, counts: list[tuple[str, int]]) -> str:
    """A horizontal bar chart (SVG): how many students chose each origin; right green, mistakes orange."""
    label_width, bar_width, row, top = 330, 260, 26, 34
    most = max((count for _, count in counts), default=1) or 1
    height = top + row * len(counts) + 10
    width = label_width + bar_width + 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f"<title>{escape(title)}: options chosen</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="20" font-weight="bold">{escape(_cut(title, 80))}</text>',
    ]
    for index, (label, count) in enumerate(counts):
        y = top + index * row
        colour = _BAR_COLOURS.get(label, "#bc4c00" if label.startswith("mistake:") else "#6e7781")
        length = max(1, round(bar_width * count / most))
        parts.append(f'<text x="8" y="{y + 16}" fill="#24292f">{escape(_cut(label, 46))}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 4}" width="{length}" height="{row - 8}" fill="{colour}"/>')
        parts.append(f'<text x="{label_width + length + 6}" y="{y + 16}" fill="#24292f">{count}</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def grade_and_write(folder: Path, answers_path: Path, out: Path | None = None) -> tuple[Grading, list[Path]]:
    """Grade, then write the grading files into `out` (default: the exam's folder), all or none."""
    grading = grade(folder, answers_path)
    return grading, write_files(out or folder, grading_files(grading))
