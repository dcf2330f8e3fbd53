"""Every benchmark script runs to its table at tiny sizes, so a benchmark that breaks fails here (no time asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=600
    )


def test_the_pipeline_benchmark_runs_at_a_tiny_size() -> None:
    done = run("pipeline.py", "--sizes", "9", "--repeat", "1", "--process-sizes", "2,3", "--jobs", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "qbank pipeline benchmark" in done.stdout and "failures                                    0" in done.stdout


def test_the_authoring_benchmark_runs_at_a_tiny_size() -> None:
    done = run("authoring.py", "--variants", "1", "--repeat", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(("gru_mastery ", "losses "))]
    assert len(rows) == 2 and all(row[-1] == "0" for row in rows)  # the warm run runs no snippet
