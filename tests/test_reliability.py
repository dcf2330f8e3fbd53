"""Atomic outputs, reproducible builds, and limits: no half-written file, ever; same input, same bytes."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from lxml import etree

import qbank
from qbank.errors import QbankError
from qbank.exporting import Exporter, Files
from qbank.generate import Generation
from qbank.variant import BankInfo
from qbank.writing import render_all

from .conftest import FIXTURES, QBANK, bank_of, printing_bank_file, question, run_cli

EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def complete(path: Path) -> bool:
    """Whether a file is a whole, readable export of its format."""
    data = path.read_bytes()
    try:
        if path.suffix == ".json":
            json.loads(data)
        elif path.name.endswith(".moodle.xml"):
            etree.fromstring(data)
        elif path.suffix in (".apkg", ".zip"):
            with zipfile.ZipFile(path) as archive:
                return archive.testzip() is None
        elif path.suffix in (".md", ".txt", ".html"):
            data.decode("utf-8")
            return data.endswith(b"\n") or data.rstrip().endswith(b"</html>")
    except (ValueError, etree.XMLSyntaxError, zipfile.BadZipFile):
        return False
    return True


def test_same_seed_gives_identical_bytes_in_every_format_across_processes_and_jobs(tmp_path: Path) -> None:
    runs = []
    for name, jobs in (("one", 1), ("two", 2)):
        done = run_cli(
            "generate", "gru_mastery", "-n", 3, "-s", 4, "-f", "all", "-j", jobs, "-o", tmp_path / name, env=EPOCH
        )
        assert done.returncode == 0, done.stderr
        runs.append(digests(tmp_path / name))
    assert runs[0] == runs[1]
    assert len(runs[0]) == 8


def register(monkeypatch: pytest.MonkeyPatch, *classes: type[Exporter]) -> None:
    """Make extra formats known for one test (as an entry point would)."""
    import qbank.exporting as exporting

    known = dict(exporting.formats())
    monkeypatch.setattr(exporting, "formats", lambda: {**known, **{cls.name: cls for cls in classes}})


def test_a_failing_format_writes_nothing(gru_50: Generation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(Exporter):
        name = "broken"
        description = "fails"
        suffix = ".broken"

        def render(self, bank: BankInfo, variants, seed: int) -> Files:  # type: ignore[no-untyped-def]
            raise QbankError("this format failed")

    register(monkeypatch, Broken)
    qbank.export(gru_50, ["json"], tmp_path)
    before = digests(tmp_path)
    for jobs in (1, 2, 3):  # in the calling process, and in forked lanes
        with pytest.raises(QbankError, match="this format failed"):
            qbank.export(gru_50, ["json", "moodle", "broken", "anki"], tmp_path, jobs=jobs)
        assert digests(tmp_path) == before  # no new file, no temporary file left
    with pytest.raises(QbankError, match="this format failed"):
        render_all(["json", "broken"], BankInfo.of(gru_50.bank), gru_50.variants[:3], 1)


class _Slow(Exporter):
    """Takes a second in the calling process; in a forked lane, it ends the process (see the tests below)."""

    name = "slow"
    description = "slow"
    suffix = ".slow"
    parent = os.getpid()

    def render(self, bank: BankInfo, variants, seed: int) -> Files:  # type: ignore[no-untyped-def]
        if os.getpid() != self.parent:
            os._exit(3)
        time.sleep(1)
        return {f"{bank.id}.{self.name}": "done\n"}


class _Slow2(_Slow):
    name = "slow2"


def test_a_lane_that_dies_is_a_clear_error(gru_50: Generation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, _Slow, _Slow2)
    # Two lanes, two formats: while the calling process renders one, the forked lane takes the other and dies.
    with pytest.raises(QbankError, match=r"the process rendering the slow2? format ended early"):
        qbank.export(gru_50, ["slow", "slow2", "json"], tmp_path, jobs=2)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_formats_render_leaves_no_file(
    gru_50: Generation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Quick(Exporter):
        name = "quick"
        description = "quick"
        suffix = ".quick"

        def render(self, bank: BankInfo, variants, seed: int) -> Files:  # type: ignore[no-untyped-def]
            return {f"{bank.id}.quick": "x" * 100_000}

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    register(monkeypatch, Quick, _Slow)
    monkeypatch.setattr(_Slow, "render", lambda self, bank, variants, seed: time.sleep(5) or {})  # in any lane
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            qbank.export(gru_50, ["slow", "quick", "json"], tmp_path, jobs=2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert list(tmp_path.iterdir()) == []  # the other lane had staged its files: they are gone


def test_a_full_disk_is_a_clear_error_and_spoils_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("generate", "gru_mastery", "-n", 2, "-f", "json,anki", "-o", out).returncode == 0
    before = digests(out)

    def small_files() -> None:  # writing past 64 KiB fails with EFBIG, as a full disk fails with ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    done = subprocess.run(
        [QBANK, "generate", "gru_mastery", "-n", "40", "-f", "json,anki", "-o", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=small_files,
        timeout=300,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"qbank: error: cannot write into {out}: File too large")
    assert "Traceback" not in done.stderr
    assert digests(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("stop", "code", "said"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_stopping_a_run_keeps_the_previous_export_and_leaves_nothing(
    stop: signal.Signals, code: int, said: str, tmp_path: Path
) -> None:
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    scratch.mkdir()
    assert run_cli("generate", "gru_mastery", "-n", 2, "-f", "all", "-o", out).returncode == 0
    before = digests(out)
    process = subprocess.Popen(
        [QBANK, "generate", "gru_mastery", "-n", "400", "-f", "all", "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    time.sleep(4)  # torch is imported and snippets are running
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code
    assert said in stderr and "Traceback" not in stderr
    assert digests(out) == before
    assert list(scratch.iterdir()) == []  # the workers' folder is gone too


@pytest.mark.parametrize("delay", [3.0, 5.0, 6.5, 8.0])
def test_killing_a_run_leaves_only_whole_files(delay: float, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("generate", "gru_mastery", "-n", 2, "-f", "all", "-o", out, env=EPOCH).returncode == 0
    old = digests(out)
    process = subprocess.Popen(
        [QBANK, "generate", "gru_mastery", "-n", "300", "-f", "all", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for path in out.iterdir():
        if path.name.startswith("."):
            continue  # a temporary file of the killed run: never under a final name
        assert path.name in old
        assert complete(path), path.name
    again = run_cli("generate", "gru_mastery", "-n", 2, "-f", "all", "-o", out, env=EPOCH)
    assert again.returncode == 0
    assert digests(out) == old  # stale temporary files are cleared, finals rewritten
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_fixture_that_allows_few_variants_exports_what_exists(tmp_path: Path) -> None:
    done = run_cli("generate", FIXTURES / "hostile.toml", "-n", 50, "-f", "json", "-o", tmp_path)
    assert done.returncode == 0
    variants = json.loads((tmp_path / "hostile.json").read_text())["variants"]
    assert len(variants) == 4 + 1 + 3 + 5 + 1 + 1  # printed n∈2..5, static, short a∈2..4, numeric a∈1..5, 2 static


def test_huge_integer_ranges_are_counted_and_drawn_without_being_listed(pool) -> None:  # type: ignore[no-untyped-def]
    bank = bank_of(
        question(
            id="q",
            category="Metrics",
            type="numeric",
            stem="What is {{ n }} % 7?",
            code="n = {{ n }}",
            answer={"kind": "value", "expression": "n % 7"},
            params={"n": {"type": "int", "min": 0, "max": 10**30, "step": 3}},
            constraints=["n % 2 == 0"],
        )
    )
    result = qbank.generate(bank, 5, 1, pool=pool)
    assert not result.failures
    values = [v.params["n"] for v in result.variants]
    assert len(set(values)) == 5 and all(n % 6 == 0 and 0 <= n <= 10**30 for n in values)
    assert any(n > 10**20 for n in values)  # drawn from the whole range


def test_printed_lone_surrogates_reach_every_format_as_replacement_characters(tmp_path: Path) -> None:
    bank = printing_bank_file(tmp_path, "print('a' + chr(0xD800) + 'b', {{ n }})")
    done = run_cli("generate", bank, "-n", 2, "-f", "all", "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads((tmp_path / "out" / "printing.json").read_text())
    assert all(v["outcome"]["stdout"].startswith("a\ufffdb ") for v in data["variants"])


def test_absurd_counts_are_refused_or_capped(tmp_path: Path) -> None:
    from qbank.runner import WorkerPool

    done = run_cli("generate", "gru_mastery", "-n", 10**12, "-o", tmp_path / "out", timeout=60)
    assert done.returncode == 2 and "at most 1,000,000" in done.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(QbankError, match="from 1 to 1,000,000"):
        qbank.generate(qbank.load_bank("gru_mastery"), 10**12, 0)
    with WorkerPool(1000) as pool:  # one torch worker per core, not a thousand
        assert pool.size == os.cpu_count()


def test_a_blocked_file_name_stops_the_export_before_any_file_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "hostile.moodle.xml").mkdir(parents=True)  # a folder where a file should go
    done = run_cli("generate", FIXTURES / "hostile.toml", "-n", 2, "-f", "all", "-o", out)
    assert done.returncode == 1 and "a folder has that name" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["hostile.moodle.xml"]  # all or none: none


def test_two_runs_writing_one_folder_at_once_both_finish_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [QBANK, "generate", str(FIXTURES / "hostile.toml"), "-n", "3", "-f", "all", "-o", str(out)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    assert len(list(out.iterdir())) == 8
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    json.loads((out / "hostile.json").read_text())


def test_huge_rendered_texts_and_values_cost_only_their_variant(pool) -> None:  # type: ignore[no-untyped-def]
    n = {"n": {"type": "int", "min": 1, "max": 2}}
    bank = bank_of(
        question(
            id="long_stem",
            type="short_answer",
            stem="{% for i in range(100000) %}{% for j in range(n * 10) %}xx{% endfor %}{% endfor %}",
            code="print({{ n }})",
            answer={"kind": "stdout"},
            params=n,
        ),
        question(
            id="big_value",
            type="short_answer",
            code="x = list(range({{ n }} * 400_000))",
            answer={"kind": "value", "expression": "x"},
            params=n,
        ),
    )
    result = qbank.generate(bank, 2, 0, pool=pool)
    reasons = {f.question_id: f.reason for f in result.failures}
    assert "at most 1,000,000" in reasons["long_stem"]
    assert "larger than 1,000,000 characters" in reasons["big_value"]
    assert [v.params["n"] for v in result.variants if v.question_id == "long_stem"] == []


def test_a_folder_named_like_a_built_in_bank_does_not_hide_it(tmp_path: Path) -> None:
    (tmp_path / "gru_mastery").mkdir()  # e.g. an earlier `--out gru_mastery`
    done = subprocess.run([QBANK, "validate", "gru_mastery"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr


def test_an_integer_too_long_to_write_is_a_failure_of_its_variant(pool) -> None:  # type: ignore[no-untyped-def]
    from qbank.runner import Job

    job = Job("x = 10 ** 5000", "x")
    after = Job("y = 2", "y")
    results = pool.run([job, after])
    assert results[job.key].failure is not None and "cannot be recorded" in results[job.key].failure
    assert results[after.key].value == 2


def test_ctrl_c_does_not_wait_for_the_snippets_the_workers_hold(tmp_path: Path) -> None:
    bank = printing_bank_file(tmp_path, "import time\ntime.sleep(5)\nprint({{ n }})")
    process = subprocess.Popen(
        [QBANK, "generate", str(bank), "-n", "40", "-f", "json", "-o", str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)  # snippets of 5 s each are running, more are queued on each worker
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)  # the queued snippets alone would take half a minute
    assert process.returncode == 130 and "interrupted" in stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_template_loop_or_a_slow_constraint_is_stopped_with_a_message(
    pool,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    import importlib

    from qbank import params as sampling

    generation = importlib.import_module("qbank.generate")  # the module, not the function qbank exports
    monkeypatch.setattr(generation, "RENDER_SECONDS", 1.0)
    monkeypatch.setattr(sampling, "CONSTRAINT_SECONDS", 1.0)
    looping = question(
        id="looping",
        category="Conceptual",
        type="true_false",
        stem="{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}Is {{ n }} odd?",
        answer={"value": True},
        params={"n": {"type": "int", "min": 1, "max": 9}},
    )
    started = time.monotonic()
    result = qbank.generate(bank_of(looping), 5, 0, pool=pool)
    assert len(result.failures) == 5 and not result.variants
    assert all("took longer than 1 s" in f.reason for f in result.failures)
    assert time.monotonic() - started < 20  # the first variant's time, not five times it

    slow = {
        **looping,
        "stem": "Is {{ n }} odd?",
        "params": {"n": {"type": "int", "min": 1, "max": 10000}},
        "constraints": ["(range(100000) | sum) > n"],
    }
    with pytest.raises(QbankError, match=r"constraints.*took longer than 1 s"):
        bank_of(slow)
