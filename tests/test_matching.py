"""Matching questions: each item's code is run, its outcome is its match, and outcomes that mean the same are one."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import qbank
from qbank.grading import score
from qbank.runner import WorkerPool
from qbank.variant import BLOCK_LETTERS
from qbank.writing import render_all

from .conftest import bank_of, question

SHARED = "import torch\nimport torch.nn as nn\nx = torch.randn({{ batch }}, 5, {{ features }})\n"
ITEMS = [
    {
        "label": "`nn.GRU({{ features }}, {{ hidden }}, batch_first=True)`",
        "code": "print(nn.GRU({{ features }}, {{ hidden }}, batch_first=True)(x)[0].shape)",
    },
    {
        "label": "`nn.Linear({{ features }}, {{ hidden }})`",
        "code": "print(nn.Linear({{ features }}, {{ hidden }})(x).shape)",
    },
    {"code": "print(x.mean(dim=1).shape)"},
    {"code": "print(x.transpose(0, 1).shape)"},
]


def matching(**fields: Any) -> dict[str, Any]:
    fields.setdefault("items", ITEMS)
    return question(
        id="layers",
        type="matching",
        stem="Match each item to the shape it prints.",
        code=SHARED,
        explanation="Shapes.",
        answer={"kind": "stdout"},
        params={
            "batch": {"type": "int", "min": 2, "max": 4},
            "features": {"type": "choice", "values": [6, 8]},
            "hidden": {"type": "choice", "values": [16, 32]},
        },
        **fields,
    )


@pytest.fixture(scope="module")
def made(pool: WorkerPool) -> qbank.Generation:
    return qbank.generate(bank_of(matching(), bank_id="match"), 3, 1, pool=pool)


def test_each_item_is_matched_to_what_its_code_prints(made: qbank.Generation) -> None:
    assert len(made.variants) == 3 and not made.failures
    for variant in made.variants:
        assert len(variant.pairs) == len(ITEMS)
        for pair in variant.pairs:  # each item's snippet, run in a fresh interpreter, prints its match
            printed = subprocess.run([sys.executable, "-c", pair.code], capture_output=True, text=True, check=True)
            assert printed.stdout.strip() == pair.match
        # The GRU's output and the Linear's have the same shape here: one match, offered once.
        assert variant.pairs[0].match == variant.pairs[1].match
        assert len(variant.matches) == len({pair.match for pair in variant.pairs}) == 3
        assert variant.pairs[2].item.startswith("```python")  # an item without a label shows its code


def test_items_that_all_give_the_same_outcome_fail_the_variant(pool: WorkerPool) -> None:
    same = [{"code": "print(x.shape)"}, {"code": "print(x.clone().shape)"}]
    made = qbank.generate(bank_of(matching(items=same), bank_id="same"), 1, 1, pool=pool)
    assert not made.variants and "nothing to match" in made.failures[0].reason


def test_moodle_gift_and_canvas_get_a_matching_question(made: qbank.Generation) -> None:
    files = render_all(["moodle", "gift", "qti"], qbank.BankInfo.of(made.bank), made.variants, 1)
    by_id = {v.variant_id: v for v in made.variants}
    root = etree.fromstring(files["match.moodle.xml"].encode())
    questions = [q for q in root.iterfind("question") if q.get("type") != "category"]
    assert {q.get("type") for q in questions} == {"match"}
    for q in questions:
        variant = by_id[q.findtext("idnumber").rsplit(":", 1)[1]]
        assert [s.findtext("answer/text") for s in q.iterfind("subquestion")] == [p.match for p in variant.pairs]
    gift = files["match.gift.txt"]
    for variant in made.variants:
        for pair in variant.pairs:
            assert f"-> {pair.match.replace(':', chr(92) + ':')}" in gift
    with zipfile.ZipFile(io.BytesIO(files["match.qti.zip"])) as package:
        name = next(n for n in package.namelist() if n.endswith(".xml") and "/" in n and "meta" not in n)
        items = etree.fromstring(package.read(name)).findall(".//{*}item")
    by_title = {f"{v.title} · {v.variant_id[:8]}": v for v in made.variants}
    for item in items:
        variant = by_title[item.get("title")]
        fields = {
            f.findtext("{*}fieldlabel"): f.findtext("{*}fieldentry") for f in item.iterfind(".//{*}qtimetadatafield")
        }
        assert fields["question_type"] == "matching_question"
        scored = {}
        for condition in item.iterfind(".//{*}respcondition"):
            equal = condition.find(".//{*}varequal")
            if condition.find(".//{*}setvar") is not None and equal is not None:
                scored[equal.get("respident")] = equal.text
        lids = item.findall("{*}presentation/{*}response_lid")
        assert len(lids) == len(variant.pairs)
        for lid, pair in zip(lids, variant.pairs, strict=True):  # the label that scores is the item's match
            labels = {
                label.get("ident"): label.findtext(".//{*}mattext") for label in lid.iterfind(".//{*}response_label")
            }
            assert sorted(labels.values()) == sorted(variant.matches)
            assert labels[scored[lid.get("ident")]] == pair.match


def test_grading_takes_each_items_letter_in_order(made: qbank.Generation) -> None:
    variant = made.variants[0]
    right = [BLOCK_LETTERS[variant.matches.index(pair.match)] for pair in variant.pairs]
    assert score(variant, ", ".join(right))[0] == 1.0
    assert score(variant, "".join(right).lower())[0] == 1.0
    assert score(variant, ", ".join(reversed(right)))[0] == float(right == right[::-1])


def test_the_challenge_matches_with_the_keyboard_alone(browser: Any, made: qbank.Generation, tmp_path: Path) -> None:
    variant = made.variants[0]
    qbank.export(qbank.Generation(bank=made.bank, seed=1, variants=[variant]), ["html"], tmp_path)
    tab = browser.new_page()
    tab.goto((tmp_path / "match.html").as_uri())
    assert tab.evaluate("document.activeElement.tagName") == "SELECT"
    for index, pair in enumerate(variant.pairs):
        letter = BLOCK_LETTERS[variant.matches.index(pair.match)]
        tab.locator(f'select[data-item="{index}"]').select_option(label=f"{letter}. {pair.match}")
    tab.locator("#submit").focus()
    tab.keyboard.press("Enter")
    assert "Correct" in tab.locator("#feedback").inner_text()
    tab.close()
