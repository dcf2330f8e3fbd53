"""The HTML challenge, played in headless Chromium (Debian's `chromium`) through Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import qbank
from qbank.generate import Generation

from .conftest import ARTIFACTS


@pytest.fixture
def page(browser: Any, gru_50: Generation, tmp_path: Path) -> Iterator[Any]:
    qbank.export(gru_50, ["html"], tmp_path)
    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on(
        "request",
        lambda request: errors.append(f"network: {request.url}") if not request.url.startswith("file:") else None,
    )
    tab.clock.install()
    tab.goto((tmp_path / "gru_mastery.html").as_uri() + "#seed=5")
    yield tab
    assert errors == []
    context.close()


def problem(tab: Any) -> dict[str, Any]:
    index = int(tab.locator("#position").inner_text().split()[1]) - 1
    return tab.evaluate(f"window.qbankChallenge.problems[{index}]")


def answer(tab: Any, right: bool) -> None:
    data = problem(tab)
    if data["choices"] and not data["multiple"]:
        enabled = {
            int(i) for i in tab.eval_on_selector_all(".choice:not([disabled])", "bs => bs.map(b => b.dataset.index)")
        }
        pick = next(i for i, c in enumerate(data["choices"]) if c["correct"] == right and i in enabled)
        tab.locator(f'.choice[data-index="{pick}"]').click()
    else:
        tab.locator("#answer").fill(data["answers"][0] if right else "definitely wrong 12345")
        tab.locator("#answer").press("Enter")


def test_page_shows_the_challenge_like_the_reference(page: Any, gru_50: Generation) -> None:
    questions = len(gru_50.bank.questions)
    assert page.locator("#heading").inner_text() == f"Challenge – {questions} Problems"
    assert page.locator("#badge-name").inner_text() == "GRU Mastery Badge"
    assert page.locator("#timer").inner_text() == "2:00 remaining"
    assert page.locator("#attempts").inner_text() == "Attempts: 2 left"
    page.clock.run_for(5000)
    assert page.locator("#timer").inner_text() == "1:55 remaining"


def test_wrong_answer_lowers_attempts_and_offers_the_hint(page: Any) -> None:
    answer(page, right=False)
    assert page.locator("#attempts").inner_text() == "Attempts: 1 left"
    assert "Incorrect" in page.locator("#feedback").inner_text()
    assert page.locator("#hint-button").is_visible()
    page.locator("#hint-button").click()
    assert "batch_first" in page.locator("#hint").inner_text()
    assert not page.locator("#explanation").is_visible()


def test_right_answer_shows_the_explanation(page: Any) -> None:
    answer(page, right=True)
    assert "Correct" in page.locator("#feedback").inner_text()
    assert page.locator("#explanation").is_visible()
    assert "h_n" in page.locator("#explanation").inner_text()
    assert page.locator("#score").inner_text() == "Score: 1 / 9"


def test_running_out_of_attempts_locks_the_question(page: Any) -> None:
    answer(page, right=False)
    answer(page, right=False)
    assert "no attempts left" in page.locator("#feedback").inner_text()
    assert page.locator(".choice:not([disabled])").count() == 0
    assert "Answer:" in page.locator("#explanation").inner_text()
    assert page.locator("#score").inner_text() == "Score: 0 / 9"


def test_running_out_of_time_locks_the_question(page: Any) -> None:
    page.clock.run_for(121_000)
    assert "Time is up" in page.locator("#feedback").inner_text()
    assert page.locator(".choice:not([disabled])").count() == 0
    assert page.locator("#timer").inner_text() == "0:00 remaining"


def test_all_right_earns_the_badge_and_keyboard_works(page: Any) -> None:
    for index in range(9):
        data = problem(page)
        if data["choices"]:
            pick = next(i for i, c in enumerate(data["choices"]) if c["correct"])
            page.locator(f'.choice[data-index="{pick}"]').focus()
            page.keyboard.press("Enter")
        else:
            page.locator("#answer").fill(data["answers"][-1])
            page.keyboard.press("Enter")
        assert "Correct" in page.locator("#feedback").inner_text(), index
        page.keyboard.press("Enter")  # the Next button has the focus
    assert page.locator("#badge").inner_text() == "You earned the GRU Mastery Badge!"
    assert "Score: 9 / 9" in page.locator("#result").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "challenge-badge.png"), full_page=True)


def test_bank_markup_is_shown_as_text(browser: Any, hostile: Generation, tmp_path: Path) -> None:
    qbank.export(hostile, ["html"], tmp_path)
    tab = browser.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    tab.goto((tmp_path / "hostile.html").as_uri() + "#seed=1")
    for _ in range(len(hostile.bank.questions)):
        text = tab.locator("#problem").inner_text()
        if "What does this print?" in text:
            assert "<script>alert('x')</script>" in text
            assert 'print(label, "a<b && c>d ]]>' in text
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / "challenge-hostile.png"), full_page=True)
        answer(tab, right=True)
        tab.locator("#next").click()
    assert dialogs == []
    assert tab.locator("script").count() == 3  # the theme, the data and the code: nothing from the bank
    tab.close()


def _corpus() -> list[str]:
    import torch

    torch.manual_seed(0)
    texts = [
        "torch.Size([2, 3])",
        "(2, 3)",
        "[2,3]",
        "2x3",
        "2 × 3",
        "(3, 2)",
        "(5,)",
        "5",
        "tensor(5.)",
        "tensor([[8.]], grad_fn=<MmBackward0>)",
        "[[8.0]]",
        "tensor([[9.]])",
        "0.269",
        "0.26894",
        "approximately 0.27",
        "0.26",
        "1e-05",
        "1.0000e-05",
        "nan",
        "tensor([inf, -inf])",
        "[inf, -inf]",
        "True",
        "true",
        "False",
        "None",
        "none",
        "no error",
        "No error: the code runs to the end.",
        "RuntimeError",
        "raises a RuntimeError",
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)",
        "RuntimeError: mat1 and mat2 shapes cannot be mult…",
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (3x2 and 2x3)",
        "ValueError: Expected input batch_size (4) to match target batch_size (3).",
        "ValueError",
        "[[-1.0, -1.0, -1.0], ...]",
        "the hidden  state",
        "the hidden state",
        "hidden_size=20",
        "hidden_size = 20",
        "",
        "[" * 20_000 + "]" * 20_000,
    ]
    texts += [repr(torch.randn(2, 3)), repr(torch.randn(3, requires_grad=True) * 1), repr(torch.tensor([1.5e-7, 3.0]))]
    texts.append(repr(torch.full((2, 3), -1.0)))
    return texts


def test_the_page_compares_typed_answers_as_check_does(browser: Any, gru_50: Generation, tmp_path: Path) -> None:
    from qbank.answers import same

    qbank.export(gru_50, ["html"], tmp_path)
    tab = browser.new_page()
    tab.goto((tmp_path / "gru_mastery.html").as_uri())
    texts = _corpus()
    pairs = [(a, b, errors) for a in texts for b in texts for errors in (False, True)]
    in_page = tab.evaluate(
        "pairs => pairs.map(([a, b, errors]) => qbAnswers.same(a, b, {errors: errors}))", [list(p) for p in pairs]
    )
    in_python = [same(a, b, errors=errors) for a, b, errors in pairs]
    differ = [pair for pair, page, py in zip(pairs, in_page, in_python, strict=True) if page != py]
    assert differ == []
    assert sum(in_python) > len(texts) * 2  # the corpus holds many equal pairs, not only each text with itself
    tab.close()
