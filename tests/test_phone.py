"""Students on phones and in dark mode: the HTML challenge and Anki cards in Chromium at 390 and 1280 px, light and
dark, checked with axe-core (tests/fixtures/axe) and by measuring every code box."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anki.collection import Collection, ImportAnkiPackageOptions, ImportAnkiPackageRequest

import qbank
from qbank.generate import Generation

from .conftest import FIXTURES
from .test_html import answer, problem

AXE = (FIXTURES / "axe" / "axe.min.js").read_text(encoding="utf-8")
WIDTHS = {"phone": 390, "desktop": 1280}
SCHEMES = ["light", "dark"]
STATES = [(width, scheme) for width in WIDTHS for scheme in SCHEMES]
#: Characters that need an emoji font: such a font is missing on many systems, and then a box is shown instead.
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u26ff\ufe0f]")

# Every element whose content may be too wide, and how much wider than its box it is (a page that scrolls sideways
# counts too): nothing may be cut off or need a sideways scroll.
OVERFLOW_JS = """() => {
  const wide = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) wide.push(["page", root.scrollWidth - root.clientWidth]);
  for (const node of document.querySelectorAll("pre, .qb-ln, .choice, .card, .explanation, .feedback, li, p")) {
    if (node.scrollWidth > node.clientWidth + 1 && getComputedStyle(node).display !== "inline") {
      wide.push([node.className || node.tagName, node.scrollWidth - node.clientWidth, node.textContent.slice(0, 60)]);
    }
  }
  return wide;
}"""


def violations(tab: Any, exclude: list[str] | None = None) -> list[str]:
    """axe-core's WCAG 2.x A and AA rules (and its best practices) on the page as it is now."""
    if not tab.evaluate("typeof axe !== 'undefined'"):
        tab.add_script_tag(content=AXE)
    found = tab.evaluate(
        """exclude => axe.run({exclude: exclude.map(s => [s])}, {resultTypes: ["violations"]})
             .then(r => r.violations.map(v => v.id + " (" + v.impact + "): " +
                 v.nodes.slice(0, 3).map(n => n.target.join(" ") + " " + n.failureSummary).join(" | ")))""",
        exclude or [],
    )
    return list(found)


def too_wide(tab: Any) -> list[Any]:
    return list(tab.evaluate(OVERFLOW_JS))


