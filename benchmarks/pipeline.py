"""Throughput of the whole pipeline against its floor, printed as tables.

For N executed variants of the GRU Mastery bank (its Predict Output and Debug questions, with their
distractors), it measures qbank end to end — sample, render, run with torch, assemble, export to JSON,
Markdown, Moodle XML and Anki, write the files — and, in the same run, the floor: the same distinct
snippets executed bare in one process under torch.inference_mode (divided by the worker count), plus
the rendering no pipeline can skip done with each library directly (Jinja2, markdown-it-py, genanki,
json; see bare_rendering). Each size runs --repeat times with fresh variants; the table shows the run
whose ratio to its own floor is the median, and the spread of that ratio. Run: `make bench` or
`python benchmarks/pipeline.py [--sizes 1000,10000] [--jobs 2] [--repeat 3] [--compare-jobs]`."""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import genanki
import jinja2
from markdown_it import MarkdownIt

import qbank
from qbank.exporting import exporter
from qbank.generate import _jobs, _plan
from qbank.params import sample
from qbank.runner import WorkerPool
from qbank.variant import BankInfo
from qbank.writing import export_files

FORMATS = ["json", "markdown", "moodle", "anki"]
FLOOR_PARTS = ["torch, bare ÷ workers", "Jinja2", "markdown-it", "genanki", "JSON"]
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


def bare_execution(bank: qbank.Bank, per_question: int, seed: int) -> tuple[float, int]:
    """Seconds to run every distinct snippet bare in one process, and how many there are."""
    plans = [_plan(q, p) for q in bank.questions for p in sample(q, per_question, seed, bank.id).params]
    distinct = {job.key: (job.code, job.expression) for plan in plans for job in _jobs(plan)}
    done = subprocess.run(
        [sys.executable, "-c", FLOOR],
        input=json.dumps(list(distinct.values())),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout), len(distinct)


def bare_rendering(bank: qbank.Bank, per_question: int, seed: int, variants: list[qbank.Variant]) -> dict[str, float]:
    """Seconds of the rendering no pipeline can skip, done with each library directly, on one core.

    Jinja2: every template a variant needs (stem, code, hints, explanation, each mistake's code), compiled once.
    markdown-it-py: each distinct Markdown text of the variants, once. genanki: one plain note per variant,
    written as a package. JSON: the variants' data, already as dicts, dumped.
    """
    drawn = [(q, p) for q in bank.questions for p in sample(q, per_question, seed, bank.id).params]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    compiled = functools.cache(env.from_string)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    for question, params in drawn:
        sources = [question.stem, question.code or "", question.explanation, *question.hints]
        sources += [mistake.code or question.code or "" for mistake in question.mistakes]
        for source in sources:
            compiled(source).render(params, answer="")
    seconds["Jinja2"] = time.perf_counter() - started

    texts = {text for v in variants for text in (v.stem, v.explanation, *v.hints) if text}
    texts |= {text for v in variants for c in v.choices for text in (c.text, c.feedback) if text}
    markdown = MarkdownIt("commonmark", {"html": False})
    started = time.perf_counter()
    for text in texts:
        markdown.render(text)
    seconds["markdown-it"] = time.perf_counter() - started

    model = genanki.Model(
        1607392319,
        "bare",
        fields=[{"name": "Front"}, {"name": "Back"}],
        templates=[{"name": "Card", "qfmt": "{{Front}}", "afmt": "{{FrontSide}}<hr id=answer>{{Back}}"}],
    )
    started = time.perf_counter()
    deck = genanki.Deck(2059400110, "bare")
    for v in variants:
        deck.add_note(genanki.Note(model=model, fields=[v.stem, v.key_text], guid=v.variant_id))
    with tempfile.TemporaryDirectory() as folder:
        genanki.Package(deck).write_to_file(str(Path(folder) / "bare.apkg"))
    seconds["genanki"] = time.perf_counter() - started

    data = [v.model_dump(mode="json") for v in variants]
    started = time.perf_counter()
    json.dumps(data)
    seconds["JSON"] = time.perf_counter() - started
    return seconds


