"""Throughput of the whole pipeline against its floor, printed as tables.

For N executed variants of the GRU Mastery bank (its Predict Output and Debug questions, with their
distractors), it measures qbank end to end — sample, render, run with torch, assemble, export to JSON,
Markdown, Moodle XML and Anki — and, in the same run, the floor: the same distinct snippets executed
bare in one process under torch.inference_mode (divided by the worker count) plus the same template
rendering. Run: `make bench` or `python benchmarks/pipeline.py [--sizes 1000,10000] [--jobs 2]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import qbank
from qbank.exporting import exporter, write_files
from qbank.generate import _jobs, _plan
from qbank.params import sample
from qbank.runner import WorkerPool
from qbank.variant import BankInfo

FORMATS = ["json", "markdown", "moodle", "anki"]
EXECUTED = ("Predict Output", "Debug")

# Runs the snippets bare: one process, torch imported once, no limits, no capture beyond stdout.
FLOOR = r"""
import contextlib, io, json, sys, time
import torch
torch.set_num_threads(1)
jobs = json.load(sys.stdin)
started = time.perf_counter()
with torch.inference_mode():
    for code, expression in jobs:
        namespace = {}
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                exec(code, namespace)
                if expression:
                    eval(expression, namespace)
            except Exception:
                pass
print(time.perf_counter() - started)
"""


def executed_bank() -> qbank.Bank:
    bank = qbank.load_bank("gru_mastery")
    questions = [q for q in bank.questions if q.category in EXECUTED and q.code]
    return bank.model_copy(update={"questions": questions})


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def floor_seconds(bank: qbank.Bank, per_question: int, seed: int, workers: int) -> tuple[float, float, int]:
    """(bare execution / workers, bare rendering, distinct snippets)."""
    started = time.perf_counter()
    plans = [_plan(q, p) for q in bank.questions for p in sample(q, per_question, seed, bank.id).params]
    rendering = time.perf_counter() - started
    distinct = {job.key: (job.code, job.expression) for plan in plans for job in _jobs(plan)}
    done = subprocess.run(
        [sys.executable, "-c", FLOOR],
        input=json.dumps(list(distinct.values())),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout) / workers, rendering, len(distinct)


def measure(bank: qbank.Bank, total: int, seed: int, workers: int) -> dict[str, float]:
    per_question = total // len(bank.questions)
    row: dict[str, float] = {"variants": per_question * len(bank.questions), "jobs": workers}
    started = time.perf_counter()
    with WorkerPool(workers) as pool:
        pool_started = time.perf_counter()
        pool.warm()  # torch's import in the workers is start-up, not work
        result = qbank.generate(bank, per_question, seed, pool=pool)
        row["startup"] = time.perf_counter() - pool_started - sum(result.seconds.values())
    row.update({f"{name}": seconds for name, seconds in result.seconds.items()})
    info = BankInfo.of(bank)
    files: dict[str, str | bytes] = {}
    for name in FORMATS:
        begin = time.perf_counter()
        files.update(exporter(name).export(info, result.variants, seed))
        row[f"export {name}"] = time.perf_counter() - begin
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        write_files(Path(folder), files)
    row["write"] = time.perf_counter() - begin
    row["wall"] = time.perf_counter() - started
    row["work"] = sum(row[key] for key in row if key in result.seconds or key.startswith("export ") or key == "write")
    row["failures"] = len(result.failures)
    row["runs"] = result.runs
    row["cache hits"] = result.cache_hits
    row["peak RSS MB"] = peak_rss_mb()
    return row


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compare-jobs", action="store_true", help="also run the largest size with --jobs 1")
    args = parser.parse_args()
    bank = executed_bank()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"qbank pipeline benchmark · {len(bank.questions)} executed GRU Mastery questions · "
        f"{args.jobs} workers · {os.cpu_count()} cores · python {sys.version.split()[0]}\n"
    )
    # One small pass first: imports and template compilation are paid once per process, not per variant.
    started = time.perf_counter()
    measure(bank, 8 * len(bank.questions), args.seed + 1, args.jobs)
    print(
        f"one-time cost of a process (imports, template compilation, worker start): "
        f"{time.perf_counter() - started:.2f} s\n"
    )
    results = []
    for size in sizes:
        row = measure(bank, size, args.seed, args.jobs)
        bare_run, bare_render, distinct = floor_seconds(bank, size // len(bank.questions), args.seed, args.jobs)
        row["floor"] = bare_run + bare_render
        row["distinct snippets"] = distinct
        results.append(row)
    stages = ["sample+render", "run", "assemble", *(f"export {f}" for f in FORMATS), "write"]
    lines = [["", *(f"N={int(r['variants'])}" for r in results)]]
    for key in ("work", "floor"):
        lines.append(
            [f"{key} s" if key != "work" else "qbank s (without worker start-up)", *(f"{r[key]:.2f}" for r in results)]
        )
    lines.append(["qbank / floor", *(f"{r['work'] / r['floor']:.2f}×" for r in results)])
    lines.append(["ms per variant", *(f"{1000 * r['work'] / r['variants']:.3f}" for r in results)])
    lines.append(["variants per s", *(f"{r['variants'] / r['work']:.0f}" for r in results)])
    lines.append(["worker start-up s", *(f"{r['startup']:.2f}" for r in results)])
    lines.append(["wall s (with start-up and shut-down)", *(f"{r['wall']:.2f}" for r in results)])
    for stage in stages:
        lines.append([f"  {stage} s", *(f"{r[stage]:.2f}" for r in results)])
    for key in ("distinct snippets", "runs", "cache hits", "failures"):
        lines.append([key, *(f"{int(r[key])}" for r in results)])
    lines.append(["peak RSS MB", *(f"{r['peak RSS MB']:.0f}" for r in results)])
    print(table(lines))
    if len(results) > 1:
        first, last = results[0], results[-1]
        change = (last["work"] / last["variants"]) / (first["work"] / first["variants"]) - 1
        print(f"\ntime per variant from N={int(first['variants'])} to N={int(last['variants'])}: {change:+.1%}")
    print("R/exams reference: about 150 ms per variant for a comparable Moodle export.")
    if args.compare_jobs:
        size = sizes[-1]
        single = measure(bank, size, args.seed, 1)
        print(
            f"\ntorch stage at N={size}: --jobs 1 {single['run']:.2f} s, --jobs {args.jobs} {results[-1]['run']:.2f} s "
            f"→ {single['run'] / results[-1]['run']:.2f}× faster"
        )


if __name__ == "__main__":
    main()
