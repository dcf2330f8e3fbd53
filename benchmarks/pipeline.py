"""Throughput of the whole pipeline against its floor, printed as tables.

For N executed variants of the GRU Mastery bank (its Predict Output and Debug questions, with their
distractors), it measures qbank end to end — sample, render, run with torch, assemble, export to JSON,
Markdown, Moodle XML and Anki, write the files — and, in the same run, the floor: the same distinct
snippets executed bare in one process under torch.inference_mode (divided by the worker count), plus
the rendering no pipeline can skip done with each library directly (Jinja2, markdown-it-py, genanki,
json; see bare_rendering). Each size runs --repeat times with fresh variants; the table shows the run
whose ratio to its own floor is the median, and the spread of that ratio.

Then it times whole processes as a user runs them, start-up included: `qbank generate` of the whole bank, and
one exercise (the GRU output-shape question, exported to Moodle XML) made by qbank and — where `Rscript` and the R
package `exams` are installed — by R/exams from benchmarks/rexams/gru_shape.Rmd, at two sizes, so that both the
whole-process cost and the marginal cost per variant are measured in this run. Without R, it says so and prints
no ratio. Run: `make bench` or `python benchmarks/pipeline.py [--sizes 1000,10000] [--jobs 2] [--repeat 3]
[--compare-jobs] [--process-sizes 30,300]`."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import resource
import shutil
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


def machine() -> str:
    """The CPU model and core count, so that a table says where it was measured."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), flags=re.M)
        model = found.group(1).strip() if found else model
    return f"{model}, {os.cpu_count()} cores"


def torch_version() -> str:
    from importlib.metadata import version

    return version("torch")


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def bare_execution(bank: qbank.Bank, per_question: int, seed: int) -> tuple[float, int]:
    """Seconds to run every distinct snippet bare in one process, and how many there are."""
    plans = [
        _plan(q, p, bank.setup, seed, bank.id)
        for q in bank.questions
        for p in sample(q, per_question, seed, bank.id).params
    ]
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


QBANK = shutil.which("qbank", path=os.path.dirname(sys.executable)) or "qbank"
EXERCISE = Path(__file__).parent / "rexams" / "gru_shape.Rmd"


def timed(command: list[str]) -> tuple[float, str]:
    """Wall seconds of a whole process, and what it printed."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def qbank_process(variants: int, formats: str, question: str | None = None) -> tuple[float, int]:
    """`qbank generate` as a user runs it: seconds (start-up and torch's import included) and variants made."""
    with tempfile.TemporaryDirectory() as folder:
        command = [QBANK, "generate", "gru_mastery", "-n", str(variants), "-s", "1", "-f", formats, "-o", folder]
        seconds, printed = timed(command + (["--question", question] if question else []))
    made = re.match(r"(\d+) variants", printed)
    return seconds, int(made.group(1)) if made else variants


def r_exams_missing() -> str | None:
    """Why R/exams cannot be timed here, or None when it can."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript is not installed"
    probe = subprocess.run(
        [rscript, "-e", "quit(status = if (requireNamespace('exams', quietly = TRUE)) 0 else 1)"], capture_output=True
    )
    return "the R package 'exams' is not installed" if probe.returncode else None


def r_exams_process(variants: int) -> float:
    """Seconds of one Rscript process making `variants` variants of the exercise as Moodle XML (start-up included)."""
    with tempfile.TemporaryDirectory() as folder:
        script = (
            "suppressMessages(library(exams)); set.seed(1); "
            f"invisible(exams2moodle({json.dumps(str(EXERCISE))}, n = {variants}, dir = {json.dumps(folder)}, "
            "name = 'bench', verbose = FALSE))"
        )
        return timed(["Rscript", "-e", script])[0]


def process_comparison(sizes: list[int]) -> None:
    """The same exercise made by qbank and, where installed, by R/exams: whole processes, measured now."""
    small, large = sizes
    print(f"\nthe GRU output-shape exercise as Moodle XML, whole processes at n = {small} and n = {large}:")
    rows = [["", f"n={small} s", f"n={large} s", "ms per variant at n=" + str(large), "marginal ms per variant"]]
    qbank_times = [qbank_process(n, "moodle", "gru_output_shape")[0] for n in sizes]
    measured = {"qbank": qbank_times}
    missing = r_exams_missing()
    if missing is None:
        try:
            measured["R/exams"] = [r_exams_process(n) for n in sizes]
        except subprocess.CalledProcessError as exc:
            last = (exc.stderr or "").strip().splitlines()[-1:] or ["no message"]
            missing = f"exams2moodle failed: {last[0]}"
    for name, (first, second) in measured.items():
        marginal = (second - first) / (large - small)
        rows.append([name, f"{first:.2f}", f"{second:.2f}", f"{1000 * second / large:.2f}", f"{1000 * marginal:.3f}"])
    print(table(rows))
    if missing is not None:
        print(f"R/exams: not measured ({missing}); no comparison is printed")
        return
    qbank_marginal = (qbank_times[1] - qbank_times[0]) / (large - small)
    r_times = measured["R/exams"]
    r_marginal = (r_times[1] - r_times[0]) / (large - small)
    print(
        f"R/exams / qbank, measured in this run: whole process at n={large} {r_times[1] / qbank_times[1]:.1f}×, "
        f"marginal per variant {r_marginal / qbank_marginal:.1f}×"
    )


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
    parser.add_argument(
        "--process-sizes", default="30,300", help="two sizes for the whole-process timings (qbank and R/exams)"
    )
    args = parser.parse_args()
    bank = executed_bank()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"qbank pipeline benchmark · {time.strftime('%Y-%m-%d')} · {machine()} · {len(bank.questions)} executed "
        f"GRU Mastery questions · {args.jobs} workers · python {sys.version.split()[0]} · torch {torch_version()}\n"
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
    if args.compare_jobs:
        size = sizes[-1]
        single, _ = measure(bank, size, args.seed + size, 1)
        print(
            f"\ntorch stage at N={size}: --jobs 1 {single['run']:.2f} s, --jobs {args.jobs} {results[-1]['run']:.2f} s "
            f"→ {single['run'] / results[-1]['run']:.2f}× faster"
        )
    whole_variants = sizes[-1] // len(bank.questions)
    seconds, made = qbank_process(whole_variants, ",".join(FORMATS))
    print(
        f"\nwhole process, as a user runs it (start-up and torch's import included): `qbank generate gru_mastery "
        f"-n {whole_variants} -f {','.join(FORMATS)}` took {seconds:.2f} s for {made} variants "
        f"= {1000 * seconds / made:.2f} ms per variant"
    )
    small, large = (int(n) for n in args.process_sizes.split(","))
    process_comparison([small, large])


if __name__ == "__main__":
    main()
