"""The `qbank` command as a user runs it: exit codes, messages, files."""

from __future__ import annotations

import fcntl
import io
import json
import subprocess
from pathlib import Path

import pytest

from .conftest import FIXTURES, QBANK, run_cli


def test_list_shows_the_built_in_banks() -> None:
    done = run_cli("list")
    assert done.returncode == 0
    assert "gru_mastery" in done.stdout


def test_schema_is_json_schema_of_the_bank_format() -> None:
    done = run_cli("schema")
    schema = json.loads(done.stdout)
    assert {"id", "title", "questions"} <= set(schema["properties"])
    question = schema["$defs"]["Question"]
    assert {"category", "type", "difficulty", "time_limit", "attempts", "hints", "params"} <= set(
        question["properties"]
    )


def test_validate_accepts_the_built_in_bank_and_fixtures() -> None:
    done = run_cli("validate", "gru_mastery", FIXTURES / "hostile.toml", FIXTURES / "reference_debug.toml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok:") == 3


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args in (
        ["generate", "gru_mastery", "--variants", "0", "--out", tmp_path],
        ["generate", "gru_mastery", "--variants", "-3", "--out", tmp_path],
        ["generate", "gru_mastery", "--format", "pdf", "--out", tmp_path],
        ["generate", "gru_mastery"],
        ["frobnicate"],
    ):
        done = run_cli(*args)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


def test_generate_writes_every_format(tmp_path: Path) -> None:
    done = run_cli("generate", "gru_mastery", "-n", 2, "-s", 1, "-f", "all", "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    suffixes = [".json", ".md", ".key.md", ".moodle.xml", ".apkg", ".gift.txt", ".qti.zip", ".html"]
    assert names == sorted(f"gru_mastery{suffix}" for suffix in suffixes)


def test_question_filter_gives_the_same_variants_as_the_whole_bank(tmp_path: Path) -> None:
    picked = ["gru_debug_input", "gru_output_shape"]
    whole = run_cli("generate", "gru_mastery", "-n", 3, "-s", 5, "-o", tmp_path / "whole")
    some = run_cli("generate", "gru_mastery", "-n", 3, "-s", 5, "-q", ",".join(picked), "-o", tmp_path / "some")
    assert whole.returncode == 0 and some.returncode == 0, some.stderr
    everything = json.loads((tmp_path / "whole" / "gru_mastery.json").read_text())["variants"]
    chosen = json.loads((tmp_path / "some" / "gru_mastery.json").read_text())["variants"]
    assert [v for v in everything if v["question_id"] in picked] == chosen  # same variants, in bank order
    assert {v["question_id"] for v in chosen} == set(picked)
    unknown = run_cli("stress", "gru_mastery", "-q", "gru_debug_input,nope")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("qbank: error: bank 'gru_mastery' has no question 'nope'; its questions: ")
    assert "Traceback" not in unknown.stderr


def test_unwritable_output_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = run_cli("generate", "gru_mastery", "-f", "json", "-o", blocker / "sub")
    assert done.returncode == 1
    assert done.stderr.startswith("qbank: error: cannot create the output folder")


def test_strict_refuses_a_parameter_space_smaller_than_asked(tmp_path: Path) -> None:
    done = run_cli("generate", FIXTURES / "hostile.toml", "-n", 6, "--strict", "-o", tmp_path / "out")
    assert done.returncode == 1
    assert "allow only 3 distinct variants" in done.stderr
    assert not (tmp_path / "out").exists()
    done = run_cli("generate", FIXTURES / "hostile.toml", "-n", 6, "-o", tmp_path / "out")
    assert done.returncode == 0 and "note:" in done.stderr


def test_check_flags_the_published_wrong_key() -> None:
    done = run_cli("check", FIXTURES / "reference_debug.toml")
    assert done.returncode == 1
    assert "published_debug" in done.stdout
    assert "claims a RuntimeError, but torch gives no error" in done.stdout
    assert "published_shape" not in done.stdout.split("FAILED")[0].replace("published_debug", "")


def test_check_names_the_distractor_that_is_torchs_answer_before_anything_else() -> None:
    done = run_cli("check", FIXTURES / "batchnorm_key.toml", "-n", 3)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("wrong key: ") for line in lines[:3])
    assert all("claims '1.0000', but torch gives '1.2247', which is distractor 2 ('1.2247')" in x for x in lines[:3])
    assert "variant failed" not in done.stdout
    assert lines[3].startswith("FAILED: 3 keyed variants of 1 question with a claim compared with torch; 3 disagree")


def test_check_passes_every_built_in_bank() -> None:
    for bank in ("gru_mastery", "recurrent_layers", "conv_pooling", "attention", "losses", "gru_workshop"):
        done = run_cli("check", bank, "-n", 10)
        assert done.returncode == 0, done.stdout + done.stderr
    done = run_cli("check", "gru_mastery", "-n", 10)
    assert done.stdout.startswith("ok: 20 keyed variants of 2 questions")


def test_stress_reports_per_question_statistics() -> None:
    done = run_cli("stress", "gru_mastery", "-n", 200, "-s", 3)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["question", "made", "failed"]
    row = next(line.split() for line in lines if line.startswith("gru_debug_input "))
    assert row[1] == "200" and row[2] == "0"
    # Every mistake of a question with more mistakes than wrong options is shown in some variants.
    shown = next(line for line in lines if line.startswith("mistakes shown, question 'gru_debug_input' (200 variants)"))
    counts = [int(part.rsplit(" ", 1)[1]) for part in shown.split(": ", 1)[1].split(", ")]
    assert len(counts) == 5 and all(count > 0 for count in counts) and sum(counts) == 3 * 200


