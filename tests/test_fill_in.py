"""Fill-in-the-blank questions: every value tried is run, and every one that gives the same outcome is accepted."""

from __future__ import annotations

import html
import json
import re
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
from qbank.variant import Variant
from qbank.writing import render_all

from .conftest import bank_of, question

CANDIDATES = [1, 3, 5, 7, 9]


def max_question(**fields: Any) -> dict[str, Any]:
    """`max(a, 5)` printed: every a up to 5 prints 5, so a blank over a has several right values."""
    return question(
        id="max_fill",
        type="fill_in",
        stem="Fill the gap so that the code prints `{{ outcome }}`.",
        code='import torch\nx = torch.tensor([{{ blank("a") }}, 5])\nprint(int(x.max()))\n',
        explanation="max keeps the larger value.",
        answer={"kind": "stdout"},
        params={"a": {"type": "choice", "values": CANDIDATES}},
        **fields,
    )


def gru_question(**fields: Any) -> dict[str, Any]:
    return question(
        id="gru_fill",
        type="fill_in",
        category="Hyperparameter",
        stem="Which hidden size makes the last line print `{{ outcome }}`?",
        code=(
            "import torch\nimport torch.nn as nn\n\n"
            'gru = nn.GRU(input_size={{ features }}, hidden_size={{ blank("hidden") }}, batch_first=True)\n'
            "output, h_n = gru(torch.randn(2, 5, {{ features }}))\nprint(output.shape)\n"
        ),
        explanation="output is (batch, seq, hidden) with batch_first=True.",
        answer={"kind": "stdout"},
        params={"hidden": {"type": "choice", "values": [8, 16, 32]}, "features": {"type": "int", "min": 3, "max": 6}},
        blanks={"hidden": {"candidates": [4, 8, 16, 32, 64], "unique": True}},
        **fields,
    )


@pytest.fixture(scope="module")
def made(pool: WorkerPool) -> qbank.Generation:
    return qbank.generate(bank_of(max_question(), gru_question(), bank_id="fill"), 5, 1, pool=pool)


def test_every_value_that_gives_the_same_output_is_accepted(made: qbank.Generation) -> None:
    variants = [v for v in made.variants if v.question_id == "max_fill"]
    assert len(variants) == len(CANDIDATES)
    for variant in variants:
        (blank,) = variant.blanks
        ran_with = variant.params["a"]
        assert blank.answers[0] == str(ran_with)
        printed = max(ran_with, 5)
        assert variant.stem == f"Fill the gap so that the code prints `{printed}`."
        # Python's own max says which values work; the generator found them by running torch.
        assert sorted(blank.answers, key=int) == [str(a) for a in CANDIDATES if max(a, 5) == printed]
    assert any(len(v.blanks[0].answers) > 1 for v in variants)


def test_accepted_values_really_print_the_outcome(made: qbank.Generation) -> None:
    """Each accepted value, put in the gap and run in a fresh interpreter, prints what the stem asks for."""
    variant = next(v for v in made.variants if v.question_id == "max_fill" and len(v.blanks[0].answers) > 1)
    assert variant.code is not None and variant.gapped_code is not None
    target = subprocess.run([sys.executable, "-c", variant.code], capture_output=True, text=True, check=True).stdout
    for value in variant.blanks[0].answers:
        code = variant.with_gaps(variant.gapped_code, lambda number, blank, value=value: value)
        printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert printed == target, value


def test_a_unique_blank_that_another_value_fills_fails_its_variant(pool: WorkerPool) -> None:
    made = qbank.generate(bank_of(max_question(blanks={"a": {"unique": True}}), bank_id="unique"), 5, 1, pool=pool)
    assert made.variants and made.failures  # a = 7 or 9: only it works; a <= 5: 1, 3 and 5 all print 5
    for failure in made.failures:
        others = [str(a) for a in CANDIDATES if a <= 5 and a != failure.params["a"]]
        assert f"blank 'a' is declared unique, but {', '.join(others)} also give '5'" in failure.reason
    assert all(max(v.params["a"], 5) == v.params["a"] for v in made.variants)


def test_no_format_shows_the_value_that_fills_the_gap(made: qbank.Generation) -> None:
    variant = next(v for v in made.variants if v.question_id == "gru_fill")
    value = variant.params["hidden"]
    assert f"hidden_size={value}" in (variant.code or "")
    assert variant.shown_code is not None and "hidden_size=__(1)__" in variant.shown_code
    files = render_all(["markdown", "html", "moodle", "gift", "anki"], qbank.BankInfo.of(made.bank), [variant], 1)
    sheet = files["fill.md"]
    assert "hidden_size=__(1)__" in sheet and f"hidden_size={value}" not in sheet
    page = files["fill.html"]
    found = page.find(f"hidden_size={value}")
    assert found == -1, page[found - 200 : found + 50]
    data = re.search(r'<script type="application/json" id="qbank-data">(.*?)</script>', page, flags=re.S)
    assert data and 'aria-label="Gap 1"' in json.loads(data.group(1))["problems"][0][0]["code"]


