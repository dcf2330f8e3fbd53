"""`qbank check` compares hand-written keys with torch by meaning: right keys in any spelling pass, wrong ones fail."""

from __future__ import annotations

from typing import Any

import qbank
from qbank.check import check
from qbank.runner import WorkerPool

from .conftest import bank_of, question

MATMUL = """
import torch
w = torch.ones(1, 2, requires_grad=True)
print(w @ torch.full((2, 1), {{ k }}.))
"""
CONV = """
import torch
print(torch.nn.Conv2d(1, 6, 5)(torch.randn(1, 1, {{ size }}, {{ size }})).shape)
"""
MATRIX = """
import torch
print(torch.arange({{ k }}, {{ k }} + 6.).reshape(3, 2))
"""
SIGMOID = """
import torch
p = torch.sigmoid(torch.tensor(-1.0)).item()
"""
LINEAR = """
import torch
out = torch.nn.Linear({{ k }}, 512)(torch.randn(50, {{ k }}))
"""
MISMATCH = """
import torch
torch.randn(2, {{ k }}) @ torch.randn(2, {{ k }})
"""
SWAPPED = """
import torch
gru = torch.nn.GRU(input_size=20, hidden_size=20, batch_first=True)
out, h = gru(torch.randn(5, {{ k }}, 20))
print(out.shape)
"""


def stdout(claim: str) -> dict[str, Any]:
    return {"kind": "stdout", "claim": claim}


def error(claim: str) -> dict[str, Any]:
    return {"kind": "error", "claim": claim}


def value(expression: str, claim: Any) -> dict[str, Any]:
    return {"kind": "value", "expression": expression, "claim": claim}


# (code, answer fields, question type, whether the claim is right)
SHORT = "short_answer"
CASES: dict[str, tuple[str, dict[str, Any], str, bool]] = {
    "grad_fn_left_out": (MATMUL, stdout("tensor([[{{ 2 * k }}.]])"), SHORT, True),
    "as_python_list": (MATMUL, stdout("[[{{ 2 * k }}.0]]"), SHORT, True),
    "wrong_product": (MATMUL, stdout("tensor([[{{ 2 * k + 1 }}.]])"), SHORT, False),
    "claim_cannot_render": (MATMUL, stdout("{{ 1 // (k - k) }}"), SHORT, False),
    "tuple_shape": (CONV, stdout("({{ 1 }}, 6, {{ size - 4 }}, {{ size - 4 }})"), SHORT, True),
    "compact_shape": (CONV, stdout("[1,6,{{ size - 4 }},{{ size - 4 }}]"), SHORT, True),
    "x_shape": (CONV, stdout("1x6x{{ size - 4 }}x{{ size - 4 }}"), SHORT, True),
    "shape_off_by_one": (CONV, stdout("(1, 6, {{ size - 5 }}, {{ size - 5 }})"), SHORT, False),
    "compact_wrong_shape": (CONV, stdout("(1,6,{{ size - 5 }},{{ size - 5 }})"), SHORT, False),
    "tensor_on_one_line": (
        MATRIX,
        stdout("tensor([[{{ k }}., {{ k + 1 }}.], [{{ k + 2 }}., {{ k + 3 }}.], [{{ k + 4 }}., {{ k + 5 }}.]])"),
        SHORT,
        True,
    ),
    "tensor_one_value_wrong": (
        MATRIX,
        stdout("tensor([[{{ k }}., {{ k + 1 }}.], [{{ k + 2 }}., {{ k + 3 }}.], [{{ k + 4 }}., {{ k + 6 }}.]])"),
        SHORT,
        False,
    ),
    "three_digits": (SIGMOID, value("p", 0.269), "numeric", True),
    "approximately": (SIGMOID, value("p", "approximately 0.27"), "numeric", True),
    "rounded_wrong": (SIGMOID, value("p", 0.26), "numeric", False),
    "value_shape_tuple": (LINEAR, value("list(out.shape)", "(50, 512)"), SHORT, True),
    "value_shape_list": (LINEAR, value("list(out.shape)", [50, 512]), SHORT, True),
    "value_shape_swapped": (LINEAR, value("list(out.shape)", [512, 50]), SHORT, False),
    "value_template": (LINEAR, value("out.numel()", "{{ 50 * 512 }}"), "numeric", True),
    "value_bool": (LINEAR, value("out.shape[0] == 50", True), "true_false", True),
    "value_bool_wrong": (LINEAR, value("out.shape[0] == 50", False), "true_false", False),
    "error_type": (MISMATCH, error("RuntimeError"), SHORT, True),
    "error_sentence": (MISMATCH, error("raises a RuntimeError"), SHORT, True),
    "error_message_start": (
        MISMATCH,
        error("RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x{{ k }} and 2x{{ k }})"),
        SHORT,
        True,
    ),
    "error_wrong_numbers": (
        MISMATCH,
        error("RuntimeError: mat1 and mat2 shapes cannot be multiplied ({{ k }}x2 and 2x{{ k }})"),
        SHORT,
        False,
    ),
    "error_wrong_type": (MISMATCH, error("ValueError"), SHORT, False),
    "error_claimed_none": (MISMATCH, error("no error"), SHORT, False),
    "published_wrong_key": (SWAPPED, error("RuntimeError"), SHORT, False),
    "none_and_prints": (SWAPPED, error("none, prints torch.Size([5, {{ k }}, 20])"), SHORT, True),
    "none_and_prints_tuple": (SWAPPED, error("No error; prints (5, {{ k }}, 20)"), SHORT, True),
    "none_but_prints_other": (SWAPPED, error("none, prints ({{ k }}, 5, 20)"), SHORT, False),
}


