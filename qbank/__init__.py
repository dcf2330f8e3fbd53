"""qbank: typed question banks → verified quiz variants → Moodle, Anki, Markdown, JSON.

The Python API, for notebooks and scripts (the `qbank` command is a thin layer over it)::

    import qbank
    bank = qbank.load_bank("gru_mastery")            # a built-in id, a path, or a dict
    result = qbank.generate(bank, variants=10, seed=7)
    qbank.export(result, ["json", "moodle"], "out/")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from qbank.errors import BankError, QbankError
from qbank.exporting import formats
from qbank.generate import Failure, Generation, generate
from qbank.loader import builtin_banks, load_bank
from qbank.models import Bank, Question
from qbank.variant import BankInfo, Choice, Variant
from qbank.writing import export_files

__all__ = [
    "Bank",
    "BankError",
    "BankInfo",
    "Choice",
    "Failure",
    "Generation",
    "QbankError",
    "Question",
    "Variant",
    "builtin_banks",
    "export",
    "formats",
    "generate",
    "load_bank",
]

__version__ = "0.1.0"


def export(
    result: Generation,
    names: Sequence[str],
    out: str | Path,
    *,
    jobs: int | None = None,
    left_out: Callable[[str], None] | None = None,
) -> list[Path]:
    """Render `result` in every named format (in up to `jobs` processes), then write all files atomically into `out`.

    A format that cannot express a variant refuses (nothing is written), unless `left_out` is given: then each format
    writes what it can express and `left_out` receives a line per question it left out."""
    info = BankInfo.of(result.bank)
    return export_files(list(names), info, result.variants, result.seed, Path(out), jobs=jobs, left_out=left_out)
