"""Exams per student and grading: real banks, real torch runs, the PDF rendered by poppler, the CLI end to end."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import qbank
from qbank import display
from qbank.answers import dims_of
from qbank.exam import exam_files, make_exam, numbered, read_roster
from qbank.grading import NO_ANSWER, RIGHT, origin, score
from qbank.runner import WorkerPool
from qbank.variant import Variant

from .conftest import run_cli

NAMES = ["Zoë Ångström", "Юлия Смирнова", "O'Brien, Pat", "Anne-Marie <b>Dupont</b>", "Ünal Şahin", "Αλέξης Νίκου"]


def roster(folder: Path, count: int) -> Path:
    path = folder / "roster.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # a BOM, as spreadsheets write it
        writer = csv.writer(handle)
        writer.writerow(["Name", "ID", "email"])
        for number in range(count):
            writer.writerow([NAMES[number % len(NAMES)] + f" {number}", f"2026/{number:03d}", f"s{number}@x.org"])
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def exam30(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`qbank exam` run once for 30 students of a roster, as a teacher would."""
    folder = tmp_path_factory.mktemp("exam")
    result = run_cli("exam", "gru_mastery", "--roster", roster(folder, 30), "--seed", 4, "--out", folder / "out")
    assert result.returncode == 0, result.stderr
    assert "30 students, 9 questions each" in result.stdout
    return folder / "out"


def test_thirty_students_get_a_sheet_a_key_and_a_pdf_each(exam30: Path) -> None:
    manifest = json.loads((exam30 / "manifest.json").read_text())
    students = manifest["students"]
    assert [s["id"] for s in students] == [f"2026/{n:03d}" for n in range(30)]
    assert len({s["file"] for s in students}) == 30 and all("/" not in s["file"] for s in students)
    for student in students:
        for suffix in (".md", ".key.md", ".pdf"):
            assert (exam30 / f"{student['file']}{suffix}").is_file()
        sheet = (exam30 / f"{student['file']}.md").read_text()
        assert student["name"].split(" <b>")[0] in sheet  # the roster's name heads the sheet (escaped)
        assert len(student["questions"]) == 9
    rows = read_csv(exam30 / "key.csv")
    assert len(rows) == 30 * 9
    variants = {v["variant_id"]: Variant.model_validate(v) for v in manifest["variants"]}
    for row in rows:
        variant = variants[row["variant_id"]]
        if variant.type == "multiple_choice":
            assert [variant.choices["ABCDEFGHIJ".index(letter)].correct for letter in row["key"].split(", ")] == [True]


def test_students_get_different_variants_wherever_the_bank_has_enough(
    exam30: Path, gru_bank: qbank.Bank, pool: WorkerPool
) -> None:
    manifest = json.loads((exam30 / "manifest.json").read_text())
    dealt: dict[str, list[str]] = {}
    for student in manifest["students"]:
        for entry in student["questions"]:
            dealt.setdefault(entry["question_id"], []).append(entry["variant_id"])
    # How many distinct variants each question can give 30 students, asked of the generator itself.
    available = Counter(v.question_id for v in qbank.generate(gru_bank, 30, 4, pool=pool).variants)
    for question_id, variant_ids in dealt.items():
        assert len(set(variant_ids)) == min(30, available[question_id]), question_id
    assert sum(1 for n in available.values() if n >= 30) >= 4  # the test means something: most questions vary


def pixels_of_page(pdf: Path, folder: Path) -> bytes:
    """Page 1 rendered by poppler's pdftoppm as 8-bit grey pixels."""
    subprocess.run(["pdftoppm", "-gray", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(folder / "page")], check=True)
    image = next(folder.glob("page*.pgm")).read_bytes()
    magic, width, height, depth, pixels = image.split(maxsplit=4)
    assert magic == b"P5" and depth == b"255"
    return pixels[: int(width) * int(height)]


def test_every_pdf_page_one_renders_with_ink_and_names_its_student(exam30: Path, tmp_path: Path) -> None:
    if not shutil.which("pdftoppm"):
        pytest.fail("the exam PDF tests need poppler's pdftoppm: apt-get install poppler-utils (see README, Tests)")
    manifest = json.loads((exam30 / "manifest.json").read_text())
    for student in manifest["students"][:3]:
        pdf = exam30 / f"{student['file']}.pdf"
        assert pdf.read_bytes().startswith(b"%PDF-")
        folder = tmp_path / student["file"]
        folder.mkdir()
        pixels = pixels_of_page(pdf, folder)
        dark = sum(1 for value in pixels if value < 128)
        assert 0.01 < dark / len(pixels) < 0.5  # text on a white page: neither blank nor a black box
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
        assert student["id"] in text.stdout
        assert student["name"].split()[0] in text.stdout


