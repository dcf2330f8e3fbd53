"""Every malformed bank gets one readable paragraph naming file, question and field — never a traceback."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .conftest import run_cli

CORPUS = sorted((Path(__file__).parent / "bad_banks").glob("*.toml"))


def expectations(path: Path) -> list[str]:
    return re.findall(rb"^# expect: (.*)$", path.read_bytes(), flags=re.M)


def assert_clear_error(stderr: str, file: Path | str) -> None:
    assert "Traceback" not in stderr
    message = stderr.strip()
    assert message.startswith("qbank: error: ")
    assert "\n\n" not in message
    assert str(file) in message


def test_the_corpus_is_large() -> None:
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_validate_names_what_is_wrong(path: Path) -> None:
    done = run_cli("validate", path)
    assert done.returncode == 1
    assert_clear_error(done.stderr, path)
    for expected in expectations(path):
        assert expected.decode() in done.stderr, done.stderr


@pytest.mark.parametrize("path", CORPUS[:8], ids=lambda p: p.stem)
def test_generate_writes_nothing_for_a_bad_bank(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_cli("generate", path, "--format", "all", "--out", out)
    assert done.returncode == 1
    assert_clear_error(done.stderr, path)
    assert not out.exists() or not any(out.iterdir())


def test_a_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    huge = tmp_path / "huge.toml"
    huge.write_text('id = "huge"\ntitle = "Huge"\n' + "# padding\n" * 700_000)
    done = run_cli("validate", huge)
    assert done.returncode == 1
    assert_clear_error(done.stderr, huge)
    assert "at most" in done.stderr


def test_a_missing_file_and_an_unknown_bank_id(tmp_path: Path) -> None:
    done = run_cli("validate", tmp_path / "nope.toml")
    assert done.returncode == 1 and "no such file" in done.stderr
    done = run_cli("validate", "gru_mastry")
    assert done.returncode == 1 and "did you mean 'gru_mastery'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_line_of_the_question_is_named() -> None:
    path = Path(__file__).parent / "bad_banks" / "typo_in_question_field.toml"
    done = run_cli("validate", path)
    line = int(re.search(r"line (\d+)", done.stderr).group(1))
    assert "explantion" in path.read_text().splitlines()[line - 1]


def test_files_that_are_not_banks_get_a_message_not_a_hang(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)  # nobody writes to it: reading it would wait for ever
    for path, says in (
        (deep, "nested too deeply"),
        (Path("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
    ):
        done = run_cli("validate", path, timeout=60)
        assert done.returncode == 1, path
        assert_clear_error(done.stderr, path)
        assert says in done.stderr


def test_a_byte_order_mark_is_not_content(tmp_path: Path) -> None:
    source = Path(__file__).parent.parent / "tests" / "fixtures" / "reference_debug.toml"
    marked = tmp_path / "marked.toml"
    marked.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    done = run_cli("validate", marked)
    assert done.returncode == 0, done.stderr
