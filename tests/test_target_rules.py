"""What the real importers require, their rules ported into checks, over the export of every built-in bank; and what
a new author tripped on (a shown setup, `--format all`, keys as a person writes them, error claims graded alike)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from lxml import etree

import qbank
from qbank import display
from qbank.exporting import ExportRefused, exporter
from qbank.generate import Generation
from qbank.grading import score
from qbank.runner import WorkerPool
from qbank.writing import render_all

from .conftest import bank_of, question, run_cli

BUILT_IN = sorted(qbank.builtin_banks())


@pytest.fixture(scope="module")
def built_in(pool: WorkerPool) -> list[Generation]:
    return [qbank.generate(qbank.load_bank(name), 4, 21, pool=pool) for name in BUILT_IN]


def moodle_import_problems(document: bytes) -> list[str]:
    """Moodle 4.5's XML importer, the rules that lose questions (../shared/DESIGN.md, "Facts about the targets"):
    an ordering question with fewer than two hints and no <shownumcorrect>, or any hint without a format, dies on a
    database error (every later question is lost); an ordering question's items must be unique; a matching
    subquestion with an empty answer ends the import silently."""
    problems = []
    for q in etree.fromstring(document).iterfind("question"):
        name = q.findtext("name/text")
        kind = q.get("type")
        hints = q.findall("hint")
        problems += [f"{name}: a hint without format" for hint in hints if not hint.get("format")]
        if kind == "ordering":
            if len(hints) < 2 and q.find("shownumcorrect") is None:
                problems.append(f"{name}: ordering with {len(hints)} hint(s) and no <shownumcorrect>")
            items = [a.findtext("text") for a in q.iterfind("answer")]
            if len(set(items)) != len(items):
                problems.append(f"{name}: two equal ordering items")
        if kind == "match":
            for sub in q.iterfind("subquestion"):
                if not (sub.findtext("answer/text") or "").strip():
                    problems.append(f"{name}: a subquestion with an empty answer")
    return problems


def canvas_match_ids(identifier: str, fallback: int) -> int:
    """Canvas's `get_canvas_matches` (associate_interaction.rb): the first run of digits, else a new local id."""
    found = re.search(r"(\d+)", identifier)
    return int(found.group(1)) if found else fallback


def test_every_built_in_bank_is_written_as_moodles_importer_requires(built_in: list[Generation]) -> None:
    kinds: set[str] = set()
    for result in built_in:
        files = render_all(["moodle"], qbank.BankInfo.of(result.bank), result.variants, 21)
        document = files[f"{result.bank.id}.moodle.xml"]
        assert isinstance(document, str)
        assert moodle_import_problems(document.encode()) == [], result.bank.id
        kinds |= {q.get("type") for q in etree.fromstring(document.encode()).iterfind("question")}
    assert {"ordering", "match", "multianswer", "multichoice"} <= kinds  # the rules met every type that needs them


def test_the_ported_moodle_rule_finds_the_ordering_question_that_crashed_moodle() -> None:
    crashed = (
        b'<quiz><question type="ordering"><name><text>Order</text></name>'
        b'<answer fraction="1"><text>a</text></answer><answer fraction="2"><text>b</text></answer>'
        b'<hint format="html"><text>Look again.</text></hint></question></quiz>'
    )
    assert moodle_import_problems(crashed) == ["Order: ordering with 1 hint(s) and no <shownumcorrect>"]


def test_canvas_reads_a_distinct_match_for_every_match_of_every_matching_question(
    built_in: list[Generation],
) -> None:
    checked = 0
    for result in built_in:
        if not any(v.type == "matching" for v in result.variants):
            continue
        files, _ = exporter("qti").export_what_fits(qbank.BankInfo.of(result.bank), result.variants, 21)
        package = files[f"{result.bank.id}.qti.zip"]
        assert isinstance(package, bytes)
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            name = next(n for n in archive.namelist() if n.count("/") == 1 and "meta" not in n)
            root = etree.fromstring(archive.read(name))
        for item in root.iterfind(".//{*}item"):
            lids = item.findall("{*}presentation/{*}response_lid")
            if not lids or "matching_question" not in etree.tostring(item).decode():
                continue
            labels = [label.get("ident") for label in lids[0].iterfind(".//{*}response_label")]
            ids = [canvas_match_ids(label, -index) for index, label in enumerate(labels)]
            assert len(set(ids)) == len(labels) >= 2, labels
            checked += 1
    assert checked


