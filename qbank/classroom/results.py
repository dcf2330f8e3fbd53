"""Answer records tied to their variants and scored by meaning: the step between any reader and any report.

Each record is traced to its variant by evidence: the variant id where the source keeps one, else the question text
the source shows (`qbank.classroom.identify`), else — a report downloaded without question texts — the responses
themselves, when they fit one variant only. A record that fits no variant, or several, is a problem named by file,
line and column, never a guess. Then every answer is scored by `qbank.grading.score` (by meaning), beside the mark the
source gave (or, for Moodle without its Grades report, the mark Moodle's rules give), so that the two can be compared.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qbank.classroom.identify import Finder, as_letters, chosen_options, tokens
from qbank.classroom.records import AnswerRecord, Attempt, Reading, Separator
from qbank.errors import QbankError
from qbank.grading import NO_ANSWER, NOT_AN_OPTION, score
from qbank.variant import BLOCK_LETTERS, Variant

#: A source's own marking rules: (variant, answer, chosen options) → the mark it gives, or None when unknown.
Marker = Callable[[Variant, str, Sequence[int] | None], float | None]
#: Below this share of answered records traced to a variant, the whole file is taken for another quiz.
MOST_MUST_MATCH = 0.5
#: What `_variant_of` says of a variant whose question matched but whose options did not.
OTHER_OPTIONS = "its options differ"
#: The origin of a chosen option that is not among the variant's (made by another version of qbank).
UNKNOWN_OPTION = "an option not made by this run (no mistake named)"


@dataclass(frozen=True)
class Response:
    """A record with its variant, what it chose and its marks."""

    record: AnswerRecord
    variant: Variant
    #: The answer as `qbank grade` reads it (option letters for a choice question; the typed text otherwise).
    answer: str
    #: What it chose, as origins: `right answer`, `mistake: …`, `no answer`, …
    chosen: tuple[str, ...]
    #: The positions in `variant.choices` of the options chosen (choice questions; empty otherwise).
    options: tuple[int, ...]
    #: qbank's score, by meaning.
    score: float
    #: The mark the source gave (or its rules give); None when unknown.
    lms_mark: float | None


@dataclass
class Results:
    """Every traced response of one or more sources, with what could not be traced."""

    responses: list[Response] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    #: Records that could not be traced or read: one line each, naming file, line and column.
    problems: list[str] = field(default_factory=list)
    #: What was left out on purpose, and checks that did not add up.
    notes: list[str] = field(default_factory=list)
    #: How the LMS marks were obtained ("the Grades report", "Moodle's rules", …), per source.
    marks_from: list[str] = field(default_factory=list)


def trace(
    reading: Reading,
    finder: Finder,
    *,
    separator: Separator = "; ",
    marker: Marker | None = None,
    marks: dict[tuple[str, int], dict[str, float]] | None = None,
    results: Results | None = None,
) -> Results:
    """Tie every record of `reading` to its variant and score it. `marks` (student, attempt → position → mark) are
    the source's own marks; without them, `marker` applies the source's rules; records may carry marks themselves."""
    results = results or Results()
    results.notes += reading.notes
    results.attempts += reading.attempts
    questions = _position_questions(reading, finder)
    answered = traced = 0
    drifted: set[str] = set()
    for record in reading.records:
        if record.position in questions and questions[record.position] is None:
            continue  # a question that is not qbank's (noted once below)
        variant, problem = _variant_of(record, finder, questions.get(record.position))
        answered += bool(record.answer or record.question_text)
        if variant is None:
            results.problems.append(f"{record.where}: {record.name or record.student}: {problem}")
            continue
        if problem == OTHER_OPTIONS:
            drifted.add(variant.title)
        traced += bool(record.answer or record.question_text)
        results.responses.append(_scored(record, variant, finder, separator, marker, marks))
    for position, question in sorted(questions.items()):
        if question is None:
            results.notes.append(
                f"{reading.source}: question {position} is none of the banks' questions (no row matches a variant); "
                "it is left out"
            )
    for title in sorted(drifted):
        results.notes.append(
            f"{reading.source}: the options shown with '{title}' are not all those of its variant as made now (the "
            "quiz was made by another version of qbank or of the bank): each answer is still scored against the key, "
            "but an option this run did not make has no mistake named; give the quiz's JSON export with --from"
        )
    if answered and traced < MOST_MUST_MATCH * answered:
        raise QbankError(
            f"{reading.source}: only {traced} of {answered} answers match a variant of the banks given. The quiz "
            "was most likely made with another seed, another number of variants, other banks or another version of "
            "qbank: give the same --bank, --seed and --variants as `qbank generate` had, or its JSON export with "
            f"--from. Nothing was written. First problems: {'; '.join(results.problems[:3])}"
        )
    if marks is not None:
        results.marks_from.append(f"{reading.source}: the marks of the Grades report given")
    elif marker is not None:
        results.marks_from.append(f"{reading.source}: the source's marking rules, applied to each response")
        results.notes += _unbalanced(reading, results)
    else:
        results.marks_from.append(f"{reading.source}: the marks in the report")
    return results


def _position_questions(reading: Reading, finder: Finder) -> dict[str, tuple[str, str] | None]:
    """Which bank question each position of the source holds (None: none of them), judged from every record that has
    a question text or variant id; positions without any evidence are left out of the map."""
    votes: dict[str, Counter[tuple[str, str]]] = {}
    evidence: Counter[str] = Counter()
    for record in reading.records:
        found: list[Variant] = []
        if record.variant_id is not None:
            found = [v for v in finder.variants if v.variant_id == record.variant_id]
        elif record.question_text is not None:
            found = [f.variant for f in finder.find(record.question_text)]
        elif record.answer:  # no text: the choice questions of which the answer is an option
            found = [v for v in finder.variants if v.choices and chosen_options(v, record.answer, finder.options(v))]
            if not found:
                continue
        else:
            continue
        evidence[record.position] += 1
        for question in {(v.bank_id, v.question_id) for v in found}:
            votes.setdefault(record.position, Counter())[question] += 1
    questions: dict[str, tuple[str, str] | None] = {}
    for position in evidence:
        if position in votes:
            questions[position] = votes[position].most_common(1)[0][0]
            continue
        # No record fits a variant: a question of the banks with other numbers (another seed: its records are
        # problems), or another question altogether (left out).
        text = next((r.question_text for r in reading.records if r.position == position and r.question_text), None)
        alike = finder.resembling(text) if text else None
        questions[position] = (alike.bank_id, alike.question_id) if alike else None
    return questions


def _variant_of(record: AnswerRecord, finder: Finder, question: tuple[str, str] | None) -> tuple[Variant | None, str]:
    """The record's variant, or None and why."""
    if record.variant_id is not None:
        named = [v for v in finder.variants if v.variant_id == record.variant_id]
        return (named[0], "") if named else (None, f"variant {record.variant_id} is not among the variants given")
    if record.question_text is not None:
        found = finder.find(record.question_text)
        matches = [f.variant for f in found]
        if len(matches) == 1:
            return matches[0], "" if found[0].exact else OTHER_OPTIONS
        if not matches:
            return None, f"the question text fits no variant ({_start(record.question_text)})"
        ids = ", ".join(v.variant_id[:8] for v in matches)
        return None, f"the question text fits {len(matches)} variants ({ids}); they cannot be told apart"
    # No question text: the responses themselves, where they fit one variant of the position's question only.
    candidates = [v for v in finder.variants if question is None or (v.bank_id, v.question_id) == question]
    if record.right_answer:
        candidates = [v for v in candidates if tokens(record.right_answer) == tokens(_key_shown(v))] or candidates
    if record.answer:
        fitting = [
            v for v in candidates if v.choices and chosen_options(v, record.answer, finder.options(v)) is not None
        ]
        candidates = fitting or candidates
    if len(candidates) == 1:
        return candidates[0], ""
    return None, (
        f"without the question text its variant cannot be told from the answer alone ({len(candidates)} variants fit); "
        "download the report with 'Question text' shown"
    )


