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
from qbank.generate import composed, mistake_code
from qbank.models import ErrorAnswer, Question, Setup, ValueAnswer
from qbank.params import Params, sample, satisfies
from qbank.templating import TemplateProblem, evaluate, render_code

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
        with _located(question, "code", params):
            code = composed(question, bank_setup, render_code(question.code, params), params)[0]
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
                code_of_mistake = mistake_code(question, bank_setup, mistake, changed)
            mistake_bound = _compile(code_of_mistake, question, field, changed)
            if mistake.expression:
                _expression(mistake.expression, mistake_bound, question, f"{where}.expression", changed)


@contextmanager
def _located(question: Question, field: str, params: Params) -> Iterator[None]:
    """A template that cannot be rendered, as a BankError naming the question, the field and the parameters."""
    try:
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
    return _bound_names(tree)


def _expression(source: str, bound: set[str] | None, question: Question, field: str, params: Params) -> None:
    if "{{" in source or "{%" in source:
        raise BankError(
            "an expression is Python evaluated after the code has run, not a template: write the parameter into "
            "the code (e.g. `times = {{ times }}`) and use that variable here",
            question=question.id,
            field=field,
        )
    tree = ast.parse(source, "<expression>", "eval")
    if bound is None:
        return
    unknown = sorted(_loaded_names(tree) - bound - (_bound_names(tree) or set()) - _BUILTINS)
    if unknown:
        hint = [name for name in unknown if name in question.params]
        advice = (
            f"; '{hint[0]}' is a parameter: parameters exist only in templates, so bind it in the code "
            f"(`{hint[0]} = {{{{ {hint[0]} }}}}`)"
            if hint
            else ""
        )
        raise BankError(
            f"uses {', '.join(repr(n) for n in unknown)}, which the code never defines{advice}",
            question=question.id,
            field=field,
        )


def _known(code: str, bound: set[str] | None, question: Question, field: str, params: Params) -> None:
    if bound is None:
        return
    unknown = sorted(_loaded_names(ast.parse(code)) - bound - _BUILTINS)
    if unknown:
        raise BankError(
            f"{_for(params)}the rendered code uses {', '.join(repr(n) for n in unknown)} without defining "
            "it (a NameError when it runs; for a Debug question about that error, use answer kind 'error')",
            question=question.id,
            field=field,
        )


def _bound_names(tree: ast.AST) -> set[str] | None:
    """Every name the code binds anywhere; None when it cannot tell (`from x import *`)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            names.update(node.names)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
    return names


def _loaded_names(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


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
