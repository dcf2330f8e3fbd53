"""The authoring loop: regenerating a bank after an edit, cold (empty outcome cache) and warm, printed as a table.

For each built-in bank: `qbank generate BANK -n 20 -f all` as a user runs it (a whole process), first with an empty
outcome cache, then again with the cache the first run filled (nothing changed, so no snippet runs and no torch
worker starts). Run: `python benchmarks/authoring.py [--variants 20] [--repeat 3]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QBANK = shutil.which("qbank", path=os.path.dirname(sys.executable)) or "qbank"
BANKS = ["gru_mastery", "recurrent_layers", "conv_pooling", "attention", "losses"]


def timed_generate(bank: str, variants: int, cache: Path, out: Path) -> tuple[float, str]:
    env = {**os.environ, "QBANK_CACHE": "on", "QBANK_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    done = subprocess.run(
        [QBANK, "generate", bank, "-n", str(variants), "-f", "all", "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return time.perf_counter() - started, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="cold/warm pairs per bank; the table shows medians")
    args = parser.parse_args()
    print(f"qbank authoring benchmark · {time.strftime('%Y-%m-%d')} · {os.cpu_count()} cores · -n {args.variants}\n")
    rows = [["bank", "cold s", "warm s", "snippets run (cold / warm)"]]
    for bank in BANKS:
        colds, warms, runs = [], [], ""
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as folder:
                cache, out = Path(folder) / "cache", Path(folder) / "out"
                cold, cold_said = timed_generate(bank, args.variants, cache, out)
                warm, warm_said = timed_generate(bank, args.variants, cache, out)
            colds.append(cold)
            warms.append(warm)
            runs = f"{cold_said.split('(')[1].split(' snippets')[0]} / {warm_said.split('(')[1].split(' snippets')[0]}"
        rows.append([bank, f"{statistics.median(colds):.2f}", f"{statistics.median(warms):.2f}", runs])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )


if __name__ == "__main__":
    main()