def _key_shown(variant: Variant) -> str:
    """The key as an LMS's "right answer" column shows it (the option's text, or the first accepted answer)."""
    if variant.choices:
        return "; ".join(choice.text for choice in variant.correct_choices)
    return variant.answers[0] if variant.answers else variant.key_text


def _scored(
    record: AnswerRecord,
    variant: Variant,
    finder: Finder,
    separator: Separator,
    marker: Marker | None,
    marks: dict[tuple[str, int], dict[str, float]] | None,
) -> Response:
    answer = record.answer
    options: tuple[int, ...] = ()
    chosen: tuple[str, ...]
    if not answer:
        points, chosen = 0.0, (NO_ANSWER,)
    elif variant.type in ("multiple_choice", "true_false"):
        picked = chosen_options(variant, answer, finder.options(variant), separator)
        if picked is None:
            points, chosen = 0.0, (UNKNOWN_OPTION if record.question_text else NOT_AN_OPTION,)
        else:
            options = tuple(picked)
            answer = as_letters(picked)
            points, chosen = score(variant, answer)
    else:
        answer = _as_typed(variant, answer, separator)
        points, chosen = score(variant, answer)
    if marks is not None:
        lms = marks.get((record.student, record.attempt), {}).get(record.position)
    elif record.source_mark is not None:
        lms = record.source_mark
    elif marker is not None:
        lms = marker(variant, record.answer, options or None)
    else:
        lms = None
    return Response(record, variant, answer, chosen, options, points, lms)


