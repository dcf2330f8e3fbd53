"""JSON: the variants as they are, one document per bank.

The contract: `{"bank": {...}, "seed": S, "variants": [...]}`, each variant as `qbank.variant.Variant`
serializes it (see README, "JSON export"). `load` reads a document back into the same models.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ValidationError

from qbank.errors import QbankError
from qbank.exporting import Exporter, Files
from qbank.variant import BankInfo, Variant


class Document(BaseModel):
    bank: BankInfo
    seed: int
    variants: list[Variant]


class JsonExporter(Exporter):
    name = "json"
    description = "the variants as data (the intermediate representation), for scripts and other tools"
    suffix = ".json"

    def render(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        document = Document.model_construct(bank=bank, seed=seed, variants=list(variants))
        return {f"{bank.id}{self.suffix}": document.model_dump_json(indent=2) + "\n"}


def load(path: str | Path) -> Document:
    """Read a JSON export back."""
    try:
        return Document.model_validate_json(Path(path).read_bytes())
    except (OSError, ValidationError) as exc:
        raise QbankError(f"{path}: not a readable qbank JSON export ({exc})") from None
