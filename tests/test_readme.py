"""README's bank example is a real bank: it validates, generates without a failure, and checks."""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path

from qbank.cli import _parser
from qbank.exporting import formats

from .conftest import run_cli

README = Path(__file__).parent.parent / "README.md"


def test_the_readme_example_bank_works(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if block.startswith('id = "rnn_basics"'))
    bank = tmp_path / "rnn_basics.toml"
    bank.write_text(example)
    done = run_cli("generate", bank, "--variants", 20, "--format", "all", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "variant failed" not in done.stderr
    assert len(list((tmp_path / "out").iterdir())) == 8
    done = run_cli("check", bank, "--variants", 10)
    assert done.returncode == 0 and done.stdout.startswith(
        "ok: 13 keyed variants of 2 questions"
    )  # f has 3 values, done.stdout


def test_the_readme_ordering_example_works_in_every_format_that_has_ordering(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    example = textwrap.dedent(next(block for block in blocks if 'id = "training_order"' in block))
    bank = tmp_path / "training_order.toml"
    bank.write_text(example)
    done = run_cli("generate", bank, "-n", 6, "-f", "json,markdown,moodle,anki,html", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    refused = run_cli("generate", bank, "-f", "gift", "--out", tmp_path / "gift")
    assert refused.returncode == 1 and "an ordering question (GIFT has none" in refused.stderr


def test_every_command_and_format_is_documented() -> None:
    text = README.read_text()
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert len(commands) >= 7
    for command in commands:
        assert f"`qbank {command}" in text
    for name in formats():
        assert f"| `{name}` |" in text
