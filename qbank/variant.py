"""The Variant: one concrete question, the intermediate representation every exporter reads.

Exporters see only Variants and the bank's metadata (`BankInfo`); never templates, parameters' specs
or torch. The JSON export is these models dumped as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qbank.answers import claims_errors, spread
from qbank.display import plain_of
from qbank.models import Bank, Category, Difficulty, QuestionType

#: The letters that name the blocks of an ordering question (so it has at most 26).
BLOCK_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

ChoiceSource = Literal["bank", "answer", "mistake", "distractor", "near-miss"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Frozen):
    #: Markdown, as every other text of a variant.
    text: str
    correct: bool
    feedback: str = ""
    #: Where the option came from: written in the `bank`, the computed `answer`, a `mistake` that was run,
    #: a bank `distractor`, or a generated `near-miss`.
    source: ChoiceSource = "bank"
    #: The name of the mistake whose outcome this option is (source `mistake`): what a learner who picks it
    #: most likely did. Grading reports count the mistakes chosen by it.
    mistake: str | None = None


def blank_marker(number: int) -> str:
    """What stands for blank `number` (from 1) in `Variant.gapped_code`: an identifier, so that highlighting keeps it
    whole and every format can put its own gap there."""
    return f"__qbank_blank_{number}__"


class BlankKey(_Frozen):
    """One blank of a fill_in variant: every value that gives the same outcome as the code that ran."""

    #: The parameter the blank stands for.
    name: str
    #: The value the code ran with first, then every other value tried that gives the same outcome (as text).
    answers: list[str]


class MatchPair(_Frozen):
    """One item of a matching variant and its match (the outcome of the item's code)."""

    #: What learners see for the item (Markdown): its label, or its code as a code block.
    item: str
    #: The snippet the item ran (the question's code, then the item's), runnable on its own.
    code: str
    #: The outcome it gave, as shown among the matches.
    match: str


class ErrorInfo(_Frozen):
    type: str
    message: str


class StdoutOutcome(_Frozen):
    stdout: str


class ValueOutcome(_Frozen):
    value: Any
    expression: str


class ErrorOutcome(_Frozen):
    error: ErrorInfo | None
    #: What the code printed before it raised (or ran to the end).
    stdout: str = ""


Outcome = StdoutOutcome | ValueOutcome | ErrorOutcome


class BankInfo(_Frozen):
    id: str
    title: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    badge: str | None = None

    @classmethod
    def of(cls, bank: Bank) -> BankInfo:
        return cls(id=bank.id, title=bank.title, description=bank.description, tags=bank.tags, badge=bank.badge)


class Variant(_Frozen):
    bank_id: str
    question_id: str
    #: Stable: derived from (bank, question, params) only, so a re-export updates instead of duplicating.
    variant_id: str
    params: dict[str, Any]
    title: str
    category: Category
    type: QuestionType
    multiple_answers: bool = False
    difficulty: Difficulty
    time_limit: int
    attempts: int
    stem: str
    #: The exact snippet that ran, runnable on its own; None for a static question.
    code: str | None
    #: How many first lines of `code` are setup that learners are not shown (`setup.show = false`).
    hidden_lines: int = 0
    choices: list[Choice] = Field(default_factory=list)
    #: Accepted answers: spellings for short_answer, the number for numeric.
    answers: list[str] = Field(default_factory=list)
    tolerance: float | None = None
    hint: str | None = None
    hints: list[str] = Field(default_factory=list)
    explanation: str
    tags: list[str] = Field(default_factory=list)
    outcome: Outcome | None = None
    #: A fill_in variant's blanks, numbered from 1 in the order of `gapped_code`.
    blanks: list[BlankKey] = Field(default_factory=list)
    #: A fill_in variant's code as learners see it (without hidden setup lines), blank N written `__qbank_blank_N__`.
    gapped_code: str | None = None
    #: An ordering variant's blocks of code, in the (shuffled) order learners see them.
    blocks: list[str] = Field(default_factory=list)
    #: Every order of `blocks` (their positions, from 0) that gives the outcome: the author's first.
    orders: list[list[int]] = Field(default_factory=list)
    #: A matching variant's items with their matches, and the distinct matches in the (shuffled) order shown.
    pairs: list[MatchPair] = Field(default_factory=list)
    matches: list[str] = Field(default_factory=list)

    @property
    def shown_code(self) -> str | None:
        """The code as learners see it: `code` without its hidden setup lines, and a fill_in question's blanks as
        numbered gaps (`__(1)__`), so that no format shows the value that fills one."""
        if self.gapped_code is not None:
            return self.with_gaps(self.gapped_code, lambda number, _: f"__({number})__")
        if self.code is None or not (self.hidden_lines or self.blocks):
            return self.code
        lines = self.code.split("\n")
        if self.blocks:
            # An ordering question's blocks are its key: learners see them shuffled, and above them only the setup
            # that is shown (the lines between the hidden setup and the blocks, which the code ends with).
            block_lines = sum(self.blocks[index].count("\n") + 1 for index in self.orders[0])
            setup = "\n".join(lines[self.hidden_lines : len(lines) - block_lines]).strip("\n")
            return setup or None
        return "\n".join(lines[self.hidden_lines :])

    def with_gaps(self, text: str, gap: Callable[[int, BlankKey], str]) -> str:
        """`text` (the gapped code, or HTML or Markdown made from it) with each blank's marker replaced by
        `gap(number, blank)`."""
        for number, blank in enumerate(self.blanks, start=1):
            text = text.replace(blank_marker(number), gap(number, blank))
        return text

    @property
    def about_errors(self) -> bool:
        """Whether answers to this variant are claims about an exception (`RuntimeError: …`, `no error`) and are
        compared as such: its outcome is an exception or none, or (a question written by hand) its key reads as one.
        The one rule for generation, grading and every format."""
        if self.outcome is not None:
            return isinstance(self.outcome, ErrorOutcome)
        keys = [plain_of(choice.text) for choice in self.correct_choices] or self.answers[:1]
        return claims_errors(keys, [plain_of(choice.text) for choice in self.choices])

    @property
    def correct_choices(self) -> list[Choice]:
        return [choice for choice in self.choices if choice.correct]

    @property
    def key_text(self) -> str:
        """The correct answer as Markdown, whatever the question type."""
        if self.type == "matching":
            return "; ".join(
                f"{number} → {BLOCK_LETTERS[self.matches.index(pair.match)]}"
                for number, pair in enumerate(self.pairs, start=1)
            )
        if self.type == "ordering":
            return " or ".join(", ".join(BLOCK_LETTERS[index] for index in order) for order in self.orders)
        if self.type == "fill_in":
            return "; ".join(
                f"({number}) " + " or ".join(f"`{answer}`" for answer in blank.answers)
                for number, blank in enumerate(self.blanks, start=1)
            )
        if self.type in ("multiple_choice", "true_false"):
            return "; ".join(choice.text for choice in self.correct_choices)
        if self.type == "numeric":
            # A computed key is written to its digits, and its tolerance is at least half a unit of the last one:
            # only a wider tolerance is worth saying. A static key keeps up to 12 digits; people read six.
            shown = self.answers[0] if len(self.answers[0]) <= 12 else f"{float(self.answers[0]):.6g}"
            implied = spread(self.answers[0])
            wider = self.tolerance and self.tolerance > implied * (1 + 1e-9)
            return f"{shown} (± {self.tolerance:g})" if wider else shown
        return self.answers[0]
