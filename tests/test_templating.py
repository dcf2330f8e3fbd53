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


def test_setup_runs_first_and_mistakes_edit_only_what_differs(pool: WorkerPool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import subprocess
    import sys

    import qbank

    bank = qbank.load_bank(
        {
            "id": "setup",
            "title": "Setup",
            "setup": {"code": "import torch\nimport torch.nn as nn", "show": False},
            "questions": [
                question(
                    id="shape",
                    type="multiple_choice",
                    setup="gru = nn.GRU({{ f }}, {{ h }}, batch_first=True)",
                    code="out, h_n = gru(torch.randn(2, 3, {{ f }}))\nprint(out.shape)",
                    answer={"kind": "stdout"},
                    params={"f": {"type": "choice", "values": [4, 8]}, "h": {"type": "choice", "values": [5, 6]}},
                    mistakes=[
                        {"name": "Reading h_n instead", "tail": "print(h_n.shape)"},
                        {
                            "name": "Swapping the input",
                            "replace": {"batch_first=True": "batch_first=False", "(2, 3,": "(3, 2,"},
                        },
                    ],
                    distractors=[{"text": "`torch.Size([2, 3])`"}],
                )
            ],
        }
    )
    result = qbank.generate(bank, 4, 0, pool=pool)
    assert not result.failures and not result.mistake_failures, (result.failures, result.mistake_failures)
    for variant in result.variants:
        f, h = variant.params["f"], variant.params["h"]
        assert variant.code is not None and variant.code.startswith("import torch\nimport torch.nn as nn\ngru = ")
        assert variant.hidden_lines == 2 and variant.shown_code is not None
        assert variant.shown_code.startswith(f"gru = nn.GRU({f}, {h}, batch_first=True)")
        assert [c.text for c in variant.correct_choices] == [f"`torch.Size([2, 3, {h}])`"]
        from_mistakes = {c.feedback: c.text for c in variant.choices if c.source == "mistake"}
        assert from_mistakes == {
            "Reading h_n instead": f"`torch.Size([1, 2, {h}])`",  # the tail replaced the last line
            "Swapping the input": f"`torch.Size([3, 2, {h}])`",  # replace edited the setup and the code
        }
    # The recorded code, hidden setup included, runs on its own and prints the key.
    first = result.variants[0]
    done = subprocess.run([sys.executable, "-c", first.code], capture_output=True, text=True, check=True)
    assert first.outcome is not None and done.stdout == first.outcome.stdout  # type: ignore[union-attr]
    # Learners do not see the hidden setup in any format.
    qbank.export(result, ["markdown", "moodle", "json"], tmp_path)
    assert "import torch.nn as nn" not in (tmp_path / "setup.md").read_text()
    assert "import torch.nn as nn" not in (tmp_path / "setup.moodle.xml").read_text()
    assert json.loads((tmp_path / "setup.json").read_text())["variants"][0]["hidden_lines"] == 2


def test_an_expression_sees_the_parameters_and_the_exported_code_still_runs_alone(pool: WorkerPool) -> None:
    import subprocess
    import sys

    import qbank

    bank = bank_of(
        question(
            id="times",
            category="Metrics",
            type="true_false",
            code="x = {{ n }} * 2",
            answer={"kind": "value", "expression": "x == times * 2"},
            params={"n": {"type": "int", "min": 1, "max": 4}, "times": {"type": "int", "min": 1, "max": 4}},
        )
    )
    result = qbank.generate(bank, 16, 0, pool=pool)
    assert not result.failures and len(result.variants) == 16
    for variant in result.variants:
        truth = variant.params["n"] == variant.params["times"]
        assert [c.text for c in variant.correct_choices] == [str(truth)]
        assert variant.code is not None and variant.code.startswith(f"times = {variant.params['times']}\n")
        assert variant.hidden_lines == 1 and variant.shown_code == f"x = {variant.params['n']} * 2"
    first = result.variants[0]
    probe = f"{first.code}\nprint({first.outcome.expression})"  # type: ignore[union-attr]
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(first.outcome.value)  # type: ignore[union-attr]
