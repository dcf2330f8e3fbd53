"""The `qbank` command: a thin layer over the Python API.

Exit codes: 0 success; 1 the input was wrong (bad bank, failed variants, failed check); 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from qbank import __version__
from qbank.check import check
from qbank.classroom.paper import grade_and_write
from qbank.classroom.report import report_files
from qbank.classroom.sources import results_of
from qbank.errors import QbankError
from qbank.exam import make_exam, numbered, parse_pick, read_roster, write_exam
from qbank.exporters.json import load as load_export
from qbank.exporting import formats
from qbank.generate import MAX_VARIANTS, Generation, generate
from qbank.loader import builtin_banks, load_bank
from qbank.models import Bank, json_schema
from qbank.preview import preview
from qbank.progress import Progress
from qbank.runner import WorkerPool
from qbank.store import OutcomeStore
from qbank.stress import UNIFORM_P, mistake_lines, summarize, table, warnings
from qbank.variant import BankInfo, Variant
from qbank.writing import export_files, write_files


def _whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum` (and at most `maximum`)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} (got {value})")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:,} (got {value:,})")
        return value

    return parse


_positive, _seed, _variants = _whole(1), _whole(0), _whole(1, MAX_VARIANTS)


class _Formats(list[str]):
    """The formats asked for; `every`: asked for as `all`, so each writes what it can express and names the rest."""

    every = False


def _format_list(text: str) -> _Formats:
    names = [name.strip() for name in text.split(",") if name.strip()]
    try:
        known = formats()
    except QbankError as exc:  # a broken third-party format: say which, as a usage problem
        raise argparse.ArgumentTypeError(str(exc)) from None
    if names == ["all"]:
        every = _Formats(known)
        every.every = True
        return every
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(map(repr, unknown)) or '(none given)'}; choose from {', '.join(known)} or all"
        )
    return _Formats(dict.fromkeys(names))


def _id_list(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("give one or more question ids, separated by commas")
    return ids


def _bank(args: argparse.Namespace) -> Bank:
    """The bank named on the command line, narrowed to the questions of --question (in the bank's order)."""
    bank = load_bank(args.bank)
    if not args.question:
        return bank
    known = [question.id for question in bank.questions]
    unknown = [qid for qid in args.question if qid not in known]
    if unknown:
        raise QbankError(
            f"bank '{bank.id}' has no question {', '.join(map(repr, unknown))}; its questions: {', '.join(known)}"
        )
    return bank.model_copy(update={"questions": [q for q in bank.questions if q.id in args.question]})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qbank",
        description="Typed question banks into verified quiz variants (answers computed with torch).",
    )
    parser.add_argument("--version", action="version", version=f"qbank {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name, about in (
        ("list", "list the built-in banks: id, number of questions, title"),
        ("formats", "list the export formats and where each is imported"),
        ("schema", "print the JSON Schema of the bank format (for editors that complete and check TOML)"),
    ):
        commands.add_parser(name, help=about, description=about[0].upper() + about[1:] + ".")

    cache = commands.add_parser(
        "cache",
        help="show or clear the outcome cache",
        description="Outcomes of snippets are kept on disk (by code, expression, Python and torch version), so "
        "unchanged snippets never run again. QBANK_CACHE_DIR moves the cache.",
    )
    cache.add_argument("action", choices=["info", "clear"], nargs="?", default="info")

    validate = commands.add_parser("validate", help="check bank files without running any code")
    validate.add_argument("banks", nargs="+", metavar="BANK", help="a bank file or built-in id")

    def add_code_options(sub: argparse.ArgumentParser) -> None:
        """How the bank's code runs: the workers, the outcome cache, the sandbox."""
        sub.add_argument("--jobs", "-j", type=_positive, default=None, help="worker processes (default: one per core)")
        sub.add_argument(
            "--no-cache",
            action="store_true",
            help="run every snippet, without using or filling the outcome cache (see `qbank cache`)",
        )
        sub.add_argument(
            "--no-sandbox",
            action="store_true",
            help="run the bank's code without the sandbox, with your rights: only for banks you wrote or trust",
        )

    def add_run_options(sub: argparse.ArgumentParser, variants: int) -> None:
        sub.add_argument("bank", metavar="BANK", help="a bank file or built-in id")
        sub.add_argument(
            "--variants",
            "-n",
            type=_variants,
            default=variants,
            help=f"per question (default {variants}, at most {MAX_VARIANTS:,})",
        )
        sub.add_argument("--seed", "-s", type=_seed, default=0, help="the seed (default 0)")
        sub.add_argument(
            "--question", "-q", type=_id_list, default=[], help="only these questions (comma-separated ids)"
        )
        add_code_options(sub)

    check = commands.add_parser("check", help="run the code of questions with hand-written keys and compare")
    add_run_options(check, 20)

    stress = commands.add_parser("stress", help="make many variants and report per-question statistics")
    add_run_options(stress, 1000)

    preview = commands.add_parser(
        "preview",
        help="write the HTML challenge of a bank, and again whenever the bank file changes",
        description="Write OUT/BANK.html (open it in a browser yourself) and rewrite it on every save of the bank "
        "file; problems are printed in place and the last good page stays. Ctrl-C stops.",
    )
    add_run_options(preview, 3)
    preview.add_argument("--out", "-o", type=Path, default=Path("preview"), help="output folder (default preview)")
    preview.add_argument("--once", action="store_true", help="write the page once and stop (no watching)")

    exam = commands.add_parser(
        "exam",
        help="one sheet and answer key per student, a class key and a manifest for `qbank grade`",
        description="Deal each student one variant of every question (or K questions per category with --pick), "
        "drawn from the seed and the student ids, and write per student FILE.md, FILE.pdf and FILE.key.md, plus "
        "key.csv and manifest.json. The same banks, roster and seed give byte-identical files.",
    )
    exam.add_argument("banks", nargs="+", metavar="BANK", help="bank files or built-in ids")
    who = exam.add_mutually_exclusive_group(required=True)
    who.add_argument("--students", type=_positive, help="this many students, named s001, s002, …")
    who.add_argument("--roster", type=Path, help="a CSV file with a header: id (or student), and optionally name")
    exam.add_argument("--seed", "-s", type=_seed, default=0, help="the seed (default 0)")
    exam.add_argument("--out", "-o", type=Path, required=True, help="output folder (made if missing)")
    exam.add_argument("--pick", help="K questions per category for each student, e.g. 'Debug=1,Predict Output=2'")
    exam.add_argument("--title", help="the title on every sheet (default: the banks' titles)")
    exam.add_argument("--no-pdf", action="store_true", help="write the Markdown sheets only")
    add_code_options(exam)

    grade = commands.add_parser(
        "grade",
        help="score students' answers to an exam and report the mistakes chosen",
        description="Read DIR/manifest.json (written by `qbank exam`) and a CSV of answers (student, question, "
        "answer), score them by meaning, and write grades.csv, scored.csv, report.md and a chart per question.",
    )
    grade.add_argument("folder", metavar="DIR", type=Path, help="the folder `qbank exam --out` wrote")
    grade.add_argument("--answers", "-a", type=Path, required=True, help="CSV: student, question, answer")
    grade.add_argument("--out", "-o", type=Path, default=None, help="where to write (default: DIR)")

    results = commands.add_parser(
        "results",
        help="read students' answers from a Moodle or Canvas report, regrade them by meaning and analyse them",
        description="Read each REPORT (Moodle's Responses report, or Canvas's Student Analysis; CSV), find the "
        "variant of every answer (from the banks, seed and variant count the quiz was generated with, or from its "
        "JSON export), regrade the answers by meaning, and write report.md, report.html and a CSV of every table: "
        "the mistakes chosen, item statistics per question, variant, option and parameter value, and what to regrade.",
    )
    results.add_argument("reports", nargs="+", metavar="REPORT", type=Path, help="a report downloaded as CSV")
    made = results.add_mutually_exclusive_group(required=True)
    made.add_argument("--bank", "-b", dest="banks", action="append", help="a bank the quiz was made from (repeatable)")
    made.add_argument(
        "--from", dest="exports", action="append", type=Path, metavar="JSON", help="the quiz's JSON export (repeatable)"
    )
    results.add_argument("--seed", "-s", type=_seed, default=0, help="with --bank: the seed of `qbank generate`")
    results.add_argument(
        "--variants", "-n", type=_variants, default=1, help="with --bank: the variants per question it made"
    )
    results.add_argument(
        "--grades",
        type=Path,
        help="Moodle's Grades report with marks for each question (without it, Moodle's marks are worked out by its "
        "rules and checked against each attempt's grade)",
    )
    results.add_argument("--title", help="the report's title (default: the banks' titles)")
    results.add_argument("--out", "-o", type=Path, required=True, help="output folder (made if missing)")
    add_code_options(results)

    gen = commands.add_parser("generate", help="make variants and export them")
    add_run_options(gen, 1)
    gen.add_argument(
        "--format",
        "-f",
        type=_format_list,
        default=_Formats(["json"]),
        help="comma-separated formats, or all (default json; see `qbank formats`); with all, a format that cannot "
        "express a question writes the others and names it",
    )
    gen.add_argument("--out", "-o", type=Path, required=True, help="output folder (made if missing)")
    gen.add_argument(
        "--strict", action="store_true", help="fail when a question allows fewer distinct variants than asked"
    )
    return parser


