"""Students' answers back from the LMS: a real Moodle 4.5 quiz's reports (tests/fixtures/moodle-4.5-quiz, with the
truth of what every student was made to answer), and Canvas Student Analysis files written as canvas-lms writes them,
traced to their variants, regraded by meaning, and analysed as Moodle and Canvas compute their statistics."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from qbank.exporters.json import load

import qbank
from qbank.classroom.report import report_files
from qbank.classroom.results import Results
from qbank.classroom.sources import results_of
from qbank.errors import QbankError
from qbank.grading import NO_ANSWER
from qbank.variant import Variant
from qbank.writing import render_all

from .conftest import FIXTURES, run_cli

SAMPLE = FIXTURES / "moodle-4.5-quiz"
RESPONSES = SAMPLE / "responses.csv"
EXPORT = SAMPLE / "gru_mastery.json"
TRUTH = json.loads((SAMPLE / "truth.json").read_text(encoding="utf-8"))


def truth_slots() -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["email"], str(slot["slot"])): slot for s in TRUTH["students"] for slot in s["slots"]}


@pytest.fixture(scope="module")
def variants() -> list[Variant]:
    return load(EXPORT).variants


@pytest.fixture(scope="module")
def sample(variants: list[Variant]) -> Results:
    return results_of([RESPONSES], variants)


def choice_text(variant: Variant, index: int) -> str:
    return qbank.display.plain_of(variant.choices[index].text)


def test_every_answered_row_of_the_moodle_sample_is_traced_to_its_variant_and_option(sample: Results) -> None:
    truth = truth_slots()
    assert not sample.problems and len(sample.responses) == len(truth) == 14 * 9
    for response in sample.responses:
        slot = truth[response.record.student, response.record.position]
        assert response.variant.variant_id.startswith(slot["variant_id"])
        assert response.variant.question_id == slot["question_idnumber"].split(":")[1]
        if slot["chosen_text"] is None:  # a blank is a blank
            assert response.record.answer == "" and response.chosen == (NO_ANSWER,)
        elif response.variant.type == "multiple_choice":
            assert [choice_text(response.variant, i) for i in response.options] == [slot["chosen_text"]]
        elif response.variant.type == "true_false":
            assert [response.variant.choices[i].text for i in response.options] == [slot["chosen_text"]]
        else:
            assert response.record.answer == slot["chosen_text"].strip()  # Moodle trims what was typed
        # Moodle's marks (worked out by its rules from the response alone) are the marks Moodle gave.
        assert response.lms_mark == (slot["mark"] or 0), (response.record.student, slot)
    assert not [note for note in sample.notes if "add up" in note]


def test_the_mistake_behind_every_wrong_option_chosen_is_named(sample: Results) -> None:
    named = [r for r in sample.responses if r.options and not r.score]
    assert len(named) > 30
    for response in named:
        chosen = response.variant.choices[response.options[0]]
        assert response.chosen == (qbank.grading.origin(chosen),)
    assert sum(label.startswith("mistake: ") for r in named for label in r.chosen) > 20


def test_the_regrade_lists_the_spellings_moodle_marked_wrong(sample: Results, tmp_path: Path) -> None:
    files = report_files(sample, "GRU Mastery quiz")
    rows = list(csv.DictReader(io.StringIO(str(files["regrade.csv"]))))
    regraded = {row["answer"]: (float(row["lms_mark"]), float(row["qbank_score"]), row["why"]) for row in rows}
    assert regraded["( 2, 7, 64 )"][:2] == (0, 1)
    assert regraded["torch.Size([2,7, 64])"][:2] == (0, 1)
    assert regraded["0,6537"] == (0, 1, "a decimal comma: the LMS read it as another number")
    # Every answer Moodle marked wrong that means the key (by qbank's reading) is listed, and nothing else.
    truth = truth_slots()
    expected = {
        r.record.answer
        for r in sample.responses
        if r.score == 1 and not truth[r.record.student, r.record.position]["correct"]
    }
    assert expected == set(regraded)
    assert "## What to regrade" in str(files["report.md"]) and "`( 2, 7, 64 )`" in str(files["report.md"])
    # The grades both ways: Moodle's grade, and the grade with qbank's marks.
    grades = {row["student"]: row for row in csv.DictReader(io.StringIO(str(files["grades.csv"])))}
    assert float(grades["s05.r1x193929@example.com"]["lms_grade"]) < float(
        grades["s05.r1x193929@example.com"]["regraded_grade"]
    )


def moodle_statistics() -> tuple[dict[str, str], dict[str, list[str]]]:
    rows = list(csv.reader(io.StringIO((SAMPLE / "statistics.csv").read_text(encoding="utf-8-sig"))))
    quiz = dict(zip(rows[0], rows[1], strict=True))
    return quiz, {row[2] if "." in row[0] else row[0]: row for row in rows[3:]}


def percent(text: str) -> float | None:
    return float(text.rstrip("%")) if text else None


def test_item_statistics_agree_with_moodles_own_on_the_same_attempts(sample: Results, tmp_path: Path) -> None:
    quiz, items = moodle_statistics()
    files = report_files(sample, "GRU Mastery quiz")
    questions = [row for row in csv.DictReader(io.StringIO(str(files["questions.csv"]))) if row["marks"] == "lms"]
    assert len(questions) == 9
    for slot, row in enumerate(questions, start=1):
        moodle = items[str(slot)]  # Q#, type, name, attempts, facility, SD, guess, weight, eff. weight, DI, DE
        assert int(row["attempts"]) == int(moodle[3])
        for ours, theirs in ((row["facility"], moodle[4]), (row["discrimination"], moodle[9]), (row["sd"], moodle[5])):
            assert abs(float(ours) - percent(theirs)) <= 0.5, (row["question_id"], ours, theirs)  # type: ignore[operator]
        assert abs(float(row["efficiency"]) - percent(moodle[10])) <= 0.5  # type: ignore[operator]
    variants = [row for row in csv.DictReader(io.StringIO(str(files["variants.csv"]))) if row["marks"] == "lms"]
    titles = {r.variant.variant_id: r.variant.title for r in sample.responses}
    compared = 0
    for row in variants:
        moodle = items[f"{titles[row['variant_id']]} · {row['variant_id'][:8]}"]
        assert int(row["attempts"]) == int(moodle[3])
        assert abs(float(row["facility"]) - percent(moodle[4])) <= 0.5  # type: ignore[operator]
        if moodle[9]:
            assert abs(float(row["discrimination"]) - percent(moodle[9])) <= 0.5  # type: ignore[operator]
        else:
            assert row["discrimination"] == ""
        compared += 1
    assert compared == sum(" · " in name for name in items) == 26  # every variant some student was given
    (lms,) = [row for row in csv.DictReader(io.StringIO(str(files["quiz.csv"]))) if row["marks"] == "lms"]
    for ours, theirs in (
        ("mean", "Average grade of all attempts"),
        ("median", "Median grade (for highest graded attempt)"),
        ("sd", "Standard deviation (for highest graded attempt)"),
        ("cic", "Coefficient of internal consistency (for highest graded attempt)"),
        ("error_ratio", "Error ratio (for highest graded attempt)"),
        ("standard_error", "Standard error (for highest graded attempt)"),
    ):
        assert abs(float(lms[ours]) - percent(quiz[theirs])) <= 0.5, ours  # type: ignore[operator]


def test_the_grades_report_gives_the_marks_moodle_gave(variants: list[Variant]) -> None:
    results = results_of([RESPONSES], variants, SAMPLE / "grades.csv")
    truth = truth_slots()
    for response in results.responses:
        slot = truth[response.record.student, response.record.position]
        assert response.lms_mark == pytest.approx(slot["mark"] or 0, abs=0.01)


def test_without_question_texts_a_response_is_traced_only_where_it_fits_one_variant(variants: list[Variant]) -> None:
    results = results_of([SAMPLE / "responses_default_columns.csv"], variants)
    truth = truth_slots()
    assert len(results.responses) + len(results.problems) == 14 * 9
    assert len(results.responses) > 60
    for response in results.responses:  # what is traced is traced right
        slot = truth[response.record.student, response.record.position]
        assert response.variant.variant_id.startswith(slot["variant_id"])
    assert all("download the report with 'Question text' shown" in p for p in results.problems)


def test_the_banks_and_seed_of_the_quiz_find_every_variant_again(tmp_path: Path) -> None:
    done = run_cli(
        "results", RESPONSES, "--bank", "gru_mastery", "--seed", "21", "--variants", "4", "--out", tmp_path / "r"
    )
    assert done.returncode == 0, done.stderr
    truth = truth_slots()
    rows = list(csv.DictReader((tmp_path / "r" / "responses.csv").open(encoding="utf-8")))
    assert len(rows) == 126
    for row in rows:
        assert row["variant_id"].startswith(truth[row["student"], row["position"]]["variant_id"])
    assert done.stdout.startswith("14 attempts, 126 answers traced to their variant")


def test_another_seed_is_one_paragraph_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r"
    done = run_cli("results", RESPONSES, "--bank", "gru_mastery", "--seed", "22", "--variants", "4", "--out", out)
    assert done.returncode == 1 and not out.exists()
    (message,) = done.stderr.strip().splitlines()
    assert "answers match a variant of the banks given" in message and "another seed" in message
    assert "Traceback" not in done.stderr


def rewritten(rows: list[list[str]], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        csv.writer(handle).writerows(rows)
    return path


def sample_rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(RESPONSES.read_text(encoding="utf-8-sig"))))


def test_a_german_report_with_all_tries_reads_the_last_try_of_every_question(
    variants: list[Variant], sample: Results, tmp_path: Path
) -> None:
    rows = sample_rows()
    german = {"Question": "Frage", "Response": "Antwort", "Right answer": "Richtige Antwort"}
    header = []
    for name in rows[0]:
        match = re.fullmatch(r"(Question|Response|Right answer) (\d+)", name)
        header.append(f"{german[match.group(1)]} {match.group(2)}" if match else name)
    header[:8] = ["Nachname", "Vorname", "E-Mail-Adresse", "Status", "Begonnen", "Beendet", "Dauer", "Bewertung/10,00"]
    tries = [header]
    response2 = header.index("Antwort 2")
    retried = set()
    for row in rows[1:]:
        # Two rows per attempt: e-mail on the first, State and grade on the last. An earlier, wrong try at question
        # 2 (where it was answered) is on the first row; every other question had one try ("-" on the first row).
        first = [*row[:3], "", *row[4:7], ""] + ["-" if i % 3 == 1 else cell for i, cell in enumerate(row[8:])]
        if row[response2] != "-":
            first[response2] = "(0, 0, 0)"
            retried.add(row[2])
        last = [row[0], row[1], "", *row[3:7], row[7].replace(".", ","), *row[8:]]
        tries += [first, last]
    path = rewritten(tries, tmp_path / "antworten.csv")
    results = results_of([path], variants)
    assert not results.problems and len(retried) > 10
    got = {(r.record.student, r.record.position): r for r in results.responses}
    assert len(got) == len(sample.responses)
    for response in sample.responses:
        again = got[response.record.student, response.record.position]
        assert again.variant.variant_id == response.variant.variant_id and again.answer == response.answer
        assert again.lms_mark == response.lms_mark
        two = response.record.position == "2" and response.record.student in retried
        assert again.record.tries == (2 if two else 1)
    assert not [note for note in results.notes if "add up" in note]  # the German grade 10,00 is read too


def test_an_attempt_in_progress_is_left_out_with_a_note(variants: list[Variant], tmp_path: Path) -> None:
    rows = sample_rows()
    rows[2][3:6] = ["In progress", rows[2][4], "-"]
    rows[2][8:] = [cell if i % 3 == 0 else "-" for i, cell in enumerate(rows[2][8:])]
    results = results_of([rewritten(rows, tmp_path / "r.csv")], variants)
    assert len(results.responses) == 13 * 9
    assert any("line 3" in note and "'In progress'" in note and "left out" in note for note in results.notes)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name,grade\nada,3\n", r"neither a Moodle Responses report .* nor a Canvas Student Analysis"),
        ('"Last name","First name",Grade,"Response 1"\nLovelace,Ada,1,x\n', r"State column"),
        ("", r"is empty"),
    ],
)
def test_a_file_that_is_no_report_is_one_clear_error(
    content: str, expected: str, variants: list[Variant], tmp_path: Path
) -> None:
    path = tmp_path / "report.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(QbankError, match=expected):
        results_of([path], variants)


def test_the_same_rows_twice_and_another_encoding_are_named_by_line(variants: list[Variant], tmp_path: Path) -> None:
    rows = sample_rows()
    twice = rewritten([*rows, rows[3]], tmp_path / "twice.csv")
    with pytest.raises(QbankError, match=r"twice.csv, line 16: .* second attempt started .* as on line 4"):
        results_of([twice], variants)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(RESPONSES.read_text(encoding="utf-8-sig").encode("cp1252", errors="replace"))
    with pytest.raises(QbankError, match=r"latin.csv, line 2: the report is not UTF-8 text"):
        results_of([latin], variants)
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(RESPONSES.read_text(encoding="utf-8-sig").encode("utf-16"))
    assert len(results_of([utf16], variants).responses) == 126


def test_the_grades_report_given_as_a_report_says_to_pass_it_with_grades(
    variants: list[Variant], tmp_path: Path
) -> None:
    with pytest.raises(QbankError, match=r"Grades report: pass it with --grades"):
        results_of([SAMPLE / "grades.csv"], variants)


# --- Canvas -----------------------------------------------------------------------------------------------------


def canvas_analysis(result: qbank.Generation, answers: list[dict[str, str]], path: Path) -> Path:
    """A Student Analysis CSV as canvas-lms's `student_analysis.rb` writes it for a quiz imported from qbank's QTI:
    a column pair per question given to anyone (`id: text without tags`, then its points), a student's answer text
    (options' texts joined by `,` with `\\,` inside one), and its points."""
    files = render_all(["qti"], qbank.BankInfo.of(result.bank), result.variants, 1)
    package = files[f"{result.bank.id}.qti.zip"]
    assert isinstance(package, bytes)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        name = next(n for n in archive.namelist() if n.count("/") == 1 and "meta" not in n)
        root = etree.fromstring(archive.read(name))
    texts = {}
    for item in root.iterfind(".//{*}item"):
        mattext = item.find("{*}presentation/{*}material/{*}mattext")
        texts[item.get("title", "").rsplit(" · ", 1)[1]] = re.sub(r"<[^>]+>", "", mattext.text or "")  # strip_tags
    ids = {v.variant_id: 1000 + index for index, v in enumerate(result.variants)}
    header = ["name", "id", "sis_id", "section", "section_id", "section_sis_id", "submitted", "attempt"]
    for variant in result.variants:
        header += [f"{ids[variant.variant_id]}: {texts[variant.variant_id[:8]]}", "1.0"]
    header += ["n correct", "n incorrect", "score"]
    rows = [header]
    for number, student in enumerate(answers, start=1):
        row = [student["name"], str(number), "", "Section 1", "1", "", "2026-12-01T10:00:00Z", "1"]
        total = 0.0
        for variant in result.variants:
            if variant.variant_id not in student:
                row += ["", ""]
                continue
            text, points = student[variant.variant_id].split("\t")
            row += [text, points]
            total += float(points)
        rows.append([*row, "0", "0", f"{total:g}"])
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_a_canvas_student_analysis_is_traced_scored_and_its_points_kept(pool: Any, tmp_path: Path) -> None:
    bank = qbank.load_bank("gru_mastery")
    result = qbank.generate(bank, 2, 3, pool=pool)
    by_question: dict[str, list[Variant]] = {}
    for variant in result.variants:
        by_question.setdefault(variant.question_id, []).append(variant)
    students = []
    expected: dict[tuple[str, str], tuple[float, tuple[str, ...]]] = {}
    for number in range(6):
        student: dict[str, str] = {"name": f"Student {number}"}
        for variants in by_question.values():
            variant = variants[number % len(variants)]
            if variant.choices:
                index = number % len(variant.choices)
                choice = variant.choices[index]
                text = (
                    qbank.display.plain_of(choice.text).replace(",", "\\,")
                    if variant.multiple_answers
                    else (html.unescape(re.sub(r"<[^>]+>", "", qbank.render.inline_html(choice.text))))
                )
                student[variant.variant_id] = f"{text}\t{1.0 if choice.correct else 0.0}"
                expected[str(number + 1), variant.variant_id] = (float(choice.correct), (qbank.grading.origin(choice),))
            else:
                typed = variant.answers[0] if number % 2 else ""
                student[variant.variant_id] = f"{typed}\t{1.0 if typed else 0.0}"
                expected[str(number + 1), variant.variant_id] = (float(bool(typed)), ())
        students.append(student)
    path = canvas_analysis(result, students, tmp_path / "analysis.csv")
    results = results_of([path], result.variants)
    assert not results.problems, results.problems[:3]
    assert len(results.responses) == 6 * len(by_question)
    for response in results.responses:
        score, chosen = expected[response.record.student, response.variant.variant_id]
        assert response.score == score and response.lms_mark == score
        if chosen:
            assert response.chosen == chosen
    files = report_files(results, "Canvas quiz")
    assert "## Misconceptions the class holds" in str(files["report.md"])


# --- the report ---------------------------------------------------------------------------------------------------


def test_the_report_is_the_same_bytes_for_the_same_reports(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        done = run_cli("results", RESPONSES, "--from", EXPORT, "--out", tmp_path / name)
        assert done.returncode == 0, done.stderr
        outs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())})
    assert outs[0] == outs[1]
    assert {
        "report.md",
        "report.html",
        "regrade.csv",
        "questions.csv",
        "variants.csv",
        "options.csv",
        "mistakes.csv",
        "parameters.csv",
        "quiz.csv",
        "grades.csv",
        "responses.csv",
    } <= set(outs[0])
    report = outs[0]["report.md"].decode()
    assert (
        report.index("## Misconceptions")
        < report.index("## Questions that separate")
        < report.index("## What to regrade")
        < report.index("## The quiz")
        < report.index("## Output of a GRU layer")
    )


