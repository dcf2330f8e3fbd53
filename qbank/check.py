"""`qbank check`: compare hand-written keys (`answer.claim`) with what torch really does."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from qbank import display
from qbank.generate import Failure, generate
from qbank.models import Bank, ErrorAnswer, Question, StdoutAnswer, ValueAnswer
from qbank.runner import WorkerPool
from qbank.templating import render
from qbank.variant import ErrorOutcome, StdoutOutcome, ValueOutcome, Variant


@dataclass(frozen=True)
class Disagreement:
    question_id: str
    params: dict[str, Any]
    claim: str
    actual: str

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        where = f"question '{self.question_id}'" + (f" ({shown})" if shown else "")
        return f"{where}: the key claims {self.claim}, but torch gives {self.actual}"


@dataclass
class CheckReport:
    checked: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.disagreements and not self.failures


def check(
    bank: Bank, *, variants: int = 20, seed: int = 0, pool: WorkerPool | None = None, jobs: int | None = None
) -> CheckReport:
    """Generate variants (every variant must succeed) and compare each claimed key with the real outcome."""
    result = generate(bank, variants, seed, pool=pool, jobs=jobs)
    report = CheckReport(failures=list(result.failures))
    for variant in result.variants:
        question = bank.question(variant.question_id)
        verdict = compare(question, variant)
        if verdict is None:
            continue
        report.checked += 1
        claim, actual, agrees = verdict
        if not agrees:
            report.disagreements.append(Disagreement(question.id, variant.params, claim, actual))
    return report


def compare(question: Question, variant: Variant) -> tuple[str, str, bool] | None:
    """(claim, actual, whether they agree) for a variant whose question carries a claim; else None."""
    answer, outcome = question.answer, variant.outcome
    if isinstance(answer, ErrorAnswer) and answer.claim is not None and isinstance(outcome, ErrorOutcome):
        claimed_none = answer.claim.strip().lower() in ("none", "no error")
        claim = "no error" if claimed_none else f"a {answer.claim}"
        if outcome.error is None:
            return claim, "no error (the code runs to the end)", claimed_none
        actual = display.error_text(outcome.error.model_dump())
        return claim, actual, not claimed_none and outcome.error.type == answer.claim.strip()
    if isinstance(answer, StdoutAnswer) and answer.claim is not None and isinstance(outcome, StdoutOutcome):
        claim = render(answer.claim, variant.params).strip()
        return repr(claim), repr(outcome.stdout.strip()), claim == outcome.stdout.strip()
    if isinstance(answer, ValueAnswer) and answer.claim is not None and isinstance(outcome, ValueOutcome):
        return (
            repr(answer.claim),
            repr(outcome.value),
            _same_value(answer.claim, outcome.value, answer.tolerance),
        )
    return None


def _same_value(claim: Any, actual: Any, tolerance: float) -> bool:
    if isinstance(claim, list) and isinstance(actual, list):
        return len(claim) == len(actual) and all(
            _same_value(c, a, tolerance) for c, a in zip(claim, actual, strict=True)
        )
    numbers = (int, float)
    if isinstance(claim, numbers) and isinstance(actual, numbers) and not isinstance(claim, bool):
        return math.isclose(claim, actual, abs_tol=max(tolerance, 1e-9))
    return bool(claim == actual)
