"""`qbank preview`: the authoring loop. Write a bank's HTML challenge, then write it again whenever the bank file
changes, saying what went wrong in place (the old page stays) until the file is fixed.

The pool of torch workers lives as long as the preview, so only the snippets an edit changed run again.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from qbank.errors import QbankError
from qbank.generate import generate
from qbank.loader import resolve
from qbank.models import Bank
from qbank.runner import Store, WorkerPool
from qbank.variant import BankInfo
from qbank.writing import export_files


def preview(
    name: str,
    load: Callable[[], Bank],
    out: Path,
    variants: int,
    seed: int,
    *,
    watch: bool,
    store: Store | None,
    sandbox: bool = True,
) -> int:
    """Build once, then (with `watch`) again on every change of the bank file named `name`, until interrupted.

    `load` reads the bank afresh (the command line's choice of questions applied).
    """
    path = resolve(name).resolve()
    with WorkerPool(store=store, sandbox=sandbox) as pool:
        ok = _build(load, out, variants, seed, pool)
        if not watch:
            return 0 if ok else 1
        import watchfiles

        print(f"watching {path} (Ctrl-C to stop)", flush=True)
        try:
            # The folder, not the file: editors often save by writing a new file and renaming it over the old one.
            for _ in watchfiles.watch(path.parent, watch_filter=lambda _, changed: Path(changed) == path):
                _build(load, out, variants, seed, pool)
        except KeyboardInterrupt:
            print("stopped watching", flush=True)
    return 0


def _build(load: Callable[[], Bank], out: Path, variants: int, seed: int, pool: WorkerPool) -> bool:
    """One build of the page; a problem is printed, and the page from the last good build stays."""
    started = time.perf_counter()
    try:
        bank = load()
        result = generate(bank, variants, seed, pool=pool)
        for failure in result.failures:
            print(f"qbank: variant failed: {failure}", file=sys.stderr, flush=True)
        if not result.variants:
            raise QbankError(f"no variant of bank '{bank.id}' could be made; the page was not written")
        (written,) = export_files(["html"], BankInfo.of(bank), result.variants, seed, out)
    except QbankError as exc:
        print(f"qbank: error: {exc}", file=sys.stderr, flush=True)
        return False
    print(
        f"{time.strftime('%H:%M:%S')} {written} ({len(result.variants)} variants, {result.runs} snippets run, "
        f"{time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    return not result.failures
