"""Options: no two mean the same, no feedback gives the key away, typed answers accept what `check` accepts."""

from __future__ import annotations

import html
import re
import zipfile
from pathlib import Path

import pytest
from lxml import etree

import qbank
from qbank import answers, display
from qbank.generate import Generation
from qbank.runner import WorkerPool
from qbank.variant import Variant

from .conftest import bank_of, question

BUILT_IN = ["gru_mastery", "recurrent_layers", "conv_pooling", "attention", "losses"]


@pytest.fixture(scope="module")
def built_in(pool: WorkerPool) -> list[Generation]:
    return [qbank.generate(qbank.load_bank(name), 12, 4, pool=pool) for name in BUILT_IN]


def _errors(variant: Variant) -> bool:
    return variant.outcome is not None and "error" in variant.outcome.model_fields_set


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_no_two_options_of_a_variant_mean_the_same(built_in: list[Generation]) -> None:
    checked = 0
    for result in built_in:
        assert not result.failures, result.failures[:3]
        for variant in result.variants:
            if variant.type != "multiple_choice":
                continue
            plains = [display.plain_of(choice.text) for choice in variant.choices]
            for i, first in enumerate(plains):
                for second in plains[i + 1 :]:
                    assert not answers.same(first, second, errors=_errors(variant)), (variant.question_id, plains)
            checked += 1
    assert checked > 200


def _key_leaks(key: str, feedback: str) -> bool:
    """Whether a feedback states the key: its text, or its meaning spelled another way."""
    if not feedback.strip():
        return False
    if key in feedback:
        return True
    return any(answers.same(key, part) for part in re.findall(r"`([^`]+)`", feedback))


def test_no_option_feedback_states_the_key(built_in: list[Generation]) -> None:
    for result in built_in:
        for variant in result.variants:
            keys = [display.plain_of(choice.text) for choice in variant.correct_choices] or variant.answers[:1]
            for choice in variant.choices:
                if choice.correct:
                    continue
                for key in keys:
                    if len(key) > 3:  # "True", "4": short keys appear in ordinary words and numbers
                        assert not _key_leaks(key, choice.feedback), (variant.question_id, key, choice.feedback)


def test_no_option_feedback_states_the_key_in_moodle_qti_and_gift(built_in: list[Generation], tmp_path: Path) -> None:
    checked = 0
    for result in built_in:
        folder = tmp_path / result.bank.id
        qbank.export(result, ["moodle", "qti", "gift"], folder)
        parser = etree.XMLParser(strip_cdata=False)
        moodle = etree.fromstring((folder / f"{result.bank.id}.moodle.xml").read_bytes(), parser)
        for item in moodle.iter("question"):
            if item.get("type") != "multichoice":
                continue
            options = [
                (a.get("fraction"), text_of(a.findtext("text") or ""), text_of(a.findtext("feedback/text") or ""))
                for a in item.iter("answer")
            ]
            keys = [text for fraction, text, _ in options if fraction == "100" and len(text) > 3]
            for fraction, _, feedback in options:
                for key in keys:
                    assert fraction == "100" or key not in feedback, (key, feedback)
        with zipfile.ZipFile(folder / f"{result.bank.id}.qti.zip") as archive:
            name = next(n for n in archive.namelist() if n.count("/") == 1 and not n.endswith("meta.xml"))
            qti = etree.fromstring(archive.read(name))
        for item in qti.iterfind(".//{*}item"):
            labels = {
                label.get("ident"): text_of(label.findtext(".//{*}mattext") or "")
                for label in item.iterfind(".//{*}response_label")
            }
            scored = [
                v.text
                for condition in item.iterfind(".//{*}respcondition")
                if (condition.findtext("{*}setvar") or "").strip() == "100"
                for v in condition.iterfind("{*}conditionvar//{*}varequal")
            ]
            keys = [labels[i] for i in scored if i in labels and len(labels[i]) > 3]
            for feedback in item.iterfind("{*}itemfeedback"):
                ident = feedback.get("ident", "").removesuffix("_fb")
                if ident in labels and ident not in scored:
                    checked += 1
                    for key in keys:
                        assert key not in text_of(feedback.findtext(".//{*}mattext") or ""), key
        gift = (folder / f"{result.bank.id}.gift.txt").read_text()
        assert "Running the code gives" not in gift
    assert checked > 100  # wrong options with feedback were found in the QTI files


