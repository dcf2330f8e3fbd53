"""Moodle's quiz reports, read as a teacher downloads them (Quiz → Results → Responses, and Grades; CSV).

The Responses report (Moodle 4.5, `mod/quiz/report/responses`): UTF-8 with a BOM; the identity columns the site shows
(names always, e-mail where the teacher may see it), State, Started, Completed, Duration, `Grade/10.00`, then per slot
`Question N` (a plain-text summary of the question), `Response N` (the chosen option's text, the typed text trimmed,
`True`/`False`) and `Right answer N`, each shown only when the teacher ticked it; `-` for no response. Headers follow
the site's language (`Frage N`, `Antwort N`, `Richtige Antwort N` in German). With "all tries" an attempt takes as
many rows as its most-tried question: names and times on every row, e-mail on the first, State and Grade on the last,
and `-` where a question had fewer tries. An attempt in progress has `-` for Completed and every response; Moodle's
statistics leave it out, and so does this reader (with a note).

The report gives no mark per question. Those come from the Grades report with "marks for each question"
(`--grades`), or else from Moodle's own rules applied to the response (`moodle_mark`), checked against each attempt's
grade: a sum that does not add up is said, never hidden.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from qbank import answers
from qbank.classroom.records import AnswerRecord, Attempt, Reading, Separator, Where, cell, numbered_columns, read_rows
from qbank.errors import QbankError
from qbank.exporters.moodle import FRACTIONS
from qbank.variant import Variant

#: Column headers, in the languages whose Moodle reports have been seen (English, German).
QUESTION = ("Question", "Frage")
RESPONSE = ("Response", "Antwort")
RIGHT_ANSWER = ("Right answer", "Richtige Antwort")
STATE = ("state", "status", "zustand")
GRADE = re.compile(r"^(?:Grade|Bewertung|Note)\s*/\s*([\d.,]+)$", re.IGNORECASE)
#: The Grades report's per-question marks: `Q. 1 /1.11` (`F. 1 /1,11` in German).
SLOT_MARK = re.compile(r"^[A-Za-z]{1,3}\.\s*(\d+)\s*/\s*([\d.,]+)$")
FIRST_NAME = ("first name", "vorname")
LAST_NAME = ("last name", "surname", "nachname")
EMAIL = ("email address", "email", "e-mail-adresse", "e-mail")
#: States of an attempt that has not been submitted (Moodle's statistics leave them out).
NOT_FINISHED = {"in progress", "in bearbeitung", "overdue", "überfällig", "never submitted", "nie abgegeben"}
BLANK = "-"


def _number(text: str) -> float | None:
    """A number as Moodle writes it in a report (`10.00`, or `10,00` in a German one)."""
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return None


class ResponsesReader:
    """Moodle's quiz Responses report (last try or all tries; any columns shown; English or German). Its marks come
    from the Grades report when one is given, else from Moodle's rules (`moodle_mark`)."""

    kind = "Moodle Responses report"
    #: How the report joins several chosen options.
    separator: Separator = "; "

    def recognizes(self, header: Sequence[str]) -> bool:
        return bool(numbered_columns(header, RESPONSE))

    def read(self, path: Path, rows: list[list[str]]) -> Reading:
        header = [name.strip() for name in rows[0]]
        responses = numbered_columns(header, RESPONSE)
        questions = numbered_columns(header, QUESTION)
        rights = numbered_columns(header, RIGHT_ANSWER)
        state = next((i for i, name in enumerate(header) if name.casefold() in STATE), None)
        grade = next((i for i, name in enumerate(header) if GRADE.match(name)), None)
        if state is None:
            if grade is None or grade < 4:
                raise QbankError(
                    f"{path}, line 1: a Moodle Responses report has a State column before Started, Completed and "
                    f"Duration; none of {', '.join(map(repr, header[: min(responses.values())]))} is one"
                )
            state = grade - 4
        started, completed = state + 1, state + 2
        identity = list(range(state))
        first = next((i for i in identity if header[i].casefold() in FIRST_NAME), None)
        last = next((i for i in identity if header[i].casefold() in LAST_NAME), None)
        email = next((i for i in identity if header[i].casefold() in EMAIL), None)
        names = [i for i in identity if i != email]
        out_of = _number(GRADE.match(header[grade]).group(1)) if grade is not None else None  # type: ignore[union-attr]
        reading = Reading(path, self.kind)
        # Rows of one attempt: consecutive, with the same names and start time (several with "all tries").
        groups: list[list[tuple[int, list[str]]]] = []
        for line, row in enumerate(rows[1:], start=2):
            if not any(part.strip() for part in row):
                continue
            key = [cell(row, i) for i in names] + [cell(row, started)]
            if groups and [cell(groups[-1][0][1], i) for i in names] + [cell(groups[-1][0][1], started)] == key:
                groups[-1].append((line, row))
            else:
                groups.append([(line, row)])
        attempts: dict[str, int] = {}
        seen: dict[tuple[str, str], int] = {}
        for group in groups:
            line, row = group[0]
            last_row = group[-1][1]
            person = " ".join(part for part in (cell(row, first), cell(row, last)) if part)
            person = person or " ".join(cell(row, i) for i in names)
            student = next((cell(r, email) for _, r in group if cell(r, email)), "") or person
            if not student:
                raise QbankError(
                    f"{path}, line {line}: the attempt names no student (columns {', '.join(header[:state])})"
                )
            when = cell(row, started)
            if (student, when) in seen:
                raise QbankError(
                    f"{path}, line {line}: {person or student} has a second attempt started {when!r}, as on line "
                    f"{seen[student, when]}: the same rows twice (two downloads joined?)"
                )
            seen[student, when] = line
            status = cell(last_row, state)
            if status.casefold() in NOT_FINISHED or cell(last_row, completed) == BLANK:
                reading.notes.append(
                    f"{path}, line {line}: the attempt of {person or student} is {status or 'not finished'!r}; it is "
                    "left out, as Moodle's statistics leave it out"
                )
                continue
            attempts[student] = attempts.get(student, 0) + 1
            number = attempts[student]
            grade_text = cell(last_row, grade)
            reading.attempts.append(
                Attempt(student, person, number, _number(grade_text), out_of, Where(path, line, header[grade or 0]))
            )
            for slot, column in sorted(responses.items()):
                # With all tries, the last try is the last row where the question has one.
                tried = [(ln, r) for ln, r in group if cell(r, column) != BLANK]
                at_line, at_row = tried[-1] if tried else group[-1]
                answer = cell(at_row, column)
                text_column = questions.get(slot)
                reading.records.append(
                    AnswerRecord(
                        student=student,
                        name=person,
                        attempt=number,
                        position=str(slot),
                        answer="" if answer == BLANK else answer,
                        where=Where(path, at_line, header[column]),
                        question_text=_text(at_row, text_column) or _text(row, text_column),
                        right_answer=_text(at_row, rights.get(slot)) or _text(row, rights.get(slot)),
                        tries=max(1, len(tried)),
                    )
                )
        return reading


