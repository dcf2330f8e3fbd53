"""Item analysis of traced responses: per question and variant as the LMS computes it, per option as Canvas does, and
what no LMS can compute — per named mistake (across variants, and across the questions that share it) and per
parameter value.

Every number is computed twice: on qbank's marks (by meaning, so a right answer the LMS marked wrong counts as right)
and on the LMS's own marks, which reproduce the LMS's statistics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from qbank.classroom.results import Response, Results
from qbank.classroom.statistics import ItemStats, QuizStats, item_stats, point_biserial, quiz_stats, wilson
from qbank.grading import origin

Basis = Literal["qbank", "lms"]
#: Below this discrimination index (%) a question separates strong and weak students poorly (Moodle's docs call
#: below 20 % weak, and a negative one a question to check).
WEAK_DISCRIMINATION = 20.0

Key = tuple[str, str]  # (bank id, question id)
AttemptKey = tuple[str, int]  # (student, attempt)


@dataclass(frozen=True)
class QuestionRow:
    key: Key
    title: str
    category: str
    #: On qbank's marks, and on the LMS's (None when the LMS's marks are not known for every response).
    stats: ItemStats
    lms: ItemStats | None


@dataclass(frozen=True)
class VariantRow:
    key: Key
    variant_id: str
    params: dict[str, Any]
    stats: ItemStats
    lms: ItemStats | None


@dataclass(frozen=True)
class OptionRow:
    key: Key
    variant_id: str
    letter: str
    text: str
    origin: str
    offered: int
    chosen: int
    point_biserial: float | None


@dataclass(frozen=True)
class MistakeRow:
    #: The questions whose options the mistake gave (one, or every question of the bank that names it).
    keys: tuple[Key, ...]
    name: str
    offered: int
    chosen: int
    low: float
    high: float


@dataclass(frozen=True)
class ParameterRow:
    key: Key
    name: str
    value: str
    attempts: int
    facility: float


@dataclass(frozen=True)
class Analysis:
    quiz: QuizStats
    quiz_lms: QuizStats | None
    questions: list[QuestionRow]
    variants: list[VariantRow]
    options: list[OptionRow]
    #: Per question, and (where a name recurs) across the bank's questions.
    mistakes: list[MistakeRow]
    bank_mistakes: list[MistakeRow]
    parameters: list[ParameterRow]


def _marks(responses: Sequence[Response], basis: Basis) -> dict[AttemptKey, dict[Key, float]] | None:
    """Attempt → question → mark, or None if some mark of that basis is unknown."""
    table: dict[AttemptKey, dict[Key, float]] = defaultdict(dict)
    for response in responses:
        mark = response.score if basis == "qbank" else response.lms_mark
        if mark is None:
            return None
        attempt = (response.record.student, response.record.attempt)
        table[attempt][(response.variant.bank_id, response.variant.question_id)] = mark
    return table


def _question_stats(
    responses: Sequence[Response], table: dict[AttemptKey, dict[Key, float]]
) -> tuple[dict[Key, ItemStats], dict[str, ItemStats], QuizStats]:
    totals = {attempt: sum(marks.values()) for attempt, marks in table.items()}
    by_question: dict[Key, list[Response]] = defaultdict(list)
    by_variant: dict[str, list[Response]] = defaultdict(list)
    for response in responses:
        by_question[(response.variant.bank_id, response.variant.question_id)].append(response)
        by_variant[response.variant.variant_id].append(response)

    def attempt_of(response: Response) -> AttemptKey:
        return response.record.student, response.record.attempt

    questions = {}
    for key, group in by_question.items():
        marks = [table[attempt_of(r)][key] for r in group]
        others = [totals[attempt_of(r)] - mark for r, mark in zip(group, marks, strict=True)]
        questions[key] = item_stats(marks, others)
    variants = {}
    for variant_id, group in by_variant.items():
        key = (group[0].variant.bank_id, group[0].variant.question_id)
        variants[variant_id] = item_stats(
            [table[attempt_of(r)][key] for r in group], [totals[attempt_of(r)] for r in group]
        )
    items = [[table[attempt_of(r)][key] for r in group] for key, group in by_question.items()]
    most = max((len(marks) for marks in table.values()), default=0)
    return questions, variants, quiz_stats(list(totals.values()), items, float(most))


def analyse(results: Results) -> Analysis:
    responses = results.responses
    mine = _marks(responses, "qbank")
    assert mine is not None
    questions, variants, quiz = _question_stats(responses, mine)
    lms_table = _marks(responses, "lms")
    lms = _question_stats(responses, lms_table) if lms_table is not None else None
    first: dict[Key, Response] = {}
    variant_first: dict[str, Response] = {}
    for response in responses:
        first.setdefault((response.variant.bank_id, response.variant.question_id), response)
        variant_first.setdefault(response.variant.variant_id, response)
    question_rows = [
        QuestionRow(key, r.variant.title, r.variant.category, questions[key], lms[0][key] if lms else None)
        for key, r in first.items()
    ]
    variant_rows = [
        VariantRow(
            (r.variant.bank_id, r.variant.question_id),
            variant_id,
            r.variant.params,
            variants[variant_id],
            lms[1][variant_id] if lms else None,
        )
        for variant_id, r in sorted(variant_first.items(), key=lambda item: (list(first).index(_key(item[1])), item[0]))
    ]
    totals = {attempt: sum(marks.values()) for attempt, marks in mine.items()}
    return Analysis(
        quiz=quiz,
        quiz_lms=lms[2] if lms else None,
        questions=question_rows,
        variants=variant_rows,
        options=_options(responses, totals),
        mistakes=_mistakes(responses, by_bank=False),
        bank_mistakes=_mistakes(responses, by_bank=True),
        parameters=_parameters(responses),
    )


def _key(response: Response) -> Key:
    return response.variant.bank_id, response.variant.question_id


def _options(responses: Sequence[Response], totals: dict[AttemptKey, float]) -> list[OptionRow]:
    """Each option of each choice variant: offered, chosen, and its point-biserial against the attempts' totals."""
    by_variant: dict[str, list[Response]] = defaultdict(list)
    for response in responses:
        if response.variant.choices:
            by_variant[response.variant.variant_id].append(response)
    rows = []
    for variant_id, group in by_variant.items():
        variant = group[0].variant
        scores = [totals[(r.record.student, r.record.attempt)] for r in group]
        for index, choice in enumerate(variant.choices):
            chose = [index in r.options for r in group]
            rows.append(
                OptionRow(
                    _key(group[0]),
                    variant_id,
                    "ABCDEFGHIJ"[index],
                    choice.text,
                    origin(choice),
                    len(group),
                    sum(chose),
                    point_biserial(chose, scores),
                )
            )
    return rows