def test_moodle_gets_a_cloze_question_accepting_every_working_value(made: qbank.Generation, tmp_path: Path) -> None:
    qbank.export(made, ["moodle"], tmp_path)
    tree = etree.parse(str(tmp_path / "fill.moodle.xml"))
    questions = [q for q in tree.iterfind("question") if q.get("type") != "category"]
    assert {q.get("type") for q in questions} == {"multianswer"}
    by_id = {v.variant_id: v for v in made.variants}
    for q in questions:
        variant = by_id[q.findtext("idnumber").rsplit(":", 1)[1]]
        text = q.findtext("questiontext/text")
        # Moodle's Cloze syntax: {1:SHORTANSWER:%100%a~%100%b}, one per gap.
        gaps = re.findall(r"\{1:SHORTANSWER:([^}]*)\}", text)
        assert [[a.removeprefix("%100%") for a in gap.split("~")] for gap in gaps] == [
            b.answers for b in variant.blanks
        ]
        assert "__qbank_blank_" not in text


def test_gift_writes_one_gap_and_refuses_two(made: qbank.Generation, pool: WorkerPool) -> None:
    files = render_all(["gift"], qbank.BankInfo.of(made.bank), made.variants, 1)
    for variant in made.variants:
        accepted = " ".join(f"={a}" for a in variant.blanks[0].answers)
        assert "{" + accepted + " ####" in files["fill.gift.txt"]
    two = question(
        id="two",
        type="fill_in",
        stem="Fill both gaps.",
        code='print(max({{ blank("a") }}, {{ blank("b") }}))',
        explanation="max",
        answer={"kind": "stdout"},
        params={"a": {"type": "choice", "values": [1, 2]}, "b": {"type": "choice", "values": [3, 4]}},
    )
    both = qbank.generate(bank_of(two, bank_id="two"), 1, 1, pool=pool)
    assert len(both.variants[0].blanks) == 2
    with pytest.raises(ExportRefused, match="2 blanks"):
        render_all(["gift"], qbank.BankInfo.of(both.bank), both.variants, 1)