def measure(bank: qbank.Bank, total: int, seed: int, workers: int) -> tuple[dict[str, float], list[qbank.Variant]]:
    """qbank's times for `total` variants, from sampling to files on disk; worker start-up is kept apart."""
    per_question = total // len(bank.questions)
    row: dict[str, float] = {"variants": per_question * len(bank.questions)}
    started = time.perf_counter()
    pool = WorkerPool(workers)
    try:
        pool.warm()  # torch's import in the workers is start-up, not work
        row["startup"] = time.perf_counter() - started
        begin = time.perf_counter()
        result = qbank.generate(bank, per_question, seed, pool=pool)
    finally:
        pool.close()
    row.update(result.seconds)
    info = BankInfo.of(bank)
    stage = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        export_files(FORMATS, info, result.variants, seed, Path(folder), jobs=workers)
        row["export+write"] = time.perf_counter() - stage
        row["work"] = time.perf_counter() - begin
    row["wall"] = time.perf_counter() - started
    row["failures"] = len(result.failures)
    row["runs"] = result.runs
    row["cache hits"] = result.cache_hits
    row["peak RSS MB"] = peak_rss_mb()
    for name in FORMATS:  # each format alone, in this process: where the export time goes (not counted above)
        stage = time.perf_counter()
        exporter(name).export(info, result.variants, seed)
        row[f"{name} alone"] = time.perf_counter() - stage
    return row, result.variants


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
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the table shows the median one")
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
    measure(bank, 8 * len(bank.questions), args.seed - 1, args.jobs)
    print(
        f"one-time cost of a process (imports, template compilation, worker start): "
        f"{time.perf_counter() - started:.2f} s\n"
    )
    results = []
    for size in sizes:
        runs = []
        for repeat in range(args.repeat):
            # Variants of their own each time: nothing cached by an earlier run helps this one.
            seed = args.seed + size + 1000 * repeat
            row, variants = measure(bank, size, seed, args.jobs)
            per_question = size // len(bank.questions)
            bare, distinct = bare_execution(bank, per_question, seed)
            row["torch, bare ÷ workers"] = bare / args.jobs
            row.update(bare_rendering(bank, per_question, seed, variants))
            row["floor"] = sum(row[part] for part in FLOOR_PARTS)
            row["ratio"] = row["work"] / row["floor"]
            row["distinct snippets"] = distinct
            runs.append(row)
        runs.sort(key=lambda r: r["ratio"])
        median = runs[len(runs) // 2]  # the run whose ratio to its own floor is the median
        median["spread"] = f"{runs[0]['ratio']:.2f}–{runs[-1]['ratio']:.2f}×"
        results.append(median)
    stages = ["sample+render", "run", "assemble", "export+write", *(f"{f} alone" for f in FORMATS)]
    lines = [["", *(f"N={int(r['variants'])}" for r in results)]]
    lines.append(["qbank s (sample to files on disk)", *(f"{r['work']:.2f}" for r in results)])
    lines.append(["floor s", *(f"{r['floor']:.2f}" for r in results)])
    lines.append(["qbank / floor", *(f"{r['ratio']:.2f}×" for r in results)])
    lines.append([f"  over {args.repeat} runs", *(r["spread"] for r in results)])
    lines.append(["ms per variant", *(f"{1000 * r['work'] / r['variants']:.3f}" for r in results)])
    lines.append(["variants per s", *(f"{r['variants'] / r['work']:.0f}" for r in results)])
    lines.append(["worker start-up s (not counted)", *(f"{r['startup']:.2f}" for r in results)])
    lines.append(["qbank stages:", *("" for _ in results)])
    for stage in stages:
        label = f"    ({stage} s)" if stage.endswith(" alone") else f"  {stage} s"
        lines.append([label, *(f"{r[stage]:.2f}" for r in results)])
    lines.append(["floor parts:", *("" for _ in results)])
    for part in FLOOR_PARTS:
        lines.append([f"  {part} s", *(f"{r[part]:.2f}" for r in results)])
    for key in ("distinct snippets", "runs", "cache hits", "failures"):
        lines.append([key, *(f"{int(r[key])}" for r in results)])
    lines.append(["peak RSS MB", *(f"{r['peak RSS MB']:.0f}" for r in results)])
    print(table(lines))
    if len(results) > 1:
        first, last = results[0], results[-1]
        change = (last["work"] / last["variants"]) / (first["work"] / first["variants"]) - 1
        print(f"\ntime per variant from N={int(first['variants'])} to N={int(last['variants'])}: {change:+.1%}")
        marginal = (last["work"] - first["work"]) / (last["variants"] - first["variants"])
        fixed = first["work"] - marginal * first["variants"]
        print(f"each further variant: {1000 * marginal:.3f} ms; fixed cost of a run: {fixed:.2f} s")
    print("R/exams reference: about 150 ms per variant for a comparable Moodle export.")
    if args.compare_jobs:
        size = sizes[-1]
        single, _ = measure(bank, size, args.seed + size, 1)
        print(
            f"\ntorch stage at N={size}: --jobs 1 {single['run']:.2f} s, --jobs {args.jobs} {results[-1]['run']:.2f} s "
            f"→ {single['run'] / results[-1]['run']:.2f}× faster"
        )


if __name__ == "__main__":
    main()