def _choice_bank(choices: list[dict[str, object]]) -> qbank.Bank:
    return bank_of(
        question(
            id="q",
            category="Conceptual",
            type="multiple_choice",
            stem="Pick one.",
            params={"a": {"type": "int", "min": 1, "max": 2}},
            choices=choices,
        )
    )


def test_a_wrong_static_choice_that_means_the_right_one_fails_its_variant(pool: WorkerPool) -> None:
    bank = _choice_bank(
        [{"text": "{{ a }}", "correct": True}, {"text": "`1`"}, {"text": "3"}, {"text": "4"}],
    )
    result = qbank.generate(bank, 2, 0, pool=pool)
    assert [v.params["a"] for v in result.variants] == [2]
    (failure,) = result.failures
    assert failure.params == {"a": 1}
    assert "means the same as the right choice" in failure.reason


def test_wrong_static_choices_that_mean_the_same_are_one_option(pool: WorkerPool) -> None:
    bank = _choice_bank(
        [{"text": "(2, 3)", "correct": True}, {"text": "[{{ a }}, 4]"}, {"text": "torch.Size([1, 4])"}, {"text": "5"}],
    )
    result = qbank.generate(bank, 2, 0, pool=pool)
    assert not result.failures
    counts = {v.params["a"]: len(v.choices) for v in result.variants}
    assert counts == {1: 3, 2: 4}


MATMUL_ERROR = question(
    id="mm",
    category="Debug",
    type="multiple_choice",
    code="import torch\ntorch.randn(2, {{ k }}) @ torch.randn(2, {{ k }})\n",
    params={"k": {"type": "int", "min": 3, "max": 4}},
    answer={"kind": "error"},
    distractors=[
        # The start of the real message, and the bare type: both mean the key.
        {"text": "`RuntimeError: mat1 and mat2 shapes cannot be multiplied`"},
        {"text": "RuntimeError"},
        {"text": "`ValueError: shapes do not match`"},
        {"text": "`TypeError: unsupported operand`", "when": "k == 4"},
        {"text": "`IndexError: out of range`"},
    ],
)
PRINTED_VALUES = question(
    id="values",
    type="multiple_choice",
    code="import torch\nprint(torch.full((2, 3), -1.0) * {{ k }})\n",
    params={"k": {"type": "int", "min": 1, "max": 1}},
    answer={"kind": "stdout"},
    distractors=[
        {"text": "`[[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]]`"},
        {"text": "`tensor([[-1., -1., -1.], ...])`"},
        {"text": "`tensor([[1., 1., 1.], [1., 1., 1.]])`"},
        {"text": "`tensor([-1., -1., -1.])`"},
        {"text": "`tensor([[-2., -2., -2.], [-2., -2., -2.]])`"},
    ],
)


def test_bank_distractors_that_mean_the_key_are_dropped_and_counted(pool: WorkerPool) -> None:
    result = qbank.generate(bank_of(MATMUL_ERROR, PRINTED_VALUES), 2, 0, pool=pool)
    assert not result.failures, result.failures
    for variant in result.variants:
        texts = [display.plain_of(c.text) for c in variant.choices]
        assert len(texts) == 4
        assert "RuntimeError" not in texts and not any(t.endswith("cannot be multiplied") for t in texts)
        assert not any("-1.0, -1.0" in t or "..." in t for t in texts), texts
        assert result.collisions[variant.variant_id] == 2
        if variant.question_id == "mm":
            # `when` keeps a distractor to the variants it fits.
            assert any("TypeError" in t for t in texts) == (variant.params["k"] == 4)


def test_typed_shape_answers_accept_compact_and_spaced_spellings(built_in: list[Generation]) -> None:
    typed = [v for result in built_in for v in result.variants if v.type == "short_answer" and v.outcome is not None]
    shapes = [v for v in typed if answers.dims_of(v.answers[0]) is not None and "(" in v.answers[0]]
    assert shapes
    for variant in shapes:
        dims = answers.dims_of(variant.answers[0])
        assert dims is not None
        compact = "(" + ",".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"
        assert compact in variant.answers
        assert str(tuple(dims)) in variant.answers
        for spelling in variant.answers:
            assert answers.same(spelling, variant.answers[0])