def test_no_two_students_and_no_grading_file_share_a_file_name() -> None:
    from qbank.exam import Student, _file_names

    ids = ["a", "A", "a.key", "report", "x/y", "x_y", "..", ""]
    stems = _file_names([Student(i) for i in ids])
    files = [f"{stem}{suffix}".lower() for stem in stems for suffix in (".md", ".key.md", ".pdf")]
    files += ["key.csv", "manifest.json", "grades.csv", "scored.csv", "report.md"]
    assert len(files) == len(set(files)), stems


def test_the_same_roster_and_seed_give_byte_identical_files(gru_bank: qbank.Bank, pool: WorkerPool) -> None:
    students = numbered(8)
    first = exam_files(make_exam([gru_bank], students, 9, pool=pool))
    second = exam_files(make_exam([gru_bank], students, 9, pool=pool))
    assert first.keys() == second.keys() and len(first) == 8 * 3 + 2
    for name in first:
        assert first[name] == second[name], name
    other = exam_files(make_exam([gru_bank], students, 10, pool=pool), pdf=False)
    assert other["key.csv"] != first["key.csv"]


def test_a_student_keeps_their_variants_when_the_roster_is_reordered(gru_bank: qbank.Bank, pool: WorkerPool) -> None:
    students = numbered(6)
    forward = make_exam([gru_bank], students, 2, pool=pool)
    backward = make_exam([gru_bank], students[::-1], 2, pool=pool)
    ids = {s.student.id: [v.variant_id for v in s.variants] for s in forward.sheets}
    assert ids == {s.student.id: [v.variant_id for v in s.variants] for s in backward.sheets}


def test_pick_draws_k_questions_per_category_for_each_student(gru_bank: qbank.Bank, pool: WorkerPool) -> None:
    exam = make_exam([gru_bank], numbered(20), 3, pick={"Debug": 1, "Predict Output": 1}, pool=pool)
    drawn: Counter[str] = Counter()
    for sheet in exam.sheets:
        assert sorted(v.category for v in sheet.variants) == ["Debug", "Predict Output"]
        drawn.update(v.question_id for v in sheet.variants)
    debug = {q.id for q in gru_bank.questions if q.category == "Debug"}
    assert debug <= set(drawn), "every Debug question is drawn for someone among 20 students"


# --- grading ------------------------------------------------------------------------------------------------


def respelled(variant: Variant) -> str:
    """The right answer written as a student might, not as the key is: another shape spelling, a lower-case
    letter, `t`/`f`, more digits."""
    if variant.type == "true_false":
        return "t" if variant.correct_choices[0].text == "True" else "f"
    if variant.type == "multiple_choice":
        plain = display.plain_of(variant.correct_choices[0].text)
        dims = dims_of(plain)
        if dims is not None and plain.startswith("torch.Size"):
            return "(" + ",".join(map(str, dims)) + ")"  # the option's text, written another way
        return "abcdefghij"[variant.choices.index(variant.correct_choices[0])]
    if variant.type == "numeric":
        return variant.answers[0] + "0"
    return " " + variant.answers[-1].replace(", ", " ,  ") + " "


def test_grading_scores_right_wrong_respelled_and_empty_answers_and_counts_mistakes(
    exam30: Path, tmp_path: Path
) -> None:
    manifest = json.loads((exam30 / "manifest.json").read_text())
    variants = {v["variant_id"]: Variant.model_validate(v) for v in manifest["variants"]}
    rows: list[list[Any]] = [["student", "question", "answer"]]
    expected_total = 0
    expected_mistakes: Counter[tuple[str, str]] = Counter()
    expected_empty = 0
    for index, student in enumerate(manifest["students"]):
        for entry in student["questions"]:
            variant = variants[entry["variant_id"]]
            mode = (index + entry["number"]) % 4
            mistakes = [c for c in variant.choices if c.source == "mistake"]
            if mode == 1 and mistakes:
                chosen = mistakes[index % len(mistakes)]
                rows.append([student["id"], entry["number"], "ABCDEFGHIJ"[variant.choices.index(chosen)]])
                expected_mistakes[variant.question_id, f"mistake: {chosen.mistake}"] += 1
            elif mode == 2:
                rows.append([student["id"], entry["number"], respelled(variant)])
                expected_total += 1
            elif mode == 3:
                expected_empty += 1  # no row at all, or an empty answer: both are no answer
                if index % 2:
                    rows.append([student["id"], entry["question_id"], "   "])
            else:
                key = variant.answers[0] if variant.type in ("numeric", "short_answer") else None
                letters = [
                    c for c in "ABCDEFGHIJ"[: len(variant.choices)] if variant.choices["ABCDEFGHIJ".index(c)].correct
                ]
                rows.append([student["id"], entry["number"], key or ", ".join(letters)])
                expected_total += 1
    answers = tmp_path / "answers.csv"
    with answers.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)

    result = run_cli("grade", exam30, "--answers", answers, "--out", tmp_path / "graded")
    assert result.returncode == 0, result.stderr
    grades = read_csv(tmp_path / "graded" / "grades.csv")
    assert len(grades) == 30
    assert sum(float(g["score"]) for g in grades) == expected_total
    scored = read_csv(tmp_path / "graded" / "scored.csv")
    assert sum(1 for row in scored if row["chosen"] == NO_ANSWER) == expected_empty
    found = Counter((row["question_id"], row["chosen"]) for row in scored if row["chosen"].startswith("mistake: "))
    assert found == expected_mistakes and sum(found.values()) > 20
    report = (tmp_path / "graded" / "report.md").read_text()
    for (question_id, label), count in expected_mistakes.items():
        section = report.split(f"`gru_mastery/{question_id}`")[1].split("\n## ")[0]
        assert f"| {label} | {count} |" in section.replace("\\", "")
    charts = sorted((tmp_path / "graded").glob("chart-*.svg"))
    assert len(charts) == 9
    from lxml import etree

    bars = etree.parse(str(charts[0])).getroot()
    assert bars.tag.endswith("svg") and len(bars.findall("{http://www.w3.org/2000/svg}rect")) >= 2


