"""`qbank stress`: make many variants and look for the rare broken case (after R/exams' stresstest_exercise).

Per question: variants made and failed, distinct parameter sets and answers, where the correct choice
lands (a learner must not be able to guess it: tested against a uniform spread with a chi-square test),
distractor collisions, and run times.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

from qbank import answers, display
from qbank.generate import Generation
from qbank.models import Bank
from qbank.variant import Variant

#: Below this p-value the correct-choice positions are reported as not uniform.
UNIFORM_P = 0.001


@dataclass
class QuestionStats:
    question_id: str
    made: int = 0
    failed: int = 0
    distinct_params: int = 0
    distinct_answers: int = 0
    positions: Counter[int] = field(default_factory=Counter)
    choices: int = 0
    collisions: int = 0
    run_seconds: list[float] = field(default_factory=list)
    position_p: float | None = None
    #: Variants where the key's numbers all come from the stem or code but a wrong option's do not.
    odd_numbers: int = 0
    odd_example: str = ""
    odd_values: str = ""
    #: How many variants showed each of the question's mistakes as an option (every mistake named, 0 included).
    mistakes_shown: Counter[str] = field(default_factory=Counter)

    @property
    def uniform(self) -> bool:
        return self.position_p is None or self.position_p >= UNIFORM_P


def chi_square_p(observed: list[int]) -> float:
    """P-value of observed counts against a uniform spread (upper tail of chi-square, k-1 dof)."""
    total, k = sum(observed), len(observed)
    if k < 2 or total == 0:
        return 1.0
    expected = total / k
    statistic = sum((count - expected) ** 2 / expected for count in observed)
    return _upper_regularized_gamma((k - 1) / 2, statistic / 2)


def _upper_regularized_gamma(a: float, x: float) -> float:
    """Q(a, x), by series for x < a + 1 and by continued fraction otherwise (Numerical Recipes 6.2)."""
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return math.exp(log_prefix) * h


def _numbers(text: str) -> set[float]:
    return {abs(number) for number in answers.numbers_in(text)}


def _odd_option(variant: Variant) -> tuple[str, list[float]] | None:
    """A wrong option whose numbers appear nowhere in the stem, code or key, while the key's all do: the option and
    those numbers.

    A learner who notices that the key only repeats numbers from the code can rule such an option out.
    """
    given = _numbers(variant.stem + "\n" + (variant.code or ""))
    key = set().union(*(_numbers(display.plain_of(c.text)) for c in variant.correct_choices))
    if not key <= given:
        return None
    for choice in variant.choices:
        plain = display.plain_of(choice.text)
        nowhere = _numbers(plain) - given - key
        if not choice.correct and nowhere:
            return plain, sorted(nowhere)
    return None


def warnings(bank: Bank, rows: list[QuestionStats]) -> list[str]:
    """What makes a question weaker than it looks, though every variant is right."""
    found = []
    for question, row in zip(bank.questions, rows, strict=True):
        if question.params and row.distinct_params > 1 and row.distinct_answers == 1 and row.made > 1:
            found.append(
                f"question '{row.question_id}': the key is the same in all {row.made} variants: a learner who saw "
                "one knows them all (vary a parameter that changes the answer)"
            )
        if row.odd_numbers:
            found.append(
                f"question '{row.question_id}': in {row.odd_numbers} of {row.made} variants a wrong option has numbers "
                f"found nowhere in the stem, code or key (e.g. {row.odd_example!r}, whose {row.odd_values} "
                f"{'appear' if ',' in row.odd_values else 'appears'} nowhere else), while the key's come from the "
                "code: learners can rule it out"
            )
        never = [name for name, count in row.mistakes_shown.items() if count == 0]
        if never and row.made >= 10:
            found.append(
                f"question '{row.question_id}': mistake{'s' if len(never) > 1 else ''} "
                f"{', '.join(map(repr, never))} never shown in {row.made} variants (they never apply, never run, or "
                "always mean the same as the key or another option)"
            )
    return found


def mistake_lines(rows: list[QuestionStats]) -> list[str]:
    """For each question with mistakes: in how many of its variants each mistake was an option."""
    return [
        f"mistakes shown, question '{row.question_id}' ({row.made} variants): "
        + ", ".join(f"{name} {count}" for name, count in row.mistakes_shown.items())
        for row in rows
        if row.mistakes_shown
    ]


def summarize(bank: Bank, result: Generation) -> list[QuestionStats]:
    stats = {
        q.id: QuestionStats(q.id, mistakes_shown=Counter(dict.fromkeys((m.name for m in q.mistakes), 0)))
        for q in bank.questions
    }
    params: dict[str, set[str]] = {q.id: set() for q in bank.questions}
    answers: dict[str, set[str]] = {q.id: set() for q in bank.questions}
    for failure in result.failures:
        stats[failure.question_id].failed += 1
    for variant in result.variants:
        entry = stats[variant.question_id]
        entry.made += 1
        params[variant.question_id].add(repr(sorted(variant.params.items())))
        answers[variant.question_id].add(variant.key_text)
        entry.collisions += result.collisions.get(variant.variant_id, 0)
        if variant.variant_id in result.run_seconds:
            entry.run_seconds.append(result.run_seconds[variant.variant_id])
        if variant.type == "multiple_choice" and variant.outcome is not None:
            odd = _odd_option(variant)
            if odd is not None:
                entry.odd_numbers += 1
                if not entry.odd_example:
                    entry.odd_example = odd[0]
                    entry.odd_values = ", ".join(f"{number:g}" for number in odd[1])
        entry.mistakes_shown.update(choice.mistake for choice in variant.choices if choice.mistake)
        if variant.type == "multiple_choice" and not variant.multiple_answers:
            entry.choices = max(entry.choices, len(variant.choices))
            entry.positions[next(i for i, c in enumerate(variant.choices) if c.correct)] += 1
    for entry in stats.values():
        entry.distinct_params = len(params[entry.question_id])
        entry.distinct_answers = len(answers[entry.question_id])
        if entry.choices and entry.made >= 5 * entry.choices:
            entry.position_p = chi_square_p([entry.positions[i] for i in range(entry.choices)])
    return list(stats.values())


def table(rows: list[QuestionStats]) -> str:
    header = (
        "question",
        "made",
        "failed",
        "params",
        "answers",
        "correct position",
        "p",
        "collisions",
        "run ms min/med/max",
    )
    lines = [header]
    for row in rows:
        spread = "/".join(str(row.positions[i]) for i in range(row.choices)) if row.choices else "-"
        p = f"{row.position_p:.3f}" if row.position_p is not None else "-"
        if row.run_seconds:
            times = [1000 * t for t in row.run_seconds]
            timing = f"{min(times):.1f}/{statistics.median(times):.1f}/{max(times):.1f}"
        else:
            timing = "-"
        lines.append(
            (
                row.question_id,
                str(row.made),
                str(row.failed),
                str(row.distinct_params),
                str(row.distinct_answers),
                spread,
                p,
                str(row.collisions),
                timing,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )
