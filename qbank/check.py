"""`qbank check`: compare hand-written keys (`answer.claim`) with what torch really does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qbank import answers, display
from qbank.generate import Failure, generate
from qbank.models import Bank, ErrorAnswer, Question, Scalar, StdoutAnswer, ValueAnswer
from qbank.runner import Store, WorkerPool
from qbank.templating import TemplateProblem, render
from qbank.variant import ErrorOutcome, Outcome, StdoutOutcome, ValueOutcome


@dataclass(frozen=True)
class Disagreement:
    question_id: str
    params: dict[str, Any]
    claim: str
    actual: str
    #: The bank's distractor that means what torch gives: `(its number from 1, its text)`. The most common wrong
    #: key: the right answer is offered, but the wrong option is marked.
    distractor: tuple[int, str] | None = None

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        where = f"question '{self.question_id}'" + (f" ({shown})" if shown else "")
        said = f"{where}: the key claims {self.claim}, but torch gives {self.actual}"
        if self.distractor is not None:
            number, text = self.distractor
            said += f", which is distractor {number} ({text!r}): the right answer is offered but not marked"
        return said


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
    sandbox: bool = True,
) -> CheckReport:
    """Generate variants (every variant must succeed) and compare each claimed key with the real outcome.

    A variant that ran but failed afterwards (e.g. a distractor meant the same as torch's answer, so too few options
    were left) is compared too: when its claim is wrong, the wrong claim is what is reported, not the failure."""
    result = generate(bank, variants, seed, pool=pool, jobs=jobs, store=store, sandbox=sandbox)
    report = CheckReport()

    def disagrees(question_id: str, params: dict[str, Any], outcome: Outcome | None) -> bool:
        question = bank.question(question_id)
        verdict = compare(question, params, outcome)
        if verdict is None:
            return False
        report.checked += 1
        claim, actual, agrees = verdict
        if not agrees:
            distractor = _offered_truth(question, params, outcome) if outcome is not None else None
            report.disagreements.append(Disagreement(question.id, params, claim, actual, distractor))
        return not agrees

    for variant in result.variants:
        disagrees(variant.question_id, variant.params, variant.outcome)
    report.failures = [f for f in result.failures if not disagrees(f.question_id, f.params, f.outcome)]
    return report


def compare(question: Question, params: dict[str, Any], outcome: Outcome | None) -> tuple[str, str, bool] | None:
    """(claim, actual, whether they agree by meaning) for an outcome of a question that carries a claim; else None."""
    answer = question.answer
    claim = getattr(answer, "claim", None)
    if claim is None or outcome is None:
        return None
    try:
        text = render(claim, params).strip() if isinstance(claim, str) else claim_text(claim)
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


def _offered_truth(question: Question, params: dict[str, Any], outcome: Outcome) -> tuple[int, str] | None:
    """The bank's distractor (number from 1, rendered text) that means what torch gave, if one does."""
    truth: str | answers.Answer
    errors = isinstance(outcome, ErrorOutcome)
    if isinstance(outcome, ErrorOutcome):
        error = outcome.error
        truth = answers.error_claim(error.type, error.message) if error else answers.ErrorClaim(None)
    elif isinstance(outcome, StdoutOutcome):
        truth = outcome.stdout.strip()
    else:
        truth = answers.of_value(outcome.value)
    tolerance = getattr(question.answer, "tolerance", 0.0)
    for number, distractor in enumerate(question.distractors, start=1):
        try:
            text = display.plain_of(render(distractor.text, params)).strip()
        except TemplateProblem:
            continue
        if errors:
            text = answers.split_printed(text)[0]
        if text and answers.same(text, truth, tolerance=tolerance, errors=errors, precision="coarser"):
            return number, text
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
