"""Ordering (Parsons) questions: every order of the blocks is run, and every one that gives the outcome is accepted."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import qbank
from qbank.exporting import ExportRefused
from qbank.grading import score
from qbank.runner import WorkerPool
from qbank.variant import BLOCK_LETTERS, Variant
from qbank.writing import render_all

from .conftest import bank_of, question

# `a` and `b` may be set in either order; the print must come last.
SWAPPABLE = "a = {{ x }}\nb = 2\nprint(a * 10 + b)\n"
# Each line needs the one before it.
CHAIN = (
    "import torch\nw = torch.tensor([{{ x }}.0], requires_grad=True)\nloss = (w * 3).sum()\nloss.backward()\n"
    "print(w.grad.item())\n"
)


def ordering(code: str, qid: str, **fields: Any) -> dict[str, Any]:
    return question(
        id=qid,
        type="ordering",
        stem="Put the lines in an order that prints `{{ outcome }}`.",
        code=code,
        explanation="It prints {{ outcome }}.",
        answer={"kind": "stdout"},
        params={"x": {"type": "int", "min": 1, "max": 4}},
        **fields,
    )


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.fixture(scope="module")
def made(pool: WorkerPool) -> qbank.Generation:
    bank = bank_of(ordering(SWAPPABLE, "swap"), ordering(CHAIN, "chain"), bank_id="order")
    return qbank.generate(bank, 3, 1, pool=pool)


def in_order(variant: Variant, order: list[int]) -> str:
    return "\n".join(variant.blocks[index] for index in order)


def test_every_order_that_prints_the_same_is_accepted_and_no_other(made: qbank.Generation) -> None:
    for variant in made.variants:
        target = run(variant.code or "").stdout
        assert variant.stem == f"Put the lines in an order that prints `{target.strip()}`."
        expected = 2 if variant.question_id == "swap" else 1
        assert len(variant.orders) == expected, variant.question_id
        for order in variant.orders:  # each accepted order, run in a fresh interpreter, prints the target
            assert run(in_order(variant, order)).stdout == target
        # and the first order that was not accepted prints something else, or fails
        every = itertools.permutations(range(len(variant.blocks)))
        rejected = next(list(o) for o in every if list(o) not in variant.orders)
        done = run(in_order(variant, rejected))
        assert done.returncode != 0 or done.stdout != target


def test_learners_see_the_blocks_in_an_order_that_is_not_already_right(made: qbank.Generation) -> None:
    for variant in made.variants:
        assert list(range(len(variant.blocks))) not in variant.orders
        assert variant.shown_code is None  # the code would give the order away
        sheet = render_all(["markdown"], qbank.BankInfo.of(made.bank), [variant], 1)["order.md"]
        assert (variant.code or "") not in sheet


def test_a_unique_ordering_that_another_order_solves_fails_its_variant(pool: WorkerPool) -> None:
    made = qbank.generate(bank_of(ordering(SWAPPABLE, "swap", order={"unique": True})), 2, 1, pool=pool)
    assert not made.variants and len(made.failures) == 2
    assert all("the order is declared unique, but 1 other order(s) also give" in f.reason for f in made.failures)


def test_moodle_gets_an_ordering_question_and_refuses_one_with_several_orders(made: qbank.Generation) -> None:
    chain = [v for v in made.variants if v.question_id == "chain"]
    xml = render_all(["moodle"], qbank.BankInfo.of(made.bank), chain, 1)["order.moodle.xml"]
    questions = [q for q in etree.fromstring(xml.encode()).iterfind("question") if q.get("type") != "category"]
    assert {q.get("type") for q in questions} == {"ordering"}
    for q, variant in zip(questions, chain, strict=True):
        answers = q.findall("answer")
        assert [a.get("fraction") for a in answers] == [f"{n}.0000000" for n in range(1, len(variant.blocks) + 1)]
        texts = [etree.fromstring(a.findtext("text")).xpath("string()") for a in answers]
        assert "\n".join(texts) == in_order(variant, variant.orders[0])
    swap = [v for v in made.variants if v.question_id == "swap"]
    with pytest.raises(ExportRefused, match="Moodle's Ordering question accepts one"):
        render_all(["moodle"], qbank.BankInfo.of(made.bank), swap, 1)
    for name in ("gift", "qti"):
        with pytest.raises(ExportRefused, match="an ordering question"):
            render_all([name], qbank.BankInfo.of(made.bank), chain, 1)


def test_grading_takes_the_letters_of_any_order_that_works(made: qbank.Generation) -> None:
    variant = next(v for v in made.variants if v.question_id == "swap")
    for order in variant.orders:
        letters = [BLOCK_LETTERS[index] for index in order]
        assert score(variant, ", ".join(letters))[0] == 1.0
        assert score(variant, "".join(letters).lower())[0] == 1.0
    assert score(variant, ", ".join(BLOCK_LETTERS[i] for i in reversed(variant.orders[0])))[0] == 0.0


def test_the_challenge_orders_blocks_with_the_keyboard_alone(
    browser: Any, made: qbank.Generation, tmp_path: Path
) -> None:
    variant = next(v for v in made.variants if v.question_id == "chain")
    qbank.export(qbank.Generation(bank=made.bank, seed=1, variants=[variant]), ["html"], tmp_path)
    tab = browser.new_page()
    tab.goto((tmp_path / "order.html").as_uri())
    target = variant.orders[0]

    def shown() -> list[int]:
        return [int(i) for i in tab.eval_on_selector_all(".block", "ls => ls.map(l => l.dataset.block)")]

    # Selection sort with the ↑ buttons, pressed by the keyboard: focus the button, then Enter.
    for place, block in enumerate(target):
        while shown().index(block) > place:
            tab.locator(
                f'.block[data-block="{block}"] button[aria-label^="Move block {BLOCK_LETTERS[block]} up"]'
            ).focus()
            tab.keyboard.press("Enter")
            assert tab.evaluate("document.activeElement.getAttribute('aria-label')").startswith("Move block")
    assert shown() == target
    tab.locator("#submit").focus()
    tab.keyboard.press("Enter")
    assert "Correct" in tab.locator("#feedback").inner_text()
    tab.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_ordering_problem_fits_a_phone_and_axe_finds_nothing(
    browser: Any, made: qbank.Generation, tmp_path: Path, scheme: str
) -> None:
    from .test_phone import too_wide, violations

    qbank.export(qbank.Generation(bank=made.bank, seed=1, variants=made.variants[:1]), ["html"], tmp_path)
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=scheme)
    tab = context.new_page()
    tab.goto((tmp_path / "order.html").as_uri())
    assert tab.locator(".block").count() == len(made.variants[0].blocks)
    assert violations(tab) == [] and too_wide(tab) == []
    tab.locator("#submit").click()  # locked now: the answer and the explanation are shown
    assert violations(tab) == [] and too_wide(tab) == []
    context.close()


def test_distractor_blocks_must_be_left_out_and_one_that_works_fails_its_variant(
    pool: WorkerPool, browser: Any, tmp_path: Path
) -> None:
    good = ordering(SWAPPABLE, "good", order={"distractors": ["print(a - b)"]})
    bad = ordering(SWAPPABLE, "bad", order={"distractors": ["b = 2"]})
    made = qbank.generate(bank_of(good, bad, bank_id="order"), 2, 1, pool=pool)
    assert {v.question_id for v in made.variants} == {"good"}
    assert {f.question_id for f in made.failures} == {"bad"}
    assert "the distractor block 'b = 2' also gives" in made.failures[0].reason
    variant = made.variants[0]
    assert len(variant.blocks) == 4 and all(len(order) == 3 for order in variant.orders)
    extra = next(i for i in range(4) if all(i not in order for order in variant.orders))
    assert variant.blocks[extra] == "print(a - b)"
    right = [BLOCK_LETTERS[i] for i in variant.orders[0]]
    assert score(variant, ", ".join(right))[0] == 1.0
    assert score(variant, ", ".join([*right, BLOCK_LETTERS[extra]]))[0] == 0.0
    with pytest.raises(ExportRefused, match="blocks to leave out"):
        render_all(["moodle"], qbank.BankInfo.of(made.bank), [variant], 1)
    # In the challenge: untick the block that does not belong (keyboard), order the others, submit.
    qbank.export(qbank.Generation(bank=made.bank, seed=1, variants=[variant]), ["html"], tmp_path)
    tab = browser.new_page()
    tab.goto((tmp_path / "order.html").as_uri())
    tab.locator(f'.block[data-block="{extra}"] input.use').focus()
    tab.keyboard.press("Space")
    target = variant.orders[0]
    for place, block in enumerate(target):
        while [int(i) for i in tab.eval_on_selector_all(".block", "ls => ls.map(l => l.dataset.block)")].index(
            block
        ) > place:
            tab.locator(
                f'.block[data-block="{block}"] button[aria-label^="Move block {BLOCK_LETTERS[block]} up"]'
            ).click()
    tab.locator("#submit").click()
    assert "Correct" in tab.locator("#feedback").inner_text()
    tab.close()