def test_stress_warns_of_a_key_that_never_changes_and_of_options_easy_to_rule_out(pool: WorkerPool) -> None:
    from qbank.stress import summarize, warnings

    n = {"n": {"type": "int", "min": 1, "max": 9}}
    bank = bank_of(
        question(
            id="always_true",
            type="true_false",
            stem="Is {{ n }} positive?",
            code="n = {{ n }}",
            answer={"kind": "value", "expression": "n > 0"},
            params=n,
        ),
        question(
            id="odd_option",
            type="multiple_choice",
            stem="What is printed?",
            code="print({{ n }})",
            answer={"kind": "stdout"},
            params=n,
            distractors=[{"text": "`777`"}],
            num_choices=2,
        ),
    )
    result = qbank.generate(bank, 5, 0, pool=pool)
    found = warnings(bank, summarize(bank, result))
    assert any("'always_true': the key is the same in all 5 variants" in w for w in found), found
    assert not any("'odd_option': the key is the same" in w for w in found)
    odd = next(w for w in found if "'odd_option'" in w)
    assert "in 5 of 5 variants a wrong option has numbers found nowhere" in odd and "'777'" in odd
    assert "whose 777 appears nowhere else" in odd


def test_every_mistake_that_applies_is_shown_though_more_apply_than_there_are_options(pool: WorkerPool) -> None:
    from qbank.stress import mistake_lines, summarize, warnings

    # Six mistakes, each printing its own number, and room for three wrong options per variant.
    mistakes = [{"name": f"adds {k}", "code": f"print({{{{ n }}}} + {k})"} for k in range(1, 7)]
    never = {"name": "never applies", "code": "print(0)", "when": "n > 100"}
    bank = bank_of(
        question(
            id="many",
            type="multiple_choice",
            code="print({{ n }})",
            answer={"kind": "stdout"},
            params={"n": {"type": "int", "min": 10, "max": 99}},
            mistakes=[*mistakes, never],
        )
    )
    result = qbank.generate(bank, 30, 3, pool=pool)
    assert len(result.variants) == 30
    shown = [{c.mistake for c in variant.choices if c.mistake} for variant in result.variants]
    assert all(len(names) == 3 for names in shown)
    counts = {m["name"]: sum(m["name"] in names for names in shown) for m in mistakes}
    assert all(count >= 5 for count in counts.values()), counts  # 15 of 30 on average, each
    assert len({frozenset(names) for names in shown}) > 5  # the draw differs between variants
    rows = summarize(bank, result)
    line = mistake_lines(rows)[0]
    assert line.startswith("mistakes shown, question 'many' (30 variants): adds 1 ")
    for name, count in counts.items():
        assert f"{name} {count}" in line
    assert "never applies 0" in line
    assert any("mistake 'never applies' never shown in 30 variants" in w for w in warnings(bank, rows))
    # The same bank and seed draw the same mistakes.
    again = qbank.generate(bank, 30, 3, pool=pool)
    assert [v.choices for v in again.variants] == [v.choices for v in result.variants]


@pytest.mark.parametrize(("show", "expected"), [("type", "RuntimeError"), ("sentence", None), ("full", None)])
def test_errors_show_as_their_type_first_sentence_or_full_message(
    show: str, expected: str | None, pool: WorkerPool
) -> None:
    gru = {
        **MATMUL_ERROR,
        "code": "import torch\ntorch.nn.GRU({{ k }}, 8)(torch.randn(5, 3, {{ k }} + 1))\n",
        "answer": {"kind": "error", "show": show},
        "distractors": MATMUL_ERROR["distractors"][2:],
    }
    result = qbank.generate(bank_of(gru), 1, 0, pool=pool)
    (variant,) = result.variants
    assert variant.outcome is not None and variant.outcome.error is not None
    message = variant.outcome.error.message
    key = display.plain_of(variant.correct_choices[0].text)
    if show == "type":
        assert key == expected
    elif show == "sentence":
        assert key == "RuntimeError: input.size(-1) must be equal to input_size."
        assert len(key) < len("RuntimeError: " + message)
    else:
        assert key == "RuntimeError: " + message
