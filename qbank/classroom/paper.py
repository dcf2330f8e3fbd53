"""A paper exam's answers (the CSV `qbank grade` reads) as answer records, and the grading files with the report.

The exam's manifest names every student's variants, so each record knows its variant; scoring is
`qbank.grading.score`, and the report is the one LMS results get (`qbank.classroom.report`), without LMS marks.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from qbank.classroom.records import AnswerRecord, Attempt, Where
from qbank.classroom.report import report_files
from qbank.classroom.results import Response, Results
from qbank.exporting import Files
from qbank.grading import Grading, grade
from qbank.writing import write_files


def results_of(grading: Grading) -> Results:
    """Every mark of a graded paper exam as a traced response (one attempt per student; no LMS marks)."""
    results = Results(marks_from=[f"{grading.source}: none (a paper exam): qbank's marks only"])
    for student, name, _ in grading.students:
        results.attempts.append(Attempt(student, name, 1, None, None, Where(grading.source, 1, "student")))
    for mark in grading.marks:
        record = AnswerRecord(
            student=mark.student,
            name=mark.name,
            attempt=1,
            position=str(mark.number),
            answer=mark.answer,
            where=Where(grading.source, mark.line or 0, "answer"),
            variant_id=mark.variant.variant_id,
        )
        results.responses.append(
            Response(record, mark.variant, mark.answer, mark.chosen, mark.options, mark.score, None)
        )
    return results


def grading_files(grading: Grading) -> Files:
    """`grades.csv` (one row per student), `scored.csv` (one row per answer), and the report: `report.md`,
    `report.html`, a chart per question and the CSVs of its tables."""
    files = report_files(results_of(grading), grading.title or "Exam")
    for lms_only in ("grades.csv", "regrade.csv", "responses.csv"):  # scored.csv and grades.csv below say it
        files.pop(lms_only, None)
    files["grades.csv"] = _grades_csv(grading)
    files["scored.csv"] = _scored_csv(grading)
    return files


def grade_and_write(folder: Path, answers_path: Path, out: Path | None = None) -> tuple[Grading, list[Path]]:
    """Grade, then write the grading files into `out` (default: the exam's folder), all or none."""
    grading = grade(folder, answers_path)
    return grading, write_files(out or folder, grading_files(grading))


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
