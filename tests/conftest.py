"""Shared fixtures: one pool of torch workers for the whole session, and generated GRU Mastery variants."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

import qbank
from qbank.generate import Generation
from qbank.runner import WorkerPool

FIXTURES = Path(__file__).parent / "fixtures"

# Every `qbank` these tests start runs its snippets for real; the tests of the outcome cache turn it back on.
os.environ["QBANK_CACHE"] = "off"

# Locally every run explores new examples; in CI the property tests draw the same examples every time, so a
# rare example found there first is reproducible from the log instead of a flake.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
QBANK = shutil.which("qbank", path=os.path.dirname(sys.executable)) or "qbank"


@pytest.fixture(scope="session")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(2) as shared:
        yield shared


@pytest.fixture(scope="session")
def gru_bank() -> qbank.Bank:
    return qbank.load_bank("gru_mastery")


@pytest.fixture(scope="session")
def gru_50(gru_bank: qbank.Bank, pool: WorkerPool) -> Generation:
    return qbank.generate(gru_bank, 50, 7, pool=pool)


@pytest.fixture(scope="session")
def hostile(pool: WorkerPool) -> Generation:
    return qbank.generate(qbank.load_bank(FIXTURES / "hostile.toml"), 3, 1, pool=pool)


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The installed `qbank` command, in its own process, as a user runs it."""
    return subprocess.run(
        [QBANK, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def question(**fields: Any) -> dict[str, Any]:
    """A question as bank data, with the fields a test does not care about filled in."""
    defaults = {
        "title": str(fields.get("id", "q")).replace("_", " ").capitalize(),
        "category": "Predict Output",
        "difficulty": "beginner",
        "time_limit": 30,
        "stem": "What happens?",
        "explanation": "{{ answer }}",
    }
    return {**defaults, **fields}


def bank_of(*questions: dict[str, Any], bank_id: str = "test") -> qbank.Bank:
    """A bank made of `question(...)`s, validated as a bank file would be."""
    return qbank.load_bank({"id": bank_id, "title": bank_id.capitalize(), "questions": list(questions)})


def printing_bank_file(folder: Path, code: str) -> Path:
    """A bank file with one short-answer question whose code (a template over `n`, 1 to 1000) prints the key."""
    path = folder / "printing.toml"
    path.write_text(
        'id = "printing"\ntitle = "Printing"\n\n[[questions]]\nid = "q"\ntitle = "Q"\ncategory = "Predict Output"\n'
        'type = "short_answer"\ndifficulty = "beginner"\ntime_limit = 30\nstem = "What is printed?"\n'
        f"code = {json.dumps(code)}\n"
        'explanation = "{{ answer }}"\nanswer = { kind = "stdout" }\n\n[questions.params]\n'
        'n = { type = "int", min = 1, max = 1000 }\n'
    )
    return path


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
#: Debian's Chromium, headless and quiet: no network of its own, no first-run work.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium through Playwright, told where the browser is (it never downloads one)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("the browser tests need Chromium: apt-get install chromium (see README, Tests)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        instance = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()