def test_a_text_answer_is_matched_to_its_option_by_meaning(gru_bank: qbank.Bank, pool: WorkerPool) -> None:
    exam = make_exam([gru_bank], numbered(3), 1, pool=pool)
    variant = next(v for v in exam.sheets[0].variants if v.question_id == "gru_output_shape")
    for index, choice in enumerate(variant.choices):
        dims = dims_of(display.plain_of(choice.text))
        assert dims is not None
        points, chosen = score(variant, "[" + ", ".join(map(str, dims)) + "]")
        assert chosen == (origin(choice),) and points == float(choice.correct), index
    assert score(variant, "")[1] == (NO_ANSWER,)
    assert score(variant, "(1, 2, 3, 4, 5)") == (0.0, ("not one of the options",))
    right = variant.correct_choices[0]
    assert score(variant, "ABCD"[variant.choices.index(right)].lower()) == (1.0, (RIGHT,))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,mail\nA,a@x\n", "needs a header with an id column"),
        ("id,name\n7,A\n7,B\n", "line 3: the id '7' is already on line 2"),
        ("id,name\n,A\n", "line 2: the student has no id"),
        ("id\n", "lists no students"),
    ],
)
def test_a_bad_roster_is_one_paragraph_naming_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(content)
    with pytest.raises(qbank.QbankError, match=message) as caught:
        read_roster(path)
    assert str(path) in str(caught.value)
    result = run_cli("exam", "gru_mastery", "--roster", path, "--out", tmp_path / "out", "--no-pdf")
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_answers_name_the_line_and_write_nothing(exam30: Path, tmp_path: Path) -> None:
    cases = {
        "student,question,answer\nnobody,1,A\n": "line 2: no student 'nobody' sat this exam",
        "student,question,answer\n2026/000,12,A\n": "has no question '12'",
        "student,question,answer\n2026/000,1,A\n2026/000,1,B\n": "a second answer of student '2026/000' to question 1",
        "who,what\n": "needs a header with the columns student, question and answer",
    }
    for content, message in cases.items():
        path = tmp_path / "answers.csv"
        path.write_text(content)
        result = run_cli("grade", exam30, "--answers", path, "--out", tmp_path / "graded")
        assert result.returncode == 1, content
        assert message in result.stderr and str(path) in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "graded").exists()


def test_a_multiple_answer_question_scores_only_the_exact_set_and_takes_letters_as_written() -> None:
    from qbank.variant import Choice

    variant = Variant(
        bank_id="b",
        question_id="q",
        variant_id="0" * 16,
        params={},
        title="t",
        category="Conceptual",
        type="multiple_choice",
        multiple_answers=True,
        difficulty="beginner",
        time_limit=60,
        attempts=1,
        stem="Which hold?",
        code=None,
        choices=[
            Choice(text="`h_n` keeps one state per layer", correct=True),
            Choice(text="batch_first changes `h_n`", correct=False, source="mistake", mistake="Reading the docs"),
            Choice(text="`output` has every step", correct=True),
        ],
        explanation="e",
    )
    for written in ("A, C", "a,c", "AC", "c a", "A/C"):
        assert score(variant, written)[0] == 1.0, written
    assert score(variant, "A") == (0.0, (RIGHT,))
    assert score(variant, "A, B, C") == (0.0, (RIGHT, "mistake: Reading the docs", RIGHT))