def _as_typed(variant: Variant, answer: str, separator: Separator) -> str:
    """An LMS's response to a fill-in, matching or ordering question in the form `qbank grade` reads."""
    if variant.type == "fill_in":  # Moodle's Cloze: `part 1: x; part 2: y`; Canvas: `x,y`
        parts = re.split(r";\s*(?=part \d+:)", answer) if separator == "; " else re.split(r"(?<!\\),", answer)
        values = [re.sub(r"^part \d+:\s*", "", part).replace("\\,", ",").strip() for part in parts]
        return "; ".join(values)
    if variant.type == "matching":  # `item -> match; …` (Moodle) or `item=>match,…` (Canvas): a letter per item
        arrow = "->" if separator == "; " else "=>"
        pairs = [part.split(arrow, 1) for part in re.split(r";\s*|(?<!\\),", answer) if arrow in part]
        chosen = {tuple(tokens(item)): tokens(match) for item, match in pairs}
        letters = []
        for pair in variant.pairs:
            got = next((m for item, m in chosen.items() if item == tokens(pair.item)), None)
            index = next((i for i, match in enumerate(variant.matches) if tokens(match) == got), None)
            letters.append(BLOCK_LETTERS[index] if index is not None else "?")
        return ", ".join(letters) if pairs else answer
    if variant.type == "ordering":  # the items in the order given, `; ` between them
        items = [tokens(part) for part in answer.split("; ")]
        blocks = [tokens(block) for block in variant.blocks]
        letters = [BLOCK_LETTERS[blocks.index(item)] if item in blocks else "?" for item in items]
        return ", ".join(letters) if len(items) > 1 else answer
    return answer


def _unbalanced(reading: Reading, results: Results) -> list[str]:
    """Attempts whose marks, as the source's rules give them, do not add up to the grade the source shows."""
    mine: dict[tuple[str, int], list[float | None]] = {}
    for response in results.responses:
        if response.record.where.file == reading.source:
            key = (response.record.student, response.record.attempt)
            mine.setdefault(key, []).append(response.lms_mark)
    positions = len({record.position for record in reading.records})
    found = []
    for attempt in reading.attempts:
        marks = mine.get((attempt.student, attempt.attempt), [])
        if attempt.grade is None or not attempt.out_of or len(marks) != positions or any(m is None for m in marks):
            continue  # only an attempt whose every mark is known can be checked
        expected = sum(m for m in marks if m is not None) / positions * attempt.out_of
        if abs(expected - attempt.grade) > 0.0051 * max(1.0, attempt.out_of / 10):
            found.append(
                f"{attempt.where}: the marks of {attempt.name or attempt.student}'s attempt add up to "
                f"{expected:.2f}, but the report's grade is {attempt.grade:g}: pass the Grades report (marks for "
                "each question) with --grades for the marks the LMS really gave"
            )
    return found


def _start(text: str) -> str:
    words = " ".join(text.split())
    return repr(words if len(words) <= 70 else words[:69] + "…")
