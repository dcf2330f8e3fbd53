"""Code templates keep the lines a reader sees; text templates behave as before."""

from __future__ import annotations

import pytest

from qbank.runner import WorkerPool
from qbank.templating import render, render_code

from .conftest import bank_of, question


@pytest.mark.parametrize(
    ("template", "flag", "expected"),
    [
        # A block on one line of code: the line break after it stays, so the next line stays the next line.
        ("x = 1{% if flag %} + 2{% endif %}\ny = 2", True, "x = 1 + 2\ny = 2"),
        ("x = 1{% if flag %} + 2{% endif %}\ny = 2", False, "x = 1\ny = 2"),
        # An indented block inside a loop keeps its indentation.
        (
            "for i in range(2):\n    {% if flag %}print(i){% else %}pass{% endif %}\n",
            True,
            "for i in range(2):\n    print(i)",
        ),
        (
            "for i in range(2):\n    {% if flag %}print(i){% else %}pass{% endif %}\n",
            False,
            "for i in range(2):\n    pass",
        ),
        # Lines that hold only block tags disappear whole, indented or not.
        ("a = 1\n    {% if flag %}\nb = 2\n    {% endif %}\nc = 3", True, "a = 1\nb = 2\nc = 3"),
        ("a = 1\n{% if flag %}\nb = 2\n{% endif %}\nc = 3", False, "a = 1\nc = 3"),
        ("{% for i in range(2) %}{% if flag %}\nx{{ i }} = {{ i }}\n{% endif %}{% endfor %}\n", True, "x0 = 0\nx1 = 1"),
    ],
)
def test_block_tags_in_code_do_what_a_reader_expects(template: str, flag: bool, expected: str) -> None:
    assert render_code(template, {"flag": flag}).rstrip("\n") == expected


def test_text_templates_still_join_a_tag_to_the_next_line() -> None:
    # In Markdown text an inline block at the end of a line leads into the next, as Jinja's trim_blocks does.
    assert render("It is{% if flag %} big{% endif %}\nindeed.", {"flag": True}) == "It is bigindeed."


def test_inline_blocks_in_code_give_code_that_runs(pool: WorkerPool) -> None:
    import qbank

    bank = bank_of(
        question(
            id="inline",
            type="short_answer",
            code=(
                "total = 1{% if double %} * 2{% endif %}\n"
                "for i in range(3):\n"
                "    {% if double %}total += i{% else %}total -= i{% endif %}\n"
                "print(total)"
            ),
            answer={"kind": "stdout"},
            params={"double": {"type": "bool"}},
        )
    )
    result = qbank.generate(bank, 2, 0, pool=pool)
    assert not result.failures, result.failures
    printed = {v.params["double"]: v.outcome.stdout for v in result.variants}  # type: ignore[union-attr]
    assert printed == {True: "5\n", False: "-2\n"}


def test_explanations_can_name_the_exception_alone(pool: WorkerPool) -> None:
    import qbank

    bank = bank_of(
        question(
            id="debug",
            category="Debug",
            type="short_answer",
            code="import torch\nx = torch.zeros(2, 3)\n{% if bad %}x @ x{% else %}x + x{% endif %}",
            answer={"kind": "error"},
            explanation="It raises {{ answer_type }}. In full: {{ answer }}",
            params={"bad": {"type": "bool"}},
        )
    )
    result = qbank.generate(bank, 2, 0, pool=pool)
    explained = {v.params["bad"]: v.explanation for v in result.variants}
    assert explained[True].startswith("It raises RuntimeError. In full: RuntimeError: mat1 and mat2")
    assert explained[False].startswith("It raises none. In full: No error")