def test_canvas_gets_fill_in_multiple_blanks_accepting_every_working_value(made: qbank.Generation) -> None:
    import io
    import zipfile

    archive = render_all(["qti"], qbank.BankInfo.of(made.bank), made.variants, 1)["fill.qti.zip"]
    with zipfile.ZipFile(io.BytesIO(archive)) as package:
        name = next(n for n in package.namelist() if n.endswith(".xml") and "/" in n and "meta" not in n)
        root = etree.fromstring(package.read(name))
    ns = {"q": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"}
    items = root.findall(".//q:item", ns)
    assert len(items) == len(made.variants)
    by_title = {f"{v.title} · {v.variant_id[:8]}": v for v in made.variants}
    for item in items:
        variant = by_title[item.get("title")]
        kind = item.find(".//q:qtimetadatafield[q:fieldlabel='question_type']/q:fieldentry", ns).text
        assert kind == "fill_in_multiple_blanks_question"
        text = item.find("q:presentation/q:material/q:mattext", ns).text
        assert "[gap1]" in text and "__qbank_blank_" not in text
        lids = item.findall("q:presentation/q:response_lid", ns)
        assert [lid.get("ident") for lid in lids] == [f"response_gap{n}" for n in range(1, len(variant.blanks) + 1)]
        for lid, blank in zip(lids, variant.blanks, strict=True):
            assert [m.text for m in lid.findall(".//q:response_label//q:mattext", ns)] == blank.answers
        # Every accepted answer's ident scores: Canvas gives the gap's share for any of them.
        scored = {
            c.find(".//q:varequal", ns).text
            for c in item.findall(".//q:respcondition", ns)
            if c.find(".//q:setvar", ns) is not None
        }
        assert scored == {label.get("ident") for lid in lids for label in lid.findall(".//q:response_label", ns)}


def test_a_gap_is_graded_by_meaning_and_every_working_value_scores(made: qbank.Generation) -> None:
    variant = next(v for v in made.variants if v.question_id == "max_fill" and len(v.blanks[0].answers) > 1)
    for value in variant.blanks[0].answers:
        assert score(variant, f" {value} ")[0] == 1.0
    wrong = next(str(a) for a in CANDIDATES if str(a) not in variant.blanks[0].answers)
    assert score(variant, wrong)[0] == 0.0


def test_the_challenge_takes_any_working_value_in_the_gap(browser: Any, made: qbank.Generation, tmp_path: Path) -> None:
    variant = next(v for v in made.variants if v.question_id == "max_fill" and len(v.blanks[0].answers) > 1)
    qbank.export(qbank.Generation(bank=made.bank, seed=1, variants=[variant]), ["html"], tmp_path)
    tab = browser.new_page()
    tab.goto((tmp_path / "fill.html").as_uri())
    box = tab.locator("input.blank")
    assert box.count() == 1 and tab.evaluate("document.activeElement.className") == "blank"
    tab.keyboard.press("Enter")  # an empty gap costs nothing
    assert "Fill every gap first" in tab.locator("#feedback").inner_text()
    box.fill(variant.blanks[0].answers[-1])  # not the value the code ran with, but one that works too
    box.press("Enter")
    assert "Correct" in tab.locator("#feedback").inner_text()
    tab.close()


def test_json_records_the_gaps_and_reads_back(made: qbank.Generation, tmp_path: Path) -> None:
    from qbank.exporters.json import load

    qbank.export(made, ["json"], tmp_path)
    document = json.loads((tmp_path / "fill.json").read_text())
    first = document["variants"][0]
    assert (
        first["type"] == "fill_in" and first["blanks"][0]["name"] == "a" and "__qbank_blank_1__" in first["gapped_code"]
    )
    assert [v.blanks for v in load(tmp_path / "fill.json").variants] == [v.blanks for v in made.variants]
    assert isinstance(Variant.model_validate(first), Variant)


def test_anki_makes_cloze_cards_whose_back_lists_every_working_value(made: qbank.Generation, tmp_path: Path) -> None:
    from anki.collection import Collection, ImportAnkiPackageOptions, ImportAnkiPackageRequest

    qbank.export(made, ["anki"], tmp_path)
    (tmp_path / "profile").mkdir()
    col = Collection(str(tmp_path / "profile" / "collection.anki2"))
    try:
        request = ImportAnkiPackageRequest(package_path=str(tmp_path / "fill.apkg"), options=ImportAnkiPackageOptions())
        assert len(col.import_anki_package(request).log.new) == len(made.variants)
        by_id = {v.variant_id: v for v in made.variants}
        for card_id in col.find_cards(""):
            card = col.get_card(card_id)
            assert card.note_type()["type"] == 1  # Anki's cloze kind
            variant = by_id[card.note()["Source"].rsplit(" · ", 1)[1]]
            front, back = (
                re.sub(r"<style>.*?</style>|<[^>]+>", "", side, flags=re.S) for side in (card.question(), card.answer())
            )
            assert "[...]" in front and "template has a problem" not in front
            shown_code = (variant.shown_code or "").replace("__(1)__", variant.blanks[0].answers[0])
            assert shown_code.split("\n")[-1] in back
            assert "(1) " + " or ".join(variant.blanks[0].answers) in back  # every working value, on the back
    finally:
        col.close()


def test_the_gapped_code_leaves_out_the_same_hidden_lines_as_the_code(pool: WorkerPool) -> None:
    """A hidden setup and a parameter bound for the answer expression are first lines learners do not see."""
    hidden = question(
        id="hidden",
        type="fill_in",
        stem="Which size gives `{{ outcome }}`?",
        setup={"code": "import torch", "show": False},
        code='x = torch.zeros(2, {{ blank("n") }})\n',
        explanation="x has n columns, times k.",
        answer={"kind": "value", "expression": "x.shape[1] * k"},
        params={"n": {"type": "choice", "values": [3, 4]}, "k": {"type": "choice", "values": [5]}},
    )
    made = qbank.generate(bank_of(hidden, bank_id="hidden"), 2, 1, pool=pool)
    for variant in made.variants:
        assert variant.hidden_lines == 2  # `import torch`, and `k = 5` for the expression
        assert variant.shown_code == "x = torch.zeros(2, __(1)__)"
        assert variant.blanks[0].answers == [str(variant.params["n"])]


# qtype_multianswer's ANSWER_REGEX and how its import unescapes an answer, ported from Moodle (PCRE → Python).
_FRACTION = r"=|%(-?[0-9]+(?:[.,][0-9]*)?)%"
_ANSWER = r".+?(?<!\\)(?<!&)(?<!&amp;)(?=[~#}]|$)"
_ALTERNATIVE = f"({_FRACTION})?({_ANSWER})(#(.*?(?<!\\\\)(?=[~}}]|$)))?"


def moodle_cloze_answers(text: str) -> list[str]:
    found = re.match(r"\{([0-9]*):(SHORTANSWER|SA|MW):(" + _ALTERNATIVE + "(~" + _ALTERNATIVE + r")*)\}", text)
    assert found, text
    rest, answers = found.group(3), []
    while rest and (alternative := re.match("~?" + _ALTERNATIVE, rest)):
        answers.append(html.unescape(alternative.group(3)).replace("\\}", "}").replace("\\#", "#"))
        rest = rest[len(alternative.group(0)) :]
    return answers


def test_cloze_answers_survive_moodles_parser_whatever_characters_they_hold() -> None:
    from qbank.exporters.moodle import _cloze

    from qbank.variant import BlankKey

    hostile = ["16", "a}b#c~d", 'x/y"z', "<tag>&amp", "1e-05", "pre*post"]
    read = moodle_cloze_answers(_cloze(1, BlankKey(name="a", answers=hostile)))
    # A short answer's `*` is a wildcard; Moodle's short-answer grading reads `\*` as the star itself.
    assert read == [answer.replace("*", "\\*") for answer in hostile]