def _bank() -> qbank.Bank:
    questions = []
    for qid, (code, answer, qtype, _) in CASES.items():
        param = "size" if "{{ size }}" in code else "k"
        questions.append(
            question(
                id=qid,
                type=qtype,
                code=code,
                answer=answer,
                params={param: {"type": "int", "min": 30 if param == "size" else 3, "max": 40}},
                constraints=["k != 20"] if param == "k" else [],
            )
        )
    return bank_of(*questions, bank_id="claims")


def test_check_agrees_with_torch_by_meaning(pool: WorkerPool) -> None:
    report = check(_bank(), variants=3, seed=5, pool=pool)
    assert not report.failures, report.failures
    assert report.checked == 3 * len(CASES)
    flagged = {d.question_id for d in report.disagreements}
    assert flagged == {qid for qid, case in CASES.items() if not case[3]}
    # Every variant of a wrong claim is flagged, and the message shows both sides.
    assert len(report.disagreements) == 3 * len(flagged)
    message = next(str(d) for d in report.disagreements if d.question_id == "published_wrong_key")
    assert "claims a RuntimeError, but torch gives no error" in message


BATCH_NORM = """
import torch
bn = torch.nn.BatchNorm1d(1)
x = torch.tensor([[{{ k }}.0], [{{ k + 2 }}.0], [{{ k + 4 }}.0]])
print(f"{bn(x)[2].item():.4f}")
"""


def batch_norm(claim: str, distractors: list[str]) -> qbank.Bank:
    """The BatchNorm question keyed `claim` by hand, with these distractors (printed values)."""
    keyed = question(
        id="bn",
        type="multiple_choice",
        code=BATCH_NORM,
        answer=stdout(claim),
        params={"k": {"type": "int", "min": 1, "max": 3}},
        distractors=[{"text": f"`{text}`"} for text in distractors],
    )
    return bank_of(keyed, bank_id="bn")


def test_a_wrong_key_whose_distractor_is_torchs_answer_names_that_distractor(pool: WorkerPool) -> None:
    # The most common wrong key: torch's answer is offered, but another option is marked. Here the key claims
    # 1.0000 and distractor 2 is what torch prints; it means the same as the computed key, so only two options
    # are left and the variant fails. The report must name the wrong claim and the right distractor instead.
    report = check(batch_norm("1.0000", ["0.8165", "1.2247"]), variants=2, seed=1, pool=pool)
    assert report.checked == 2 and not report.failures, report.failures
    assert len(report.disagreements) == 2
    for disagreement in report.disagreements:
        assert disagreement.distractor == (2, "1.2247")
        assert "the key claims '1.0000', but torch gives '1.2247', which is distractor 2 ('1.2247')" in str(
            disagreement
        )


def test_a_right_key_is_not_tied_to_a_distractor(pool: WorkerPool) -> None:
    report = check(batch_norm("1.2247", ["0.8165", "1.0000", "0.5"]), variants=2, seed=1, pool=pool)
    assert report.ok and report.checked == 2