def _mistakes(responses: Sequence[Response], *, by_bank: bool) -> list[MistakeRow]:
    """How often each named mistake was offered and chosen: per question, or (by_bank) per name across questions;
    most chosen (by share) first. Only names offered in two or more questions are kept across the bank."""
    offered: dict[tuple[Any, str], int] = defaultdict(int)
    chosen: dict[tuple[Any, str], int] = defaultdict(int)
    keys: dict[tuple[Any, str], set[Key]] = defaultdict(set)
    for response in responses:
        for index, choice in enumerate(response.variant.choices):
            if not choice.mistake:
                continue
            group = (response.variant.bank_id if by_bank else _key(response), choice.mistake)
            offered[group] += 1
            chosen[group] += index in response.options
            keys[group].add(_key(response))
    rows = []
    for group, count in offered.items():
        if by_bank and len(keys[group]) < 2:
            continue
        low, high = wilson(chosen[group], count)
        rows.append(MistakeRow(tuple(sorted(keys[group])), group[1], count, chosen[group], low, high))
    return sorted(rows, key=lambda row: (-row.chosen / row.offered, -row.chosen, row.name))


def _parameters(responses: Sequence[Response]) -> list[ParameterRow]:
    """Facility (qbank's marks) by each value of each parameter of each question."""
    groups: dict[tuple[Key, str, str], list[float]] = defaultdict(list)
    for response in responses:
        for name, value in response.variant.params.items():
            groups[(_key(response), name, _value_text(value))].append(response.score)
    rows = [
        ParameterRow(key, name, value, len(marks), 100 * sum(marks) / len(marks))
        for (key, name, value), marks in groups.items()
    ]
    return sorted(rows, key=lambda row: (row.key, row.name, _sort_value(row.value)))


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sort_value(text: str) -> tuple[int, float, str]:
    try:
        return 0, float(text), ""
    except ValueError:
        return 1, 0.0, text
