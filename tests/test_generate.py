"""Generation: seeded variants whose recorded outcomes are what torch really does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import qbank
from qbank import display
from qbank.generate import Generation
from qbank.runner import WorkerPool
from qbank.variant import ErrorOutcome, StdoutOutcome, ValueOutcome

from . import conftest
from .conftest import run_cli

# Re-runs snippets in a fresh interpreter without qbank: the way anyone can check an export.
RERUN = r"""
import contextlib, io, json, sys
import torch
results = []
for item in json.load(sys.stdin):
    out, ns, error, value = io.StringIO(), {}, None, None
    torch.manual_seed(0)
    try:
        with contextlib.redirect_stdout(out):
            exec(item["code"], ns)
    except Exception as exc:
        error = {"type": type(exc).__name__, "message": str(exc)}
    if item["expression"] and error is None:
        value = eval(item["expression"], ns)
        if isinstance(value, torch.Tensor):
            value = value.tolist()
        if isinstance(value, (tuple, torch.Size)):
            value = list(value)
    results.append({"stdout": out.getvalue(), "error": error, "value": value})
print(json.dumps(results))
"""


def rerun(items: list[dict[str, object]]) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", RERUN],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(done.stdout)


def test_every_question_gets_variants_with_distinct_parameters(gru_50: Generation) -> None:
    assert not gru_50.failures
    by_question: dict[str, list[qbank.Variant]] = {}
    for variant in gru_50.variants:
        by_question.setdefault(variant.question_id, []).append(variant)
    assert set(by_question) == {q.id for q in gru_50.bank.questions}
    for question in gru_50.bank.questions:
        variants = by_question[question.id]
        expected = 50 if question.params else 1
        assert len(variants) == expected, question.id
        assert len({json.dumps(v.params, sort_keys=True) for v in variants}) == expected
        assert len({v.variant_id for v in variants}) == expected


def test_recorded_outcomes_are_reproduced_by_an_independent_rerun(gru_50: Generation) -> None:
    executed = [v for v in gru_50.variants if v.code is not None]
    assert len(executed) >= 250
    items = [
        {"code": v.code, "expression": v.outcome.expression if isinstance(v.outcome, ValueOutcome) else None}
        for v in executed
    ]
    for variant, again in zip(executed, rerun(items), strict=True):
        outcome = variant.outcome
        if isinstance(outcome, StdoutOutcome):
            assert again["error"] is None and again["stdout"] == outcome.stdout, variant.variant_id
        elif isinstance(outcome, ErrorOutcome):
            recorded = outcome.error.model_dump() if outcome.error else None
            assert again["error"] == recorded and again["stdout"] == outcome.stdout, variant.variant_id
        else:
            assert isinstance(outcome, ValueOutcome)
            assert again["value"] == outcome.value, variant.variant_id


def test_debug_key_is_what_torch_does_and_swapped_batch_raises_nothing(gru_50: Generation) -> None:
    debug = [v for v in gru_50.variants if v.question_id == "gru_debug_input"]
    again = rerun([{"code": v.code, "expression": None} for v in debug])
    scenarios = set()
    for variant, result in zip(debug, again, strict=True):
        scenarios.add(variant.params["scenario"])
        (correct,) = variant.correct_choices
        expected = display.error_text(result["error"])
        assert correct.text in (expected, display.as_code(expected))
        if variant.params["scenario"] in ("swapped", "unbatched"):
            assert result["error"] is None and correct.text == display.NO_ERROR
        else:
            assert result["error"] is not None
    assert {"swapped", "input_size"} <= scenarios
    swapped_tf = [v for v in gru_50.variants if v.question_id == "gru_debug_swapped_true_false"]
    assert swapped_tf
    for variant in swapped_tf:
        # Swapping batch and sequence is silent; moving the features out of the last place raises.
        expected = "False" if variant.params["swap"] == "batch and sequence" else "True"
        assert variant.correct_choices[0].text == expected, variant.params


def test_multiple_choice_options_are_distinct_with_one_key(gru_50: Generation) -> None:
    for variant in gru_50.variants:
        if variant.type != "multiple_choice":
            continue
        texts = [choice.text for choice in variant.choices]
        assert len(texts) == len(set(texts)) >= 2, variant.variant_id
        assert sum(choice.correct for choice in variant.choices) == 1


def test_mistakes_become_distractors_with_feedback_naming_them(gru_50: Generation) -> None:
    shapes = [v for v in gru_50.variants if v.question_id == "gru_output_shape"]
    mistaken = [c for v in shapes for c in v.choices if c.source == "mistake"]
    assert len(mistaken) > len(shapes)  # most options come from running real mistakes
    feedback = {c.feedback for c in mistaken}
    assert any("bidirectional" in text for text in feedback)
    assert any("batch_first" in text for text in feedback)


def test_same_seed_gives_identical_json_and_another_seed_other_parameters(tmp_path: Path) -> None:
    outputs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        done = run_cli(
            "generate",
            "gru_mastery",
            "--variants",
            5,
            "--seed",
            seed,
            "--format",
            "json",
            "--out",
            tmp_path / name,
            "--jobs",
            2 if name == "a" else 1,
        )
        assert done.returncode == 0, done.stderr
        outputs.append((tmp_path / name / "gru_mastery.json").read_bytes())
    assert outputs[0] == outputs[1]
    first, other = (json.loads(data)["variants"] for data in (outputs[0], outputs[2]))
    assert [v["params"] for v in first] != [v["params"] for v in other]


def test_json_export_loads_back_into_the_same_variants(gru_50: Generation, tmp_path: Path) -> None:
    from qbank.exporters.json import load

    qbank.export(gru_50, ["json"], tmp_path)
    document = load(tmp_path / "gru_mastery.json")
    assert document.seed == 7
    assert document.variants == gru_50.variants
    raw = json.loads((tmp_path / "gru_mastery.json").read_text())
    sample = raw["variants"][0]
    for key in (
        "bank_id",
        "question_id",
        "variant_id",
        "params",
        "category",
        "type",
        "multiple_answers",
        "stem",
        "code",
        "choices",
        "answers",
        "hint",
        "explanation",
        "tags",
        "outcome",
    ):
        assert key in sample


def test_a_variant_whose_code_fails_costs_only_itself(pool: WorkerPool) -> None:
    bank = qbank.load_bank(
        {
            "id": "fragile",
            "title": "Fragile",
            "questions": [
                {
                    "id": "sometimes",
                    "title": "Sometimes",
                    "category": "Predict Output",
                    "type": "short_answer",
                    "difficulty": "beginner",
                    "time_limit": 30,
                    "stem": "What prints?",
                    "explanation": "It prints {{ answer }}.",
                    "code": (
                        "{% if n == 3 %}import os\nos._exit(1)\n"
                        "{% elif n == 4 %}while True: pass\n{% endif %}print({{ n }})"
                    ),
                    "answer": {"kind": "stdout"},
                    "params": {"n": {"type": "int", "min": 1, "max": 6}},
                    "limits": {"wall_seconds": 2, "cpu_seconds": 1},
                }
            ],
        }
    )
    result = qbank.generate(bank, 6, 0, pool=pool)
    assert sorted(v.params["n"] for v in result.variants) == [1, 2, 5, 6]
    reasons = {f.params["n"]: f.reason for f in result.failures}
    assert set(reasons) == {3, 4}
    assert "exit code 1" in reasons[3]
    assert "CPU time" in reasons[4] or "wall-time" in reasons[4]
    assert "fragile" in str(result.failures[0]) and "n=" in str(result.failures[0])


def test_identical_snippets_run_once(pool: WorkerPool) -> None:
    bank = qbank.load_bank(
        {
            "id": "cached",
            "title": "Cached",
            "questions": [
                {
                    "id": f"q{i}",
                    "title": "Same code",
                    "category": "Predict Output",
                    "type": "short_answer",
                    "difficulty": "beginner",
                    "time_limit": 30,
                    "stem": "What prints?",
                    "explanation": "{{ answer }}",
                    "code": "print(sum(range(12345)))",
                    "answer": {"kind": "stdout"},
                }
                for i in range(3)
            ],
        }
    )
    first = qbank.generate(bank, 1, 0, pool=pool)
    assert first.runs == 1 and first.cache_hits == 2
    second = qbank.generate(bank, 1, 0, pool=pool)
    assert second.runs == 0 and second.cache_hits == 3
    assert [v.answers for v in first.variants] == [v.answers for v in second.variants]


def test_too_few_choices_is_reported_not_padded(pool: WorkerPool) -> None:
    bank = qbank.load_bank(
        {
            "id": "thin",
            "title": "Thin",
            "questions": [
                {
                    "id": "words",
                    "title": "Words",
                    "category": "Predict Output",
                    "type": "multiple_choice",
                    "difficulty": "beginner",
                    "time_limit": 30,
                    "stem": "What prints?",
                    "explanation": "{{ answer }}",
                    "code": "print('hello')",
                    "answer": {"kind": "stdout"},
                    "num_choices": 3,
                    "distractors": [{"text": "`hello`"}, {"text": "`world`"}],
                }
            ],
        }
    )
    result = qbank.generate(bank, 1, 0, pool=pool)
    assert not result.variants
    assert "only 2 distinct choices" in result.failures[0].reason


@pytest.mark.parametrize("count", [1, 3])
def test_parameter_space_smaller_than_asked_is_a_notice(count: int, pool: WorkerPool) -> None:
    bank = qbank.load_bank(
        {
            "id": "small",
            "title": "Small",
            "questions": [
                {
                    "id": "two",
                    "title": "Two",
                    "category": "Conceptual",
                    "type": "true_false",
                    "difficulty": "beginner",
                    "time_limit": 10,
                    "stem": "Is {{ x }} true?",
                    "explanation": "It is.",
                    "answer": {"value": True},
                    "params": {"x": {"type": "bool"}},
                }
            ],
        }
    )
    result = qbank.generate(bank, count, 0, pool=pool)
    assert len(result.variants) == min(count, 2)
    assert bool(result.notices) == (count > 2)


def test_chi_square_p_matches_closed_forms() -> None:
    import math

    from qbank.stress import chi_square_p

    assert chi_square_p([25, 25, 25, 25]) == pytest.approx(1.0)
    # 1 degree of freedom: P = erfc(sqrt(x / 2)); here x = (30-20)²/20·2 = 10.
    assert chi_square_p([30, 10]) == pytest.approx(math.erfc(math.sqrt(10 / 2)), rel=1e-9)
    # 2 degrees of freedom: P = exp(-x / 2); here x = (5² + 5² + 0²)/20 = 2.5.
    assert chi_square_p([25, 15, 20]) == pytest.approx(math.exp(-2.5 / 2), rel=1e-9)
    # 3 degrees of freedom: P = erfc(sqrt(x / 2)) + sqrt(2x / pi)·exp(-x / 2); here x = (15² + 3·5²)/25 = 12.
    closed = math.erfc(math.sqrt(6)) + math.sqrt(24 / math.pi) * math.exp(-6)
    assert chi_square_p([40, 20, 20, 20]) == pytest.approx(closed, rel=1e-9)


def test_correct_choice_positions_pass_a_uniformity_test(gru_50: Generation) -> None:
    from qbank.stress import UNIFORM_P, summarize

    rows = {row.question_id: row for row in summarize(gru_50.bank, gru_50)}
    shapes = rows["gru_output_shape"]
    assert sum(shapes.positions.values()) == 50 and shapes.position_p is not None
    assert shapes.position_p >= UNIFORM_P


def test_a_mistake_that_fails_for_some_parameters_costs_only_its_distractor(pool: WorkerPool) -> None:
    bank = conftest.bank_of(
        conftest.question(
            id="q",
            type="multiple_choice",
            code="print({{ n }} * 3)",
            answer={"kind": "stdout"},
            params={"n": {"type": "int", "min": 1, "max": 3}},
            mistakes=[{"name": "Dividing by the wrong thing", "params": {"n": "12 // (n - 2)"}}],
            distractors=[{"text": "`0`"}, {"text": "`-1`"}, {"text": "`-2`"}],
        )
    )
    result = qbank.generate(bank, 3, 0, pool=pool)
    assert not result.failures
    assert sorted(v.params["n"] for v in result.variants) == [1, 2, 3]
    reason = result.mistake_failures[("q", "Dividing by the wrong thing")]
    assert "mistakes[0].params.n" in reason and "ZeroDivisionError" in reason


def test_outcomes_kept_on_disk_are_reused_without_starting_a_worker(gru_bank: qbank.Bank, tmp_path: Path) -> None:
    from qbank.store import OutcomeStore

    with WorkerPool(2, store=OutcomeStore(tmp_path)) as first:
        cold = qbank.generate(gru_bank, 3, 11, pool=first)
        assert cold.runs > 0
    with WorkerPool(2, store=OutcomeStore(tmp_path)) as second:
        warm = qbank.generate(gru_bank, 3, 11, pool=second)
        assert warm.runs == 0
        assert all(worker.process is None for worker in second._workers)  # torch was never imported
    assert [v.model_dump() for v in warm.variants] == [v.model_dump() for v in cold.variants]


def test_a_numeric_key_has_its_digits_in_every_place(pool: WorkerPool) -> None:
    bank = conftest.bank_of(
        conftest.question(
            id="digits",
            category="Metrics",
            type="numeric",
            code="import math\nx = math.log({{ n }}) * 3.0",
            answer={"kind": "value", "expression": "x", "digits": 4},
            explanation="It is {{ answer }}.",
            params={"n": {"type": "choice", "values": [3, 7]}},
        )
    )
    for variant in qbank.generate(bank, 2, 0, pool=pool).variants:
        import math

        exact = math.log(variant.params["n"]) * 3.0
        (text,) = variant.answers
        assert len(text.replace(".", "").lstrip("0")) == 4  # what Moodle, QTI, GIFT and the page grade
        assert variant.key_text == text and f"It is {text}." == variant.explanation  # what the key and sheet show
        assert variant.tolerance == pytest.approx(0.0005)  # half a unit of the last digit shown
        assert abs(float(text) - exact) <= variant.tolerance  # the exact value is accepted
