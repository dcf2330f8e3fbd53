"""`qbank check`: compare hand-written keys (`answer.claim`) with what torch really does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qbank import answers, display
from qbank.generate import Failure, generate
from qbank.models import Bank, ErrorAnswer, Question, Scalar, StdoutAnswer, ValueAnswer
from qbank.runner import Store, WorkerPool
from qbank.templating import TemplateProblem, render
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
    bank: Bank,
    *,
    variants: int = 20,
    seed: int = 0,
    pool: WorkerPool | None = None,
    jobs: int | None = None,
    store: Store | None = None,
) -> CheckReport:
    """Generate variants (every variant must succeed) and compare each claimed key with the real outcome."""
    result = generate(bank, variants, seed, pool=pool, jobs=jobs, store=store)
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
    """(claim, actual, whether they agree by meaning) for a variant whose question carries a claim; else None."""
    answer, outcome = question.answer, variant.outcome
    claim = getattr(answer, "claim", None)
    if claim is None or outcome is None:
        return None
    try:
        text = render(claim, variant.params).strip() if isinstance(claim, str) else claim_text(claim)
    except TemplateProblem as exc:  # e.g. a division by zero for these parameters: the claim says nothing
        return repr(claim), f"no comparison, because the claim cannot be rendered ({exc})", False
    if isinstance(answer, ErrorAnswer) and isinstance(outcome, ErrorOutcome):
        return _compare_error(text, outcome)
    if isinstance(answer, StdoutAnswer) and isinstance(outcome, StdoutOutcome):
        return repr(text), repr(outcome.stdout.strip()), answers.same(text, outcome.stdout, precision="coarser")
    if isinstance(answer, ValueAnswer) and isinstance(outcome, ValueOutcome):
        actual = answers.of_value(outcome.value)
        return (
            repr(text),
            repr(outcome.value),
            answers.same(text, actual, tolerance=answer.tolerance, precision="coarser"),
        )
    return None


def claim_text(claim: Scalar | list[Scalar]) -> str:
    """A claim written as a TOML value, as Python would print it (so 0.269 keeps its three digits)."""
    return repr(claim) if not isinstance(claim, list) else "[" + ", ".join(map(claim_text, claim)) + "]"


def _compare_error(text: str, outcome: ErrorOutcome) -> tuple[str, str, bool]:
    """An error claim, optionally followed by what is printed ("no error, and prints 3")."""
    claimed, printed = answers.split_printed(text)
    error = outcome.error
    actual = display.error_text(error.model_dump()) if error else "no error (the code runs to the end)"
    read = answers.parse_error(claimed)
    said = "no error" if read == answers.ErrorClaim(None) else f"a {claimed}" if read else repr(claimed)
    truth = answers.error_claim(error.type, error.message) if error else answers.ErrorClaim(None)
    agrees = read is not None and answers.same(read, truth, precision="coarser")
    if printed is not None:
        said += f" and prints {printed!r}"
        actual += f" and prints {outcome.stdout.strip()!r}"
        agrees = agrees and answers.same(printed, outcome.stdout, precision="coarser")
    return said, actual, agrees