@pytest.fixture
def context(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    width, scheme = request.param
    made = browser.new_context(viewport={"width": WIDTHS[width], "height": 844}, color_scheme=scheme)
    yield made
    made.close()


@pytest.fixture(scope="module")
def challenge(gru_50: Generation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("challenge")
    qbank.export(gru_50, ["html", "anki"], folder)
    return folder


def open_challenge(context: Any, folder: Path, seed: int = 5) -> Any:
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.clock.install()
    tab.goto((folder / "gru_mastery.html").as_uri() + f"#seed={seed}")
    tab.errors = errors
    return tab


@pytest.mark.parametrize("context", STATES, indirect=True, ids=[f"{w}-{s}" for w, s in STATES])
def test_the_challenge_fits_and_axe_finds_nothing_in_any_state(context: Any, challenge: Path) -> None:
    tab = open_challenge(context, challenge)
    found: dict[str, list[str]] = {}
    found["a problem"] = violations(tab)
    answer(tab, right=False)  # the first problem allows two attempts: feedback on the wrong option, the hint button
    tab.locator("#hint-button").click()
    found["a wrong try and its hint"] = violations(tab)
    answer(tab, right=False)
    tab.locator("details.others summary").click()
    found["locked, with the explanation and why not the others"] = violations(tab)
    wide: dict[int, list[Any]] = {}
    for index in range(9):
        if index:
            answer(tab, right=True)
        wide[index] = too_wide(tab)
        tab.locator("#next").click()
    found["the result and its review"] = violations(tab)
    wide[9] = too_wide(tab)
    assert {where: v for where, v in found.items() if v} == {}
    assert {index: w for index, w in wide.items() if w} == {}
    assert not EMOJI.search(tab.locator("body").inner_text())
    assert tab.errors == []


def test_code_wraps_with_its_indentation_kept_and_copies_as_written(
    browser: Any, challenge: Path, gru_50: Generation
) -> None:
    made = browser.new_context(viewport={"width": 390, "height": 844})
    tab = open_challenge(made, challenge)
    data = problem(tab)
    # Per code line: where its first row of text starts, and where its continuation rows start (none if it fits).
    lines = tab.eval_on_selector_all(
        ".code .qb-ln",
        """ls => ls.map(l => {
             const range = document.createRange(); range.selectNodeContents(l);
             const rows = [...range.getClientRects()].filter(r => r.width > 0);
             const tops = [...new Set(rows.map(r => Math.round(r.top)))];
             const left = top => Math.min(...rows.filter(r => Math.round(r.top) === top).map(r => r.left));
             return {text: l.textContent, first: left(tops[0]), rest: tops.slice(1).map(left)};
           })""",
    )
    wrapped = [line for line in lines if line["rest"]]
    assert wrapped, "at 390 px some line of the first problem's code is longer than the screen"
    for line in wrapped:  # a continuation starts right of where its line's text starts: the hanging indent
        indent = len(line["text"]) - len(line["text"].lstrip(" "))
        assert all(rest > line["first"] + indent * 4 for rest in line["rest"]), line
    # What a student copies is the code that ran, line for line.
    copied = tab.evaluate(
        """() => { const s = getSelection(); s.selectAllChildren(document.querySelector('.code pre'));
                   return s.toString(); }"""
    )
    code = next(v.shown_code for v in gru_50.variants if v.variant_id == data["id"])
    assert code is not None and copied.rstrip("\n") == code.rstrip("\n")
    made.close()


@pytest.mark.parametrize("context", [("phone", "dark")], indirect=True, ids=["phone-dark"])
def test_keyboard_alone_plays_to_the_badge(context: Any, challenge: Path) -> None:
    tab = open_challenge(context, challenge)
    for index in range(9):
        data = problem(tab)
        if data["choices"]:
            right = next(i for i, c in enumerate(data["choices"]) if c["correct"])
            for _ in range(12):  # Tab through the options until the right one has the focus
                if tab.evaluate("document.activeElement.dataset.index") == str(right):
                    break
                tab.keyboard.press("Tab")
            tab.keyboard.press("Enter")
        else:
            assert tab.evaluate("document.activeElement.id") == "answer"
            tab.keyboard.type(data["answers"][-1])
            tab.keyboard.press("Enter")
        assert "Correct" in tab.locator("#feedback").inner_text(), index
        assert tab.evaluate("document.activeElement.id") == "next"
        tab.keyboard.press("Enter")
    assert tab.locator("#badge").inner_text() == "You earned the GRU Mastery Badge!"
    assert tab.locator(".medal").is_visible()


# --- the challenge's behaviour ------------------------------------------------------------------------------


@pytest.fixture
def phone(browser: Any, challenge: Path) -> Iterator[Any]:
    made = browser.new_context(viewport={"width": 390, "height": 844})
    tab = open_challenge(made, challenge)
    yield tab
    assert tab.errors == []
    made.close()


def test_an_empty_answer_costs_no_attempt(phone: Any) -> None:
    while problem(phone)["choices"]:
        answer(phone, right=True)
        phone.locator("#next").click()
    before = phone.locator("#attempts").inner_text()
    phone.locator("#answer").press("Enter")
    assert phone.locator("#attempts").inner_text() == before
    assert "Type an answer first" in phone.locator("#feedback").inner_text()


def test_the_hint_is_there_from_the_start_and_takes_the_focus(phone: Any) -> None:
    assert problem(phone)["hints"]
    assert phone.locator("#hint-button").is_visible()  # even with one attempt it could be seen
    phone.locator("#hint-button").focus()
    phone.keyboard.press("Enter")
    assert phone.evaluate("document.activeElement.id") == "hint"
    assert phone.locator("#hint").inner_text().startswith("Hint:")
    assert phone.locator("#hint").get_attribute("aria-live") == "polite"


def test_a_wrong_option_says_why_and_the_focus_stays_on_the_options(phone: Any) -> None:
    data = problem(phone)
    wrong = next(i for i, c in enumerate(data["choices"]) if not c["correct"] and c["feedback"])
    phone.locator(f'.choice[data-index="{wrong}"]').focus()
    phone.keyboard.press("Enter")
    reason = html.unescape(re.sub(r"<[^>]+>", "", data["choices"][wrong]["feedback"])).strip()
    assert reason and reason in phone.locator("#feedback").inner_text()
    assert phone.evaluate("document.activeElement.classList.contains('choice')")
    opacity = phone.eval_on_selector(f'.choice[data-index="{wrong}"]', "b => Number(getComputedStyle(b).opacity)")
    assert opacity < 0.7  # a disabled option looks disabled


def test_tags_are_shown(phone: Any) -> None:
    tags = problem(phone)["tags"]
    assert tags and phone.locator(".tags li").all_inner_texts() == tags


def test_the_seed_in_the_address_is_followed_and_a_bad_one_is_said(phone: Any) -> None:
    ids = [p["id"] for p in phone.evaluate("window.qbankChallenge.problems")]
    phone.evaluate("location.hash = 'seed=6'")
    phone.wait_for_function("window.qbankChallenge && location.hash === '#seed=6'")
    phone.wait_for_load_state()
    assert [p["id"] for p in phone.evaluate("window.qbankChallenge.problems")] != ids
    phone.evaluate("location.hash = 'seed=abc'")
    phone.wait_for_selector("#notice:not([hidden])")
    assert "not a whole number" in phone.locator("#notice").inner_text()


def test_the_result_reviews_every_problem(phone: Any) -> None:
    for index in range(9):
        answer(phone, right=index % 2 == 0)
        if phone.locator("#next").is_hidden():
            answer(phone, right=False)
        phone.locator("#next").click()
    rows = phone.locator(".review li")
    assert rows.count() == 9
    assert "✓ right" in rows.nth(0).inner_text() and "✗" in rows.nth(1).inner_text()
    rows.nth(1).locator("button").click()
    assert phone.locator("#explanation").is_visible() and "Answer:" in phone.locator("#explanation").inner_text()
    assert phone.locator("#next").inner_text() == "Back to your result"
    phone.locator("#next").click()
    assert phone.locator(".review li").count() == 9


# --- Anki cards ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cards(challenge: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str]]:
    """One card per question as Anki renders it: (question id, front HTML, back HTML), with the note type's CSS."""
    folder = tmp_path_factory.mktemp("anki") / "profile"
    folder.mkdir()
    col = Collection(str(folder / "collection.anki2"))
    try:
        request = ImportAnkiPackageRequest(
            package_path=str(challenge / "gru_mastery.apkg"), options=ImportAnkiPackageOptions()
        )
        col.import_anki_package(request)
        sample: dict[str, tuple[str, str, str]] = {}
        for card_id in col.find_cards(""):
            card = col.get_card(card_id)
            question_id = html.unescape(card.note()["Source"]).split(" · ")[1]
            sample.setdefault(question_id, (question_id, card.question(), card.answer()))
        return list(sample.values())
    finally:
        col.close()


def anki_page(content: str, dark: bool) -> str:
    """A card as Anki's reviewer shows it: in a body of class `card` (and Anki's night-mode classes when dark), with
    the type-in box its reviewer puts where the template says {{type:…}}."""
    box = '<center><input type="text" id="typeans"></center>'
    content = content.replace("[[type:Typed]]", box)
    night = " nightMode night_mode" if dark else ""
    head = (
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>card</title>'
    )
    # The reviewer's document is Anki's: the card is its main content (a landmark is the host page's to give).
    body = f'<body class="card{night}"><main>{content}</main></body>'
    return f'<!DOCTYPE html><html lang="en"><head>{head}</head>{body}</html>'


@pytest.mark.parametrize("context", STATES, indirect=True, ids=[f"{w}-{s}" for w, s in STATES])
def test_anki_cards_fit_and_axe_finds_nothing(context: Any, cards: list[tuple[str, str, str]]) -> None:
    tab = context.new_page()
    dark = bool(tab.evaluate("matchMedia('(prefers-color-scheme: dark)').matches"))
    problems: dict[str, Any] = {}
    for question_id, front, back in cards:
        for side, content in (("front", front), ("back", back)):
            tab.set_content(anki_page(content, dark))
            for hint in tab.locator("a.hint").all():
                hint.click()  # the revealed hint is checked too
            # Anki's own type-in box (#typeans) is its reviewer's markup, not the card's: left out of the check.
            found = violations(tab, exclude=["#typeans"])
            wide = too_wide(tab)
            if found or wide:
                problems[f"{question_id} {side}"] = found + wide
            backgrounds = tab.eval_on_selector_all(
                ".qb-pre, code.qb-code", "ns => ns.map(n => getComputedStyle(n).backgroundColor)"
            )
            assert set(backgrounds) <= {"rgb(22, 27, 34)" if dark else "rgb(246, 248, 250)"}, question_id
    assert problems == {}
    tab.close()


def test_lms_code_with_inline_styles_wraps_on_a_phone_too(browser: Any, gru_50: Generation, tmp_path: Path) -> None:
    """Moodle and Canvas pages are not ours to style: their code wraps by inline styles alone."""
    from lxml import etree

    qbank.export(gru_50, ["moodle"], tmp_path)
    texts = [
        q.findtext("questiontext/text")
        for q in etree.parse(str(tmp_path / "gru_mastery.moodle.xml")).iterfind("question")
        if q.get("type") != "category"
    ]
    made = browser.new_context(viewport={"width": 390, "height": 844})
    tab = made.new_page()
    for text in texts[:: max(1, len(texts) // 12)]:
        tab.set_content(f'<!DOCTYPE html><html><body style="margin:8px">{text}</body></html>')
        assert too_wide(tab) == [], text[:200]
        copied = tab.evaluate("() => { const p = document.querySelector('pre'); return p ? p.textContent : ''; }")
        assert "\n\n\n" not in copied
    made.close()


@pytest.mark.parametrize("context", [("phone", "light"), ("phone", "dark")], indirect=True, ids=["light", "dark"])
def test_fill_in_ordering_and_matching_problems_fit_and_axe_finds_nothing(
    context: Any, pool: Any, tmp_path: Path
) -> None:
    """The built-in GRU Workshop: text boxes in code, blocks to move and selects, open and locked."""
    made = qbank.generate(qbank.load_bank("gru_workshop"), 1, 2, pool=pool)
    qbank.export(made, ["html"], tmp_path)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto((tmp_path / "gru_workshop.html").as_uri() + "#seed=1")
    found: dict[str, list[Any]] = {}
    for index in range(len(made.bank.questions)):
        kind = problem(tab)["type"]
        found[f"{index} {kind} open"] = violations(tab) + too_wide(tab)
        while tab.locator("#next").is_hidden():  # answer wrongly until the problem locks
            for box in tab.locator("input.blank").all():
                box.fill("0")
            for pick in tab.locator("select.match").all():
                pick.select_option(index=1)
            tab.locator("#submit").click()
        found[f"{index} {kind} locked"] = violations(tab) + too_wide(tab)
        tab.locator("#next").click()
    assert {where: v for where, v in found.items() if v} == {}
    assert errors == []
