"""Canvas's classic-quiz Student Analysis report (Quiz → Quiz Statistics → Student Analysis; CSV).

Its format, as canvas-lms writes it (`app/models/quizzes/quiz_statistics/student_analysis.rb`): `name, id, sis_id,
section, section_id, section_sis_id, submitted` (`attempt` too when every attempt is included; `sis_id`, the SIS
section id and `root_account` only where the account has them), then for every question any student was given a
column `"<question id>: <question text without tags>"` with the answer, and a column headed by the question's points
with the points given; then `n correct, n incorrect, score`. A question a student was not given (another variant of
its group) has both cells empty. Several answers are joined by `,` (a comma inside one as `\\,`); fill-in-the-blank
answers likewise, blank by blank; matching as `left=>right` pairs.

No real Canvas export was at hand when this reader was written: its tests read files written from that source.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from qbank.classroom.records import AnswerRecord, Attempt, Reading, Separator, Where, cell
from qbank.errors import QbankError

_QUESTION = re.compile(r"^(\d+):\s?(.*)$", re.S)
_TAIL = ("n correct", "n incorrect", "score")


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


class StudentAnalysisReader:
    """Canvas's Student Analysis CSV."""

    kind = "Canvas Student Analysis report"
    #: How the report joins several chosen options (a comma inside one is `\\,`).
    separator: Separator = ","

    def recognizes(self, header: Sequence[str]) -> bool:
        names = [name.strip().casefold() for name in header]
        return tuple(names[-3:]) == _TAIL and "submitted" in names

    def read(self, path: Path, rows: list[list[str]]) -> Reading:
        header = [name.strip() for name in rows[0]]
        names = [name.casefold() for name in header]
        first_question = names.index("submitted") + 1 + ("attempt" in names)
        attempt_column = names.index("attempt") if "attempt" in names else None
        name_column = names.index("name") if "name" in names else None
        id_column = names.index("id") if "id" in names else None
        questions: list[tuple[int, str, str, float]] = []  # (answer column, question id, text, points possible)
        index = first_question
        while index < len(header) - 3:
            match = _QUESTION.match(header[index])
            points = _number(header[index + 1]) if index + 1 < len(header) else None
            if match is None or points is None:
                raise QbankError(
                    f"{path}, line 1, column {index + 1}: expected a question column '<id>: <text>' followed by its "
                    f"points, found {header[index]!r}"
                )
            questions.append((index, match.group(1), html.unescape(match.group(2)), points))
            index += 2
        reading = Reading(path, self.kind)
        attempts: dict[str, int] = {}
        seen: dict[tuple[str, str], int] = {}
        for line, row in enumerate(rows[1:], start=2):
            if not any(part.strip() for part in row):
                continue
            student = cell(row, id_column) or cell(row, name_column)
            person = cell(row, name_column) or student
            if not student:
                raise QbankError(f"{path}, line {line}: the row names no student (columns 'name' and 'id' are empty)")
            given = cell(row, attempt_column)
            if (student, given) in seen:
                raise QbankError(
                    f"{path}, line {line}: a second row of student {person!r}"
                    + (f", attempt {given}," if given else "")
                    + f" as on line {seen[student, given]}"
                )
            seen[student, given] = line
            attempts[student] = attempts.get(student, 0) + 1
            number = int(given) if given.isdigit() else attempts[student]
            total = sum(points for *_, points in questions)
            reading.attempts.append(
                Attempt(student, person, number, _number(cell(row, len(header) - 1)), total, Where(path, line, "score"))
            )
            for column, question_id, text, points in questions:
                scored = cell(row, column + 1)
                if not scored and not cell(row, column):
                    continue  # not given this question (another of its group)
                mark = _number(scored)
                reading.records.append(
                    AnswerRecord(
                        student=student,
                        name=person,
                        attempt=number,
                        position=question_id,
                        answer=cell(row, column),
                        where=Where(path, line, header[column][:60]),
                        question_text=text,
                        source_mark=None if mark is None or not points else mark / points,
                    )
                )
        return reading