def test_a_shown_setup_is_shown_above_the_blocks_of_an_ordering_question(pool: WorkerPool, tmp_path: Path) -> None:
    ordering = question(
        id="steps",
        type="ordering",
        stem="Put the lines in an order that prints `{{ outcome }}`.",
        setup={"code": "import math\nbase = {{ x }}", "show": True},
        code="a = base * 10\nb = a + 1\nprint(b)\n",
        answer={"kind": "stdout"},
        params={"x": {"type": "int", "min": 2, "max": 5}},
    )
    result = qbank.generate(bank_of(ordering, bank_id="setup"), 2, 1, pool=pool)
    assert not result.failures, result.failures
    for variant in result.variants:
        assert variant.shown_code == f"import math\nbase = {variant.params['x']}"
    out = tmp_path / "out"
    qbank.export(result, ["markdown", "moodle", "html", "anki"], out)
    sheet = (out / "setup.md").read_text()
    assert sheet.count("base = ") == 2  # once per variant, above its blocks
    document = etree.fromstring((out / "setup.moodle.xml").read_bytes())
    texts = [q.findtext("questiontext/text") for q in document.iterfind("question[@type='ordering']")]
    assert len(texts) == 2 and all("math" in text and "base" in text for text in texts)
    page = (out / "setup.html").read_text()
    found = re.search(r'<script type="application/json" id="qbank-data">(.*?)</script>', page, re.S)
    assert found is not None
    problems = [problem for group in json.loads(found[1])["problems"] for problem in group]
    assert len(problems) == 2 and all("base" in problem["code"] for problem in problems)


def test_all_formats_write_what_they_can_express_and_name_what_they_left_out(tmp_path: Path) -> None:
    done = run_cli("generate", "gru_workshop", "-n", "2", "-s", "1", "-f", "all", "-o", tmp_path)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "left out" in line]
    assert notes == [
        "qbank: note: gift: left out question 'gru_training_step_order': an ordering question (GIFT has none; use "
        "Moodle XML)",
        "qbank: note: qti: left out question 'gru_training_step_order': an ordering question (Canvas's QTI import has "
        "no ordering type; use Moodle XML, or leave the question out with --question)",
    ]
    gift = (tmp_path / "gru_workshop.gift.txt").read_text()
    assert "gru_training_step_order" not in gift and "gru_workshop:gru_match_shapes" in gift
    moodle = (tmp_path / "gru_workshop.moodle.xml").read_text()
    assert "gru_training_step_order" in moodle
    # Asked for by name, a format still refuses and nothing is written.
    refused = run_cli("generate", "gru_workshop", "-n", "2", "-s", "1", "-f", "moodle,gift", "-o", tmp_path / "x")
    assert refused.returncode == 1 and "an ordering question (GIFT has none" in refused.stderr
    assert not (tmp_path / "x" / "gru_workshop.moodle.xml").exists()


def test_a_format_left_with_nothing_to_write_writes_no_file(pool: WorkerPool) -> None:
    ordering = question(
        id="only",
        type="ordering",
        stem="Order to print `{{ outcome }}`.",
        code="a = 1\nb = a + 1\nprint(b)\n",
        answer={"kind": "stdout"},
    )
    result = qbank.generate(bank_of(ordering, bank_id="only"), 1, 1, pool=pool)
    gift = exporter("gift")
    files, left_out = gift.export_what_fits(qbank.BankInfo.of(result.bank), result.variants, 1)
    assert files == {}
    assert left_out == ["gift: left out question 'only': an ordering question (GIFT has none; use Moodle XML)"]
    with pytest.raises(ExportRefused, match="only"):
        gift.export(qbank.BankInfo.of(result.bank), result.variants, 1)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (5e-06, "0.000005"),
        (-0.0, "0.0"),
        (0.0, "0.0"),
        (1.2345678e-05, "0.00001235"),
        (0.4, "0.4"),
        (-1.99, "-1.99"),
        (123456.7, "123457.0"),
        (3e-07, "3e-07"),
        (2e20, "2e+20"),
    ],
)
def test_values_are_shown_as_a_person_writes_them(value: float, shown: str) -> None:
    assert display.format_value(value, 4) == shown


