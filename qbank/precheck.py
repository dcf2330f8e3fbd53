"""Checks that render a question with a few parameter sets and compile its code, without running anything.

`validate` (and every load of a bank) uses them, so that a syntax error in rendered code, or a name an answer
expression uses but the code never defines, is found before torch is imported — not as failed variants later.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qbank.errors import BankError
from qbank.generate import code_context, composed, mistake_code
from qbank.models import ErrorAnswer, Question, Setup, ValueAnswer
from qbank.params import Params, sample, satisfies
from qbank.pynames import bound_names, loaded_names
from qbank.templating import RENDER_SECONDS, TemplateProblem, bounded, evaluate, render_code

#: Random parameter sets rendered per question, besides the first and last values of every parameter.
RANDOM_SETS = 4
_BUILTINS = set(dir(builtins)) | {"__name__", "__file__", "__builtins__"}


def parameter_sets(question: Question, bank_id: str) -> list[Params]:
    """A few valid parameter sets: some drawn at random, and the lowest and highest values where allowed."""
    found = sample(question, RANDOM_SETS, 0, bank_id).params
    specs = question.params
    for end in (0, -1):
        extreme = {name: spec.value(0 if end == 0 else spec.count() - 1) for name, spec in specs.items()}
        if extreme not in found and satisfies(question, extreme):
            found.append(extreme)
    return found


def precheck(question: Question, bank_id: str, bank_setup: Setup | None = None) -> None:
    """Render the question's code, mistakes and expressions for a few parameter sets and compile them."""
    if question.code is None:
        return
    for params in parameter_sets(question, bank_id):
        expression = question.answer.expression if isinstance(question.answer, ValueAnswer) else None
        with _located(question, "code", params):
            code = composed(question, bank_setup, render_code(question.code, code_context(params)), params, expression)[
                0
            ]
        bound = _compile(code, question, "code", params)
        strict = not isinstance(question.answer, ErrorAnswer)  # a Debug question may mean to use an unknown name
        if strict:
            _known(code, bound, question, "code", params)
        if isinstance(question.answer, ValueAnswer):
            _expression(question.answer.expression, bound, question, "answer.expression", params)
        for index, mistake in enumerate(question.mistakes):
            where = f"mistakes[{index}]"
            try:
                if mistake.when and not evaluate(mistake.when, params):
                    continue
                changed = {**params, **{name: evaluate(src, params) for name, src in mistake.params.items()}}
            except TemplateProblem:
                continue  # reported for its variants when generating (a mistake failing costs its distractor)
            field = f"{where}.code" if mistake.code else f"{where} (the question's code with its edits)"
            with _located(question, field, changed):
                code_of_mistake = mistake_code(question, bank_setup, mistake, changed, mistake.expression or expression)
            mistake_bound = _compile(code_of_mistake, question, field, changed)
            if mistake.expression:
                _expression(mistake.expression, mistake_bound, question, f"{where}.expression", changed)


@contextmanager
def _located(question: Question, field: str, params: Params) -> Iterator[None]:
    """A template that cannot be rendered, as a BankError naming the question, the field and the parameters."""
    try:
        with bounded(RENDER_SECONDS, "rendering it"):
            yield
    except TemplateProblem as exc:
        raise BankError(f"{_for(params)}{exc}", question=question.id, field=field) from None


def _compile(code: str, question: Question, field: str, params: Params) -> set[str] | None:
    """The names the code binds; a syntax error is a BankError that shows the rendered code."""
    try:
        tree = ast.parse(code, "<code>", "exec")
    except SyntaxError as exc:
        raise BankError(
            f"{_for(params)}the rendered code is not valid Python: {exc.msg} (line {exc.lineno})\n"
            + listing(code, exc.lineno, exc.offset),
            question=question.id,
            field=field,
        ) from None
    return bound_names(tree)


def _expression(source: str, bound: set[str] | None, question: Question, field: str, params: Params) -> None:
    if "{{" in source or "{%" in source:
        raise BankError(
            "an expression is Python evaluated after the code has run, not a template: use the parameter by its "
            "name (`x == times * 2`, not `x == {{ times }} * 2`)",
            question=question.id,
            field=field,
        )
    tree = ast.parse(source, "<expression>", "eval")
    if bound is None:
        return
    unknown = sorted(loaded_names(tree) - bound - (bound_names(tree) or set()) - _BUILTINS - set(question.params))
    if unknown:
        raise BankError(
            f"uses {', '.join(repr(n) for n in unknown)}, which neither the code nor the parameters define",
            question=question.id,
            field=field,
        )


def _known(code: str, bound: set[str] | None, question: Question, field: str, params: Params) -> None:
    if bound is None:
        return
    unknown = sorted(loaded_names(ast.parse(code)) - bound - _BUILTINS)
    if unknown:
        raise BankError(
            f"{_for(params)}the rendered code uses {', '.join(repr(n) for n in unknown)} without defining "
            "it (a NameError when it runs; for a Debug question about that error, use answer kind 'error')",
            question=question.id,
            field=field,
        )


def _for(params: Params) -> str:
    """`for n=3, flag=True: ` — the parameters a message is about."""
    shown = ", ".join(f"{name}={value!r}" for name, value in params.items())
    return f"for {shown}: " if shown else ""


def listing(code: str, line: int | None, column: int | None) -> str:
    """The code with line numbers, and a marker under the column of `line`."""
    lines = code.split("\n")
    width = len(str(len(lines)))
    shown: list[Any] = []
    for number, text in enumerate(lines, start=1):
        shown.append(f"  {number:>{width}} | {text}")
        if number == line:
            shown.append(f"  {'':>{width}} | {' ' * max(0, (column or 1) - 1)}^")
    return "\n".join(shown)