def _text(row: Sequence[str], index: int | None) -> str | None:
    text = cell(row, index).replace("\xa0", " ")
    return None if not text or text == BLANK else text


class GradesReader:
    """Moodle's Grades report with marks for each question (`Q. 1 /1.11`): the marks Moodle gave, by attempt."""

    kind = "Moodle Grades report"

    def marks(self, path: Path) -> dict[tuple[str, int], dict[str, float]]:
        """(student, attempt number) → slot → the mark as a fraction of the slot's marks (no response: 0)."""
        rows = read_rows(path, "Grades report")
        header = [name.strip() for name in rows[0]]
        slots = {i: SLOT_MARK.match(name) for i, name in enumerate(header)}
        columns = {i: (m.group(1), _number(m.group(2)) or 0.0) for i, m in slots.items() if m}
        if not columns:
            raise QbankError(
                f"{path}, line 1: no per-question marks (`Q. 1 /1.00` …): download the Grades report with "
                "'Marks for each question' ticked"
            )
        state = next((i for i, name in enumerate(header) if name.casefold() in STATE), min(columns) - 5)
        first = next((i for i in range(state) if header[i].casefold() in FIRST_NAME), None)
        last = next((i for i in range(state) if header[i].casefold() in LAST_NAME), None)
        email = next((i for i in range(state) if header[i].casefold() in EMAIL), None)
        names = [i for i in range(state) if i != email]
        found: dict[tuple[str, int], dict[str, float]] = {}
        attempts: dict[str, int] = {}
        for row in rows[1:]:
            person = " ".join(part for part in (cell(row, first), cell(row, last)) if part)
            person = person or " ".join(cell(row, i) for i in names)
            student = cell(row, email) or person
            if not student or cell(row, state).casefold() in NOT_FINISHED or cell(row, state + 2) == BLANK:
                continue  # the overall average row at the end has no student; unfinished attempts are left out
            attempts[student] = attempts.get(student, 0) + 1
            marks: dict[str, float] = {}
            for index, (slot, out_of) in columns.items():
                value = _number(cell(row, index))
                marks[slot] = 0.0 if value is None or not out_of else value / out_of
            found[student, attempts[student]] = marks
        return found


# --- Moodle's grading, for when no Grades report is given ---------------------------------------------------------


def moodle_mark(variant: Variant, answer: str, chosen: Sequence[int] | None) -> float | None:
    """The mark Moodle 4.5 gives a response (a fraction), by its rules as qbank writes the question: a choice is right
    only as the key's option (several: the sum of their fractions, at least 0); a short answer equals an accepted one,
    case-blind but spacing-exact; a number is read as in an English site (`,` separates thousands) and is right
    within the tolerance. None for the types whose response summaries qbank does not read (fill-in, ordering,
    matching): pass the Grades report for those."""
    if not answer:
        return 0.0
    if variant.type in ("multiple_choice", "true_false"):
        if not chosen:
            return 0.0
        if not variant.multiple_answers:
            return float(variant.choices[chosen[0]].correct)
        right = sum(choice.correct for choice in variant.choices)
        wrong = len(variant.choices) - right
        total = sum(float(FRACTIONS[right]) if variant.choices[i].correct else -float(FRACTIONS[wrong]) for i in chosen)
        return min(1.0, max(0.0, total / 100))
    if variant.type == "short_answer":
        return float(any(answer.casefold() == accepted.casefold() for accepted in variant.answers))
    if variant.type == "numeric":
        match = re.match(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)", answer.replace(",", ""))
        key = answers.number_of(variant.answers[0])
        if match is None or key is None:
            return 0.0
        value = float(match.group(1))
        return float(math.isfinite(value) and abs(value - key) <= (variant.tolerance or 0.0) + 1e-12 * max(1, abs(key)))
    return None
