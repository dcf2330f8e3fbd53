"""The bank format: what a bank file may say, validated by Pydantic.

A bank file is TOML, one bank per file. `qbank schema` prints the JSON Schema of `Bank`.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

Category = Literal["Predict Output", "Conceptual", "Hyperparameter", "Metrics", "Debug"]
QuestionType = Literal["multiple_choice", "short_answer", "numeric", "true_false", "fill_in", "ordering", "matching"]
Difficulty = Literal["beginner", "intermediate", "advanced", "expert"]
Scalar = bool | int | float | str

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
#: Options are lettered A to J in every format.
MAX_CHOICES = 10
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = {
    "answer",
    "answer_type",
    "outcome",
    "blank",
    "value",
    "loop",
    "range",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
}
#: The most values a blank may be tried with (each one is a run of the code).
MAX_BLANK_CANDIDATES = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- parameters ---------------------------------------------------------------------------------


class IntParam(_Strict):
    """An integer from `min` to `max` inclusive, in steps of `step`."""

    type: Literal["int"]
    min: int
    max: int
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntParam:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is smaller than min ({self.min})")
        return self

    # Counted and indexed, never listed: a range may hold more values than memory (max = 10**18).
    def count(self) -> int:
        return (self.max - self.min) // self.step + 1

    def value(self, index: int) -> int:
        return self.min + index * self.step


class ChoiceParam(_Strict):
    """One of the listed values."""

    type: Literal["choice"]
    values_: list[Scalar] = Field(alias="values", min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("values_")
    @classmethod
    def _distinct(cls, values: list[Scalar]) -> list[Scalar]:
        seen: list[tuple[type, Scalar]] = []
        for value in values:
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{value!r} cannot be a parameter value (nan equals nothing, not even itself)")
            key = (type(value), value)
            if key in seen:
                raise ValueError(f"value {value!r} is listed twice")
            seen.append(key)
        return values

    def count(self) -> int:
        return len(self.values_)

    def value(self, index: int) -> Any:
        return self.values_[index]


class BoolParam(_Strict):
    """True or false."""

    type: Literal["bool"]

    def count(self) -> int:
        return 2

    def value(self, index: int) -> bool:
        return bool(index)


Param = Annotated[IntParam | ChoiceParam | BoolParam, Field(discriminator="type")]


# --- answers ------------------------------------------------------------------------------------


class StaticAnswer(_Strict):
    """The key is written in the bank: `choices` marked correct, `accept`ed spellings, or a `value`."""

    kind: Literal["static"] = "static"
    accept: list[str] = Field(default_factory=list, description="Accepted spellings (short answer).")
    value: bool | float | None = Field(None, description="The number (numeric) or the truth (true/false).")
    tolerance: float = Field(0.0, ge=0)


class StdoutAnswer(_Strict):
    """The key is what the code prints."""

    kind: Literal["stdout"]
    claim: str | None = Field(
        None,
        description="A hand-written key (a template), compared by meaning with the real output by `qbank check`.",
    )


class ValueAnswer(_Strict):
    """The key is the value of `expression`, evaluated after the code has run."""

    kind: Literal["value"]
    expression: str
    digits: int = Field(4, ge=0, le=12, description="Significant digits shown for floats.")
    tolerance: float = Field(0.0, ge=0, description="Absolute tolerance for numeric questions.")
    claim: Scalar | list[Scalar] | None = Field(
        None,
        description=(
            "A hand-written key compared by meaning with the value by `qbank check`: a TOML value "
            "(true, 0.269, [2, 3]) or a template string ('{{ batch * 2 }}')."
        ),
    )


ErrorDisplay = Literal["type", "sentence", "line", "full"]


class ErrorAnswer(_Strict):
    """The key is the exception the code raises, or that it raises none."""

    kind: Literal["error"]
    claim: str | None = Field(
        None,
        description=(
            "A hand-written key (a template): an exception type such as 'RuntimeError', optionally with the start "
            "of its message ('RuntimeError: input.size(-1) must be'), or 'none'; either may go on with what is "
            "printed ('none, prints torch.Size([2, 3])')."
        ),
    )
    show: ErrorDisplay = Field(
        "line",
        description=(
            "How an error reads as an option: its `type` only, its message's first `sentence`, its first `line`, "
            "or the `full` message."
        ),
    )


def _answer_kind(value: Any) -> str:
    """An answer without `kind` is static: its key is written in the bank."""
    if isinstance(value, dict):
        kind = value.get("kind", "static")
        return kind if isinstance(kind, str) else ""
    return str(getattr(value, "kind", "static"))


Answer = Annotated[
    Annotated[StaticAnswer, Tag("static")]
    | Annotated[StdoutAnswer, Tag("stdout")]
    | Annotated[ValueAnswer, Tag("value")]
    | Annotated[ErrorAnswer, Tag("error")],
    Discriminator(
        _answer_kind,
        custom_error_type="answer_kind",
        custom_error_message="answer.kind must be one of 'static', 'stdout', 'value' or 'error'",
    ),
]


# --- choices, distractors, mistakes -------------------------------------------------------------


class StaticChoice(_Strict):
    """One option of a multiple-choice question whose key is written in the bank."""

    text: str
    correct: bool = False
    feedback: str = ""


class MatchItem(_Strict):
    """One item of a matching question: its code runs (after the question's `code`), and its outcome is its match."""

    code: str = Field(min_length=1, description="Python run after the question's code (a template).")
    label: str | None = Field(None, description="What learners see for the item (Markdown); default: its code.")


class Distractor(_Strict):
    """A wrong option written in the bank, used after the mistakes' outcomes."""

    text: str
    feedback: str = ""
    when: str | None = Field(None, description="Only for variants where this expression is true.")


class Mistake(_Strict):
    """A plausible mistake, run like the real code; its outcome becomes a distractor.

    Either override parameters (values are expressions over the real parameters, e.g.
    `batch_first = "not batch_first"`), or give other `code`, or another `expression`, or a mix.
    """

    name: str = Field(min_length=1, description="The mistake, as a learner would make it.")
    feedback: str = Field("", description="Shown beside the distractor; defaults to the name.")
    when: str | None = Field(None, description="Only for variants where this expression is true.")
    params: dict[str, str] = Field(
        default_factory=dict, description="Parameters to change: expressions over the real ones ('not batch_first')."
    )
    code: str | None = Field(None, description="Other code to run instead of the question's (a template).")
    tail: str | None = Field(
        None,
        description="Lines that replace as many last lines of the question's rendered code (a template).",
    )
    replace: dict[str, str] = Field(
        default_factory=dict,
        description="Text to replace in the rendered code, old → new (both templates): {'dim=1' = 'dim=0'}.",
    )
    expression: str | None = Field(None, description="Another answer expression, for answer kind 'value'.")

    @model_validator(mode="after")
    def _one_kind_of_code(self) -> Mistake:
        if self.code is not None and self.tail is not None:
            raise ValueError("a mistake gives either other `code` or a `tail` for the question's code, not both")
        return self


def _setup(value: Any) -> Any:
    """`setup = "import torch"` is short for `setup = { code = "import torch" }`."""
    return {"code": value} if isinstance(value, str) else value


class Setup(_Strict):
    """Code run before a question's code (and before each mistake's): shared imports and objects."""

    code: str = Field(min_length=1, description="Python, a template over the question's parameters.")
    show: bool = Field(
        True, description="Show it with the code (true), or run it unseen (false; hidden setup runs first)."
    )


class Blank(_Strict):
    """A blank in the code of a `fill_in` question: `{{ blank("hidden") }}` where the parameter's value would be."""

    candidates: list[Scalar] | None = Field(
        None,
        description="Values a learner might write, each run to see whether it works too (default: the parameter's "
        "values, when it has at most 64).",
    )
    unique: bool = Field(False, description="Fail the variant when another value also gives the same outcome.")


class Ordering(_Strict):
    """How the code of an `ordering` question is cut into blocks that learners put back in order."""

    unit: Literal["line", "paragraph"] = Field(
        "line", description="A block is a line, or a paragraph (lines between blank lines)."
    )
    unique: bool = Field(False, description="Fail the variant when another order of the blocks gives the same outcome.")
    distractors: list[str] = Field(
        default_factory=list,
        description="Blocks that do not belong (templates): shown among the others, to be left out. Each is run in "
        "every place of the right order; one that gives the same outcome somewhere fails the variant.",
    )


class RunLimits(_Strict):
    """Limits for one run of a question's code."""

    wall_seconds: float = Field(10.0, gt=0, le=600)
    cpu_seconds: float = Field(10.0, gt=0, le=600)
    memory_mb: int = Field(2048, ge=64, le=65536)


# --- question and bank --------------------------------------------------------------------------


def _time_limit(value: Any) -> Any:
    """Accept seconds or "m:ss", as the reference page writes it."""
    if isinstance(value, bool):
        raise ValueError("a time limit is seconds or 'm:ss', not true or false")
    if isinstance(value, str):
        match = re.fullmatch(r"(\d+):([0-5]\d)", value.strip())
        if not match:
            raise ValueError(f"time limit {value!r} is neither seconds nor m:ss")
        return int(match.group(1)) * 60 + int(match.group(2))
    return value


class Question(_Strict):
    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    category: Category
    type: QuestionType
    difficulty: Difficulty
    time_limit: int = Field(gt=0, description="Seconds (a string 'm:ss' is accepted too).")
    attempts: int = Field(1, ge=1, le=10)
    hints: list[str] = Field(default_factory=list)
    explanation: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    params: dict[str, Param] = Field(default_factory=dict)
    constraints: list[str] = Field(default_factory=list)
    stem: str = Field(min_length=1)
    code: str | None = None
    answer: Answer = Field(default_factory=lambda: StaticAnswer())
    choices: list[StaticChoice] = Field(default_factory=list)
    distractors: list[Distractor] = Field(default_factory=list)
    mistakes: list[Mistake] = Field(default_factory=list)
    num_choices: int = Field(4, ge=2, le=10, description="Options shown for a computed multiple-choice key.")
    multiple_answers: bool = False
    shuffle: bool = True
    limits: RunLimits | None = None
    order: Ordering | None = Field(None, description="For an ordering question: how its code is cut into blocks.")
    items: list[MatchItem] = Field(
        default_factory=list, description="For a matching question: the items, each matched to its own outcome."
    )
    blanks: dict[str, Blank] = Field(
        default_factory=dict, description="Options of the blanks of a fill_in question, by parameter name."
    )
    setup: Setup | None = Field(None, description="Code run before this question's code, after the bank's setup.")
    inference_mode: bool = Field(
        False,
        description=(
            "Run the code under torch.inference_mode(): about twice as fast for code that builds modules and "
            "reads shapes or errors. Leave it off when the code prints tensors (no grad_fn is shown) or needs "
            "gradients, or the recorded outcome would differ from a plain run."
        ),
    )

    _normalize_time = field_validator("time_limit", mode="before")(_time_limit)
    _setup_shorthand = field_validator("setup", mode="before")(_setup)

    @field_validator("params")
    @classmethod
    def _param_names(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name in params:
            if not _IDENTIFIER.match(name) or name in _RESERVED:
                raise ValueError(f"'{name}' cannot be a parameter name (use letters, digits and _)")
        return params

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not tag.strip():
                raise ValueError("a tag is empty")
        return tags

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        kind = self.answer.kind
        if kind != "static" and not self.code and self.type != "matching":
            raise ValueError(f"answer kind '{kind}' needs `code` to run")
        if self.mistakes and kind == "static":
            raise ValueError("`mistakes` need a computed answer (kind stdout, value or error)")
        if self.multiple_answers and (self.type != "multiple_choice" or kind != "static"):
            raise ValueError("multiple_answers needs a multiple_choice question with static choices")
        if self.type == "multiple_choice":
            self._check_multiple_choice()
        elif self.choices:
            raise ValueError(f"`choices` are only for multiple_choice questions, not {self.type}")
        if self.type == "short_answer" and kind == "static" and not self.answer.accept:  # type: ignore[union-attr]
            raise ValueError("a static short_answer question needs answer.accept")
        if self.type == "numeric":
            value = getattr(self.answer, "value", None)  # only a static answer has one
            if kind == "static" and (not isinstance(value, int | float) or not math.isfinite(value)):
                raise ValueError("a static numeric question needs a finite number in answer.value")
            if kind not in ("static", "value"):
                raise ValueError("a numeric question needs answer kind 'static' or 'value'")
        if self.type == "fill_in":
            if kind == "static":
                raise ValueError("a fill_in question needs a computed answer (kind stdout, value or error)")
            if self.mistakes or self.distractors:
                raise ValueError("a fill_in question has no options: `mistakes` and `distractors` do not apply")
            if not self.code or "blank(" not in self.code:
                raise ValueError('a fill_in question needs a blank in its code: {{ blank("name") }}')
        elif self.blanks:
            raise ValueError("`blanks` are only for fill_in questions")
        if self.type == "ordering":
            if kind == "static" or not self.code:
                raise ValueError(
                    "an ordering question needs `code` and a computed answer (kind stdout, value or error)"
                )
            if self.mistakes or self.distractors:
                raise ValueError("an ordering question has no options: `mistakes` and `distractors` do not apply")
        elif self.order is not None:
            raise ValueError("`order` is only for ordering questions")
        if self.type == "matching":
            if kind == "static":
                raise ValueError("a matching question needs a computed answer (kind stdout, value or error)")
            if not 2 <= len(self.items) <= MAX_CHOICES:
                raise ValueError(f"a matching question needs 2 to {MAX_CHOICES} `items` ({len(self.items)} given)")
            if self.mistakes or self.distractors:
                raise ValueError("a matching question has no options: `mistakes` and `distractors` do not apply")
        elif self.items:
            raise ValueError("`items` are only for matching questions")
        for name, blank in self.blanks.items():
            spec = self.params.get(name)
            if spec is None:
                raise ValueError(f"blanks.{name}: '{name}' is not a parameter of this question")
            count = len(blank.candidates) if blank.candidates is not None else spec.count()
            if count > MAX_BLANK_CANDIDATES:
                raise ValueError(
                    f"blanks.{name}: {count:,} values to try; give at most {MAX_BLANK_CANDIDATES} `candidates`"
                )
        if self.type == "true_false":
            if kind == "static" and not isinstance(self.answer.value, bool):  # type: ignore[union-attr]
                raise ValueError("a static true_false question needs answer.value = true or false")
            if kind not in ("static", "value"):
                raise ValueError("a true_false question needs answer kind 'static' or 'value'")
        return self

    def _check_multiple_choice(self) -> None:
        if self.answer.kind == "static":
            if len(self.choices) < 2:
                raise ValueError("a static multiple_choice question needs at least two `choices`")
            correct = sum(choice.correct for choice in self.choices)
            if correct == 0:
                raise ValueError("no choice is marked correct = true")
            if correct > 1 and not self.multiple_answers:
                raise ValueError(f"{correct} choices are correct; set multiple_answers = true or mark one")
            if len(self.choices) > MAX_CHOICES:
                raise ValueError(
                    f"{len(self.choices)} choices are listed; a question may have at most {MAX_CHOICES} (A to J)"
                )
            texts = [choice.text.strip() for choice in self.choices]
            for text in texts:
                if not text:
                    raise ValueError("a choice has empty text")
                if texts.count(text) > 1:
                    raise ValueError(f"choice {text!r} is listed twice")
        elif self.choices:
            raise ValueError("`choices` are for static keys; a computed key takes `distractors` and `mistakes`")

    @property
    def run_limits(self) -> RunLimits:
        return self.limits or RunLimits()


class Bank(_Strict):
    """A question bank: one file, one bank."""

    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    badge: str | None = None
    setup: Setup | None = Field(None, description="Code run before the code of every question of the bank.")
    questions: list[Question] = Field(min_length=1)

    _setup_shorthand = field_validator("setup", mode="before")(_setup)

    @model_validator(mode="after")
    def _unique_ids(self) -> Bank:
        seen: set[str] = set()
        for question in self.questions:
            if question.id in seen:
                raise ValueError(f"question id '{question.id}' is used twice")
            seen.add(question.id)
        return self

    def question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)


# --- the JSON Schema ------------------------------------------------------------------------------

#: What every field means, with an example, for `qbank schema` (fields that carry their own description keep it).
FIELD_DOCS: dict[tuple[str, str], tuple[str, Any]] = {
    ("Bank", "id"): ("The bank's id: letters, digits, _ . - (also the output file names).", "rnn_basics"),
    ("Bank", "title"): ("The bank's title, shown to learners.", "RNN Basics"),
    ("Bank", "description"): ("What the bank covers (Markdown).", "Shapes and errors of recurrent layers."),
    ("Bank", "tags"): ("Tags added to every question's tags.", ["NLP"]),
    ("Bank", "badge"): ("Earned in the HTML challenge by answering everything right.", "RNN Basics Badge"),
    ("Bank", "questions"): ("The questions, as [[questions]] tables.", None),
    ("Question", "id"): ("The question's id, unique in the bank: letters, digits, _ . -", "rnn_output_shape"),
    ("Question", "title"): ("A short title, shown above the stem.", "Output shape of an RNN"),
    ("Question", "category"): ("The label a learner sees.", "Predict Output"),
    ("Question", "type"): ("How the learner answers.", "multiple_choice"),
    ("Question", "difficulty"): ("How hard the question is.", "intermediate"),
    ("Question", "attempts"): ("Tries allowed (Moodle gives one hint per extra try).", 2),
    ("Question", "hints"): ("Hints (templates), shown after a wrong try.", ["batch_first only changes the layout."]),
    ("Question", "explanation"): ("Why the key is right (a template; `answer` is the key).", "It prints {{ answer }}."),
    ("Question", "tags"): ("Topic tags.", ["shapes"]),
    ("Question", "params"): ("Parameters sampled for each variant, by name.", {"batch": {"type": "int", "min": 2}}),
    ("Question", "constraints"): ("Jinja expressions every variant's parameters satisfy.", ["hidden != features"]),
    ("Question", "stem"): ("The question (a Markdown template over the parameters).", "What does the last line print?"),
    ("Question", "code"): ("The code the question is about (a template); computed answers run it.", "print(1 + 1)"),
    ("Question", "answer"): ("How the key is obtained: static, stdout, value or error.", {"kind": "stdout"}),
    ("Question", "choices"): ("The options of a static multiple-choice question.", [{"text": "A", "correct": True}]),
    ("Question", "distractors"): ("Wrong options written in the bank, after the mistakes'.", [{"text": "`(2, 3)`"}]),
    ("Question", "mistakes"): ("Plausible mistakes, run like the code: their outcomes are distractors.", None),
    ("Question", "multiple_answers"): ("Several static choices are correct (choose every correct one).", False),
    ("Question", "shuffle"): ("Shuffle the static choices with the seed (computed options always are).", True),
    ("Question", "limits"): ("Time and memory limits for one run of the code.", {"wall_seconds": 10}),
    ("IntParam", "type"): ("An integer range.", "int"),
    ("IntParam", "min"): ("The smallest value.", 2),
    ("IntParam", "max"): ("The largest value (inclusive).", 16),
    ("IntParam", "step"): ("The step between values.", 2),
    ("ChoiceParam", "type"): ("One of listed values.", "choice"),
    ("ChoiceParam", "values"): ("The values (numbers, text or booleans; no nan).", [8, 16, 32]),
    ("BoolParam", "type"): ("True or false.", "bool"),
    ("StaticAnswer", "kind"): ("The key is written in the bank.", "static"),
    ("StaticAnswer", "tolerance"): ("Absolute tolerance of a static numeric key.", 0.01),
    ("StdoutAnswer", "kind"): ("The key is what the code prints.", "stdout"),
    ("ValueAnswer", "kind"): ("The key is the value of an expression after the code ran.", "value"),
    ("ValueAnswer", "expression"): ("Python, evaluated after the code; it sees the code's variables.", "x.shape"),
    ("ErrorAnswer", "kind"): ("The key is the exception the code raises, or none.", "error"),
    ("StaticChoice", "text"): ("The option (a Markdown template).", "`torch.Size([2, 3])`"),
    ("StaticChoice", "correct"): ("Whether this option is right.", True),
    ("StaticChoice", "feedback"): ("Why, shown after it is chosen (never the key of another option).", "Yes."),
    ("Distractor", "text"): ("The wrong option (a Markdown template).", "`IndexError: tuple index out of range`"),
    ("Distractor", "feedback"): ("Why it is wrong (a template).", "Nothing is indexed here."),
    ("RunLimits", "wall_seconds"): ("Seconds of real time one run may take.", 10),
    ("RunLimits", "cpu_seconds"): ("Seconds of CPU time one run may take.", 10),
    ("RunLimits", "memory_mb"): ("Memory one run may use beyond the worker's own, in MB.", 2048),
}


def json_schema() -> dict[str, Any]:
    """The bank format as JSON Schema, every field described with an example."""
    schema = Bank.model_json_schema(by_alias=True)
    models = {"Bank": schema, **schema.get("$defs", {})}
    for (model, field), (description, example) in FIELD_DOCS.items():
        spec = models.get(model, {}).get("properties", {}).get(field)
        if spec is None:
            continue
        spec.setdefault("description", description)
        if example is not None:
            spec.setdefault("examples", [example])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
