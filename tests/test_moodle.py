"""Moodle XML: parsed back with lxml and checked against what Moodle 4.5's importer requires."""

from __future__ import annotations

import html
import re
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

import qbank
from qbank.generate import Generation

ALLOWED = {
    "100",
    "90",
    "83.33333",
    "80",
    "75",
    "70",
    "66.66667",
    "60",
    "50",
    "40",
    "33.33333",
    "30",
    "25",
    "20",
    "16.66667",
    "14.28571",
    "12.5",
    "11.11111",
    "10",
    "5",
    "0",
}
ALLOWED |= {"-" + f for f in ALLOWED if f != "0"}


def export(result: Generation, folder: Path) -> tuple[etree._Element, bytes]:
    qbank.export(result, ["moodle"], folder)
    raw = (folder / f"{result.bank.id}.moodle.xml").read_bytes()
    return etree.fromstring(raw, etree.XMLParser(strip_cdata=False)), raw


def text_of(html_text: str) -> str:
    """What a browser shows of an HTML fragment (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def test_file_is_utf8_with_the_declaration_first(gru_50: Generation, tmp_path: Path) -> None:
    _, raw = export(gru_50, tmp_path)
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    raw.decode("utf-8")


def test_one_category_per_question_holding_all_its_variants(gru_50: Generation, tmp_path: Path) -> None:
    root, _ = export(gru_50, tmp_path)
    current = None
    members: Counter[str] = Counter()
    for question in root.iter("question"):
        if question.get("type") == "category":
            current = question.findtext("category/text")
            assert current.startswith("$course$/top/GRU Mastery/")
        else:
            members[current] += 1
    expected = Counter(v.question_id for v in gru_50.variants)
    assert sorted(members.values()) == sorted(expected.values())
    assert len(members) == len(gru_50.bank.questions)


def test_fractions_come_from_moodles_list(gru_50: Generation, hostile: Generation, tmp_path: Path) -> None:
    for result in (gru_50, hostile):
        root, _ = export(result, tmp_path / result.bank.id)
        for question in root.iter("question"):
            kind = question.get("type")
            if kind == "category":
                continue
            fractions = [a.get("fraction") for a in question.findall("answer")]
            assert set(fractions) <= ALLOWED, fractions
            if kind == "multichoice" and question.findtext("single") == "true":
                assert fractions.count("100") == 1
            if kind == "multichoice" and question.findtext("single") == "false":
                assert abs(sum(float(f) for f in fractions if float(f) > 0) - 100) < 0.001


def test_multiple_answers_fractions_sum_to_100(pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bank = qbank.load_bank(
        {
            "id": "multi",
            "title": "Multi",
            "questions": [
                {
                    "id": "pick",
                    "title": "Pick three",
                    "category": "Conceptual",
                    "type": "multiple_choice",
                    "multiple_answers": True,
                    "difficulty": "beginner",
                    "time_limit": 30,
                    "stem": "Pick",
                    "explanation": "Three.",
                    "choices": [
                        {"text": "a", "correct": True},
                        {"text": "b", "correct": True},
                        {"text": "c", "correct": True},
                        {"text": "d"},
                        {"text": "e"},
                    ],
                }
            ],
        }
    )
    root, _ = export(qbank.generate(bank, 1, 0, pool=pool), tmp_path)
    (question,) = [q for q in root.iter("question") if q.get("type") == "multichoice"]
    assert question.findtext("single") == "false"
    fractions = [a.get("fraction") for a in question.findall("answer")]
    assert sorted(fractions) == sorted(["33.33333"] * 3 + ["-50"] * 2)


def test_attempts_map_to_hints_and_penalty(gru_50: Generation, tmp_path: Path) -> None:
    root, _ = export(gru_50, tmp_path)
    by_id = {v.variant_id: v for v in gru_50.variants}
    for question in root.iter("question"):
        if question.get("type") == "category":
            continue
        variant = by_id[question.findtext("idnumber").rsplit(":", 1)[1]]
        assert len(question.findall("hint")) == variant.attempts - 1
        assert float(question.findtext("penalty")) == pytest.approx(1 / variant.attempts, abs=1e-6)
        if variant.attempts > 1 and variant.hints:
            assert text_of(variant.hints[0][:20]) in text_of(question.findtext("hint/text"))
        assert text_of(question.findtext("generalfeedback/text")).strip()


def test_idnumbers_are_unique_and_stable_across_exports(gru_bank, pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, _ = export(qbank.generate(gru_bank, 5, 3, pool=pool), tmp_path / "a")
    second, _ = export(qbank.generate(gru_bank, 5, 3, pool=pool), tmp_path / "b")
    ids = [q.findtext("idnumber") for q in first.iter("question") if q.get("type") != "category"]
    assert len(ids) == len(set(ids))
    assert all(len(i) <= 100 for i in ids)
    assert ids == [q.findtext("idnumber") for q in second.iter("question") if q.get("type") != "category"]


def test_every_type_is_exported_with_its_key(hostile: Generation, tmp_path: Path) -> None:
    root, _ = export(hostile, tmp_path)
    kinds = Counter(q.get("type") for q in root.iter("question"))
    assert {"multichoice", "shortanswer", "numerical", "truefalse"} <= set(kinds)
    for question in root.iter("question"):
        if question.get("type") == "shortanswer":
            answers = [a.findtext("text") for a in question.findall("answer")]
            if "pow(x, 2)" in answers:
                assert "x\\*x" in answers  # a literal star, not Moodle's wildcard
                continue
            assert any(a.startswith("torch.Size([") for a in answers) and any(a.startswith("(") for a in answers)
            assert any(a.startswith("(") and ", " not in a for a in answers)  # the compact spelling too
        if question.get("type") == "numerical":
            assert float(question.findtext("answer/tolerance")) == 0.01
            text = question.findtext("answer/text")
            value = float(text)
            # a / 3, written to the question's 4 significant digits in every format (not 12 here and 4 elsewhere).
            assert abs(value - round(value * 3) / 3) <= 0.0005
            assert len(text.replace("-", "").replace(".", "").lstrip("0")) <= 4
        if question.get("type") == "truefalse":
            fractions = {a.findtext("text"): a.get("fraction") for a in question.findall("answer")}
            assert fractions == {"true": "100", "false": "0"}


def test_markup_and_cdata_terminators_survive(hostile: Generation, tmp_path: Path) -> None:
    root, raw = export(hostile, tmp_path)
    assert b"]]]]><![CDATA[>" in raw
    for question in root.iter("question"):
        if question.get("type") == "category":
            continue
        vid = question.findtext("idnumber").rsplit(":", 1)[1]
        variant = next(v for v in hostile.variants if v.variant_id == vid)
        shown = text_of(question.findtext("questiontext/text"))
        if variant.code:
            assert variant.code in shown  # every <, &, > of the code, as written
        assert "<script>" not in question.findtext("questiontext/text")
        names = question.findtext("name/text")
        assert len(names) <= 255
    printed = next(v for v in hostile.variants if v.question_id == "printed_markup")
    assert "a<b && c>d ]]> ~=#{}:" in printed.outcome.stdout