def _store(args: argparse.Namespace) -> OutcomeStore | None:
    """The outcome cache, unless --no-cache or QBANK_CACHE=off says to run everything."""
    if args.no_cache or os.environ.get("QBANK_CACHE", "").lower() in ("off", "0", "no"):
        return None
    return OutcomeStore()


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that it unwinds (and cleans up) like Ctrl-C."""


def _on_terminate(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_terminate)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # here, where a reader that went away can still be answered quietly
        return code
    except BrokenPipeError:
        # The reader went away (`qbank schema | head -1`): nothing more to say, and no one to say it to.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except QbankError as exc:
        print(f"qbank: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the machine said no (disk, permissions, processes): its words, no traceback
        print(f"qbank: error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        stopped = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        print(f"\nqbank: {stopped}; no output was written", file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "list":
        for bank_id, path in builtin_banks().items():
            bank = load_bank(path)
            print(f"{bank_id:<24} {_count(len(bank.questions), 'question'):>13}  {bank.title}")
        return 0
    if command == "formats":
        for name, cls in formats().items():
            print(f"{name:<10} {cls.description}")
        return 0
    if command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return 0
    if command == "cache":
        store = OutcomeStore()
        try:
            if args.action == "clear":
                print(f"removed {_count(store.clear(), 'outcome')} from {store.path}")
            else:
                print(f"{_count(store.count(), 'outcome')} in {store.path}")
        finally:
            store.close()
        return 0
    if command == "validate":
        return _validate(args.banks)
    if command == "preview":
        load = lambda: _bank(args)  # noqa: E731 - read afresh on every save
        return preview(
            args.bank,
            load,
            args.out,
            args.variants,
            args.seed,
            watch=not args.once,
            store=_store(args),
            sandbox=not args.no_sandbox,
        )
    if command == "generate":
        return _generate(args)
    if command == "exam":
        return _exam(args)
    if command == "grade":
        return _grade(args)
    if command == "results":
        return _results(args)
    if command == "check":
        return _check(args)
    if command == "stress":
        return _stress(args)
    raise AssertionError(command)


def _validate(names: list[str]) -> int:
    failed = 0
    for name in names:
        try:
            bank = load_bank(name)
        except QbankError as exc:
            print(f"qbank: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"ok: {name} ({bank.id}: {_count(len(bank.questions), 'question')})")
    return 1 if failed else 0


def _run(args: argparse.Namespace, label: str) -> tuple[Bank, Generation]:
    """The bank named on the command line, and its variants (with a progress bar on a terminal)."""
    bank = _bank(args)
    with Progress(label) as progress:
        return bank, generate(
            bank,
            args.variants,
            args.seed,
            jobs=args.jobs,
            progress=progress,
            store=_store(args),
            sandbox=not args.no_sandbox,
        )


def _generate(args: argparse.Namespace) -> int:
    bank, result = _run(args, "running code")
    for notice in result.notices:
        print(f"qbank: note: {notice}", file=sys.stderr)
    for (question_id, name), reason in result.mistake_failures.items():
        print(f"qbank: note: question '{question_id}', mistake '{name}' did not run: {reason}", file=sys.stderr)
    if args.strict and result.notices:
        raise QbankError("--strict: some questions allow fewer distinct variants than asked; nothing was written")
    for failure in result.failures:
        print(f"qbank: variant failed: {failure}", file=sys.stderr)
    if not result.variants:
        raise QbankError(f"no variant of bank '{bank.id}' could be made; nothing was written")
    with Progress("writing") as status:
        status.note(f"writing {len(result.variants)} variants as {', '.join(args.format)} …")
        left_out: list[str] = []
        written = export_files(
            args.format,
            BankInfo.of(bank),
            result.variants,
            args.seed,
            args.out,
            jobs=args.jobs,
            left_out=left_out.append if args.format.every else None,
        )
    for line in left_out:
        print(f"qbank: note: {line}", file=sys.stderr)
    print(
        f"{_count(len(result.variants), 'variant')} of {_count(len(bank.questions), 'question')} "
        f"({result.runs} snippets run, {result.cache_hits} reused) → " + ", ".join(str(path) for path in written)
    )
    if result.failures:
        print(
            f"qbank: error: {len(result.failures)} variant(s) failed (listed above); the others were exported",
            file=sys.stderr,
        )
        return 1
    return 0


def _exam(args: argparse.Namespace) -> int:
    banks = [load_bank(name) for name in args.banks]
    students = read_roster(args.roster) if args.roster else numbered(args.students)
    pick = parse_pick(args.pick) if args.pick is not None else None
    with Progress("running code") as progress:
        exam = make_exam(
            banks,
            students,
            args.seed,
            pick=pick,
            title=args.title,
            jobs=args.jobs,
            store=_store(args),
            progress=progress,
            sandbox=not args.no_sandbox,
        )
    for notice in exam.notices:
        print(f"qbank: note: {notice}", file=sys.stderr)
    for failure in exam.failures:
        print(f"qbank: variant failed (not dealt): {failure}", file=sys.stderr)
    with Progress("writing") as status:
        status.note(f"writing {_count(len(exam.sheets), 'sheet')} …")
        written = write_exam(exam, args.out, pdf=not args.no_pdf, jobs=args.jobs)
    questions = {len(sheet.variants) for sheet in exam.sheets}
    print(
        f"{_count(len(exam.sheets), 'student')}, {'/'.join(map(str, sorted(questions)))} questions each → "
        f"{_count(len(written), 'file')} in {args.out} (key.csv, manifest.json and per student "
        f"{'.md, .pdf, .key.md' if not args.no_pdf else '.md, .key.md'})"
    )
    return 0


def _grade(args: argparse.Namespace) -> int:
    grading, written = grade_and_write(args.folder, args.answers, args.out)
    right = sum(mark.score for mark in grading.marks)
    shown = ("grades.csv", "scored.csv", "report.md", "report.html")
    print(
        f"{_count(len(grading.students), 'student')}, {_count(len(grading.marks), 'answer')} marked, {right:g} right "
        f"→ " + ", ".join(str(path) for path in written if path.name in shown) + ", "
        f"{_count(sum(path.suffix == '.svg' for path in written), 'chart')} and the report's tables as CSV"
    )
    return 0


def _results(args: argparse.Namespace) -> int:
    variants: list[Variant] = []
    titles: list[str] = []
    if args.exports:
        for path in args.exports:
            document = load_export(path)
            variants += document.variants
            titles.append(document.bank.title)
    else:
        with (
            Progress("running code") as progress,
            WorkerPool(args.jobs, store=_store(args), sandbox=not args.no_sandbox) as pool,
        ):
            for name in args.banks:
                bank = load_bank(name)
                variants += generate(bank, args.variants, args.seed, pool=pool, progress=progress).variants
                titles.append(bank.title)
    results = results_of(args.reports, variants, args.grades)
    for line in [*results.notes, *results.problems]:
        print(f"qbank: note: {line}", file=sys.stderr)
    written = write_files(args.out, report_files(results, args.title or " · ".join(titles)))
    regraded = sum(1 for r in results.responses if r.lms_mark is not None and abs(r.lms_mark - r.score) > 1e-9)
    attempts = len({(r.record.student, r.record.attempt) for r in results.responses})
    print(
        f"{_count(attempts, 'attempt')}, {_count(len(results.responses), 'answer')} traced to their variant"
        + (f", {len(results.problems)} not (listed above)" if results.problems else "")
        + f", {regraded} to regrade → {_count(len(written), 'file')} in {args.out} (report.md, report.html, CSVs)"
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    bank = _bank(args)
    report = check(
        bank,
        variants=args.variants,
        seed=args.seed,
        jobs=args.jobs,
        store=_store(args),
        sandbox=not args.no_sandbox,
    )
    for disagreement in report.disagreements:  # first: a wrong key is what a teacher runs `check` to find
        print(f"wrong key: {disagreement}")
    for failure in report.failures:
        print(f"variant failed: {failure}")
    claims = sum(1 for q in bank.questions if getattr(q.answer, "claim", None) is not None)
    verdict = "ok" if report.ok else "FAILED"
    print(
        f"{verdict}: {report.checked} keyed variants of {claims} question{'s' if claims != 1 else ''} with a claim "
        "compared with torch; "
        f"{len(report.disagreements)} disagreements, {len(report.failures)} failed variants"
    )
    return 0 if report.ok else 1


def _stress(args: argparse.Namespace) -> int:
    bank, result = _run(args, "stress")
    rows = summarize(bank, result)
    print(table(rows))
    for failure in result.failures[:20]:
        print(f"variant failed: {failure}")
    if len(result.failures) > 20:
        print(f"... and {len(result.failures) - 20} more failed variants")
    for (question_id, name), reason in result.mistake_failures.items():
        print(f"mistake failed: question '{question_id}', mistake '{name}': {reason}")
    skewed = [row.question_id for row in rows if not row.uniform]
    for question_id in skewed:
        print(f"correct choice not uniform (p < {UNIFORM_P}): {question_id}")
    for line in mistake_lines(rows):
        print(line)
    for warning in warnings(bank, rows):
        print(f"warning: {warning}")
    print(
        f"{len(result.variants)} variants made, {len(result.failures)} failed "
        f"({result.runs} snippets run, {result.cache_hits} reused)"
    )
    return 1 if result.failures or skewed or result.mistake_failures else 0


if __name__ == "__main__":
    sys.exit(main())