def test_a_numeric_key_reads_the_same_in_the_explanation_the_key_and_the_class_key(
    pool: WorkerPool, tmp_path: Path
) -> None:
    numeric = question(
        id="ratio",
        type="numeric",
        code="r = {{ n }} / 10",
        answer={"kind": "value", "expression": "r", "digits": 4},
        explanation="It is {{ answer }}.",
        params={"n": {"type": "int", "min": 4, "max": 4}},
    )
    result = qbank.generate(bank_of(numeric, bank_id="ratio"), 1, 1, pool=pool)
    (variant,) = result.variants
    assert variant.answers == ["0.4000"] and variant.key_text == "0.4000"
    assert variant.explanation == "It is 0.4000."


def test_a_typed_error_claim_is_graded_as_one_whatever_the_category(pool: WorkerPool) -> None:
    # A Predict Output question whose answer is an exception (or none): "no error" is right on paper as in the page.
    typed = question(
        id="runs",
        type="short_answer",
        category="Predict Output",
        code="import torch\nx = torch.zeros({{ n }}, 3)\n",
        answer={"kind": "error"},
        params={"n": {"type": "int", "min": 2, "max": 3}},
    )
    result = qbank.generate(bank_of(typed, bank_id="runs"), 1, 1, pool=pool)
    (variant,) = result.variants
    assert variant.about_errors
    assert score(variant, "no error")[0] == 1.0
    assert score(variant, "No error.")[0] == 1.0
    assert score(variant, "RuntimeError")[0] == 0.0


def test_a_hand_written_debug_question_is_about_errors_by_its_key_and_another_is_not(pool: WorkerPool) -> None:
    static = question(
        id="static_debug",
        type="multiple_choice",
        category="Conceptual",
        choices=[
            {"text": "RuntimeError: shapes do not match", "correct": True},
            {"text": "No error"},
            {"text": "ValueError"},
        ],
    )
    plain = question(
        id="static_plain",
        type="multiple_choice",
        category="Debug",
        choices=[{"text": "The learning rate", "correct": True}, {"text": "The batch size"}],
    )
    result = qbank.generate(bank_of(static, plain, bank_id="static"), 1, 1, pool=pool)
    by_id = {v.question_id: v for v in result.variants}
    assert by_id["static_debug"].about_errors and not by_id["static_plain"].about_errors
    assert score(by_id["static_debug"], "a RuntimeError")[0] == 1.0


@pytest.mark.parametrize("kind", ["matching", "fill_in", "ordering", "choice_feedback"])
def test_a_control_character_in_any_field_of_any_type_is_refused_by_the_xml_formats(
    pool: WorkerPool, kind: str
) -> None:
    bell = "\x07"
    fields = {
        "matching": {
            "type": "matching",
            "answer": {"kind": "stdout"},
            "items": [{"code": f"print('a{bell}')"}, {"code": "print('b')"}],
        },
        "fill_in": {
            "type": "fill_in",
            "answer": {"kind": "stdout"},
            "code": f"n = {{{{ blank('n') }}}}\nprint('x{bell}' * n)",
            "params": {"n": {"type": "int", "min": 1, "max": 2}},
        },
        "ordering": {
            "type": "ordering",
            "stem": "Order to print `{{ outcome }}`.",
            "answer": {"kind": "stdout"},
            "code": f"a = 'q{bell}'\nb = a * 2\nprint(b)",
        },
        "choice_feedback": {
            "type": "multiple_choice",
            "choices": [{"text": "yes", "correct": True, "feedback": f"right{bell}"}, {"text": "no"}],
        },
    }[kind]
    result = qbank.generate(bank_of(question(id=kind, **fields), bank_id="bell"), 1, 1, pool=pool)
    assert result.variants, result.failures
    for name in ("moodle", "qti"):
        if name == "qti" and kind == "ordering":
            continue
        with pytest.raises(ExportRefused, match=r"U\+0007"):
            render_all([name], qbank.BankInfo.of(result.bank), result.variants, 1)