@pytest.mark.parametrize("state", [("phone", "light"), ("phone", "dark"), ("desktop", "light")])
def test_the_html_report_works_offline_fits_a_phone_and_axe_finds_nothing(
    browser: Any, state: tuple[str, str], tmp_path: Path
) -> None:
    from .test_phone import WIDTHS, too_wide, violations

    done = run_cli("results", RESPONSES, "--from", EXPORT, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page)  # nothing loaded from elsewhere
    assert page.count("<svg") == 9 and "<img" not in page
    width, scheme = state
    context = browser.new_context(viewport={"width": WIDTHS[width], "height": 900}, color_scheme=scheme)
    try:
        tab = context.new_page()
        requests: list[str] = []
        tab.on("request", lambda request: requests.append(request.url))
        tab.goto((tmp_path / "report.html").as_uri())
        assert all(url.startswith("file:") for url in requests)
        assert violations(tab) == []
        assert [wide for wide in too_wide(tab) if wide[0] == "page"] == []
        background = tab.evaluate("getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(13, 17, 23)") == (scheme == "dark")
    finally:
        context.close()


def test_paper_exams_get_the_same_report(gru_bank: qbank.Bank, tmp_path: Path) -> None:
    exam = tmp_path / "exam"
    made = run_cli("exam", "gru_mastery", "--students", "4", "--seed", "2", "--out", exam, "--no-pdf")
    assert made.returncode == 0, made.stderr
    manifest = json.loads((exam / "manifest.json").read_text())
    answers = tmp_path / "answers.csv"
    with answers.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "question", "answer"])
        for student in manifest["students"]:
            for entry in student["questions"]:
                writer.writerow([student["id"], entry["number"], "A"])
    done = run_cli("grade", exam, "--answers", answers, "--out", tmp_path / "graded")
    assert done.returncode == 0, done.stderr
    graded = tmp_path / "graded"
    assert {"report.md", "report.html", "questions.csv", "mistakes.csv", "grades.csv", "scored.csv"} <= {
        p.name for p in graded.iterdir()
    }
    assert "## Misconceptions the class holds" in (graded / "report.md").read_text()
    assert "LMS" not in (graded / "report.md").read_text().split("## Output of a GRU layer")[1].split("\n\n")[2]


def test_the_readme_walk_through_gives_what_readme_shows(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    block = re.search(
        r"```console\n\$ qbank results (.*?)\n(.*?)\n\$ head -4 quiz-results/regrade.csv\n(.*?)```", readme, re.S
    )
    assert block is not None
    args = block.group(1).replace("tests/fixtures/", str(FIXTURES) + "/").split()
    args[args.index("--out") + 1] = str(tmp_path / "quiz-results")
    done = run_cli("results", *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == block.group(2).replace("quiz-results", str(tmp_path / "quiz-results"))
    lines = (tmp_path / "quiz-results" / "regrade.csv").read_text(encoding="utf-8").splitlines()
    assert "\n".join(lines[:4]) == block.group(3).strip()