def test_progress_eta_counts_from_the_first_work_done(monkeypatch: pytest.MonkeyPatch) -> None:
    from qbank import progress

    clock = iter([10.0, 13.0, 14.0, 15.0])  # 3 s of start-up before any job is done
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    bar = progress.Progress("running code", stream, enabled=True)
    bar(0, 100)  # t=10: nothing done yet
    bar(10, 100)  # t=13: first work done, no rate yet
    bar(20, 100)  # t=14: 10 jobs per second since then
    shown = stream.getvalue().split("\r")
    assert shown[1].endswith("0/100  ETA   -- ")
    assert shown[2].endswith("10/100  ETA   -- ")
    assert shown[3].endswith("20/100  ETA   8s ")  # 80 left at 10/s, not counting the start-up


def test_progress_note_is_shown_then_cleared_only_on_a_terminal() -> None:
    from qbank import progress

    shown, hidden = io.StringIO(), io.StringIO()
    with progress.Progress("writing", shown, enabled=True) as status:
        status.note("writing 3 variants as json …")
    with progress.Progress("writing", hidden, enabled=False) as status:
        status.note("writing 3 variants as json …")
    assert shown.getvalue().startswith("\rwriting 3 variants as json …")
    assert shown.getvalue().endswith("\r" + " " * 80 + "\r")
    assert hidden.getvalue() == ""


def test_a_reader_that_stops_early_gets_no_error_message() -> None:
    # `qbank schema | head -1`: the reader leaves after one line; qbank must not complain on stderr.
    process = subprocess.Popen([QBANK, "schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    # A pipe smaller than the schema (set before qbank has imported anything), so qbank is still writing.
    fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    process.stdout.readline()
    process.stdout.close()
    assert process.stderr.read() == b""
    assert process.wait(timeout=60) in (0, 141)


def test_counts_are_spelled_for_one_and_many(tmp_path: Path) -> None:
    done = run_cli("generate", "gru_mastery", "-n", 1, "-q", "gru_output_shape", "-o", tmp_path)
    assert done.stdout.startswith("1 variant of 1 question ")
    help_text = run_cli("list", "--help").stdout
    assert "list the built-in banks" in help_text.lower()
    assert "default json" in run_cli("generate", "--help").stdout


def test_the_outcome_cache_makes_an_unchanged_rerun_start_no_worker(tmp_path: Path) -> None:
    cache = {"QBANK_CACHE": "on", "QBANK_CACHE_DIR": str(tmp_path / "cache")}
    cold = run_cli("generate", "gru_mastery", "-n", 3, "-f", "json", "-o", tmp_path / "cold", env=cache)
    assert cold.returncode == 0, cold.stderr
    assert "(0 snippets run" not in cold.stdout
    warm = run_cli("generate", "gru_mastery", "-n", 3, "-f", "json", "-o", tmp_path / "warm", env=cache)
    assert warm.returncode == 0, warm.stderr
    assert "(0 snippets run" in warm.stdout  # every outcome came from the cache: no torch worker started
    assert (tmp_path / "cold" / "gru_mastery.json").read_bytes() == (
        tmp_path / "warm" / "gru_mastery.json"
    ).read_bytes()
    info = run_cli("cache", env=cache)
    assert info.returncode == 0 and "outcomes in" in info.stdout
    cleared = run_cli("cache", "clear", env=cache)
    assert cleared.returncode == 0 and cleared.stdout.startswith("removed ")
    again = run_cli("generate", "gru_mastery", "-n", 3, "-f", "json", "-o", tmp_path / "again", env=cache)
    assert "(0 snippets run" not in again.stdout
    off = run_cli("generate", "gru_mastery", "-n", 3, "-f", "json", "-o", tmp_path / "off", "--no-cache", env=cache)
    assert "(0 snippets run" not in off.stdout


def test_the_schema_describes_every_field() -> None:
    done = run_cli("schema")
    schema = json.loads(done.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    models = {"Bank": schema, **schema["$defs"]}
    undescribed = [
        f"{model}.{field}"
        for model, spec in models.items()
        for field, prop in spec.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undescribed == []


def _wait_for(condition, seconds: float = 120) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_preview_rewrites_the_page_on_every_save_and_survives_a_broken_bank(tmp_path: Path) -> None:
    import signal

    bank = tmp_path / "bank.toml"
    source = (FIXTURES / "reference_debug.toml").read_text()
    bank.write_text(source)
    page = tmp_path / "out" / "reference_debug.html"
    log = tmp_path / "stderr.txt"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [QBANK, "preview", str(bank), "-o", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=errors, text=True
        )
        try:
            _wait_for(page.exists)
            _wait_for(lambda: "Edited title" not in page.read_text())
            bank.write_text(source.replace("Reference challenge, as published", "Edited title"))
            _wait_for(lambda: "Edited title" in page.read_text())
            bank.write_text(source + "\nthis is not toml\n")  # a broken save: the message, and the page stays
            _wait_for(lambda: "not valid TOML" in log.read_text())
            assert "Edited title" in page.read_text() and process.poll() is None
            bank.write_text(source.replace("Reference challenge, as published", "Fixed again"))
            _wait_for(lambda: "Fixed again" in page.read_text())
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
    assert process.returncode in (0, 143)
    assert "Traceback" not in log.read_text()
