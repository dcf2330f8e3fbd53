"""Outcomes kept on disk between runs, so that a snippet that did not change never runs again.

A result is stored under the hash of the job (code, expression, inference mode) and of the Python and torch
versions that produced it; only results that ran to an outcome are kept (a time-out may not repeat). Regenerating a
bank after editing one question runs that question's snippets only — and starts no torch worker when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import threading
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from qbank.errors import QbankError
from qbank.runner import RunResult

#: Results written before they are committed together (a killed run loses at most these).
COMMIT_EVERY = 2000


def default_folder() -> Path:
    """Where outcomes are kept: $QBANK_CACHE_DIR, else $XDG_CACHE_HOME/qbank, else ~/.cache/qbank."""
    if os.environ.get("QBANK_CACHE_DIR"):
        return Path(os.environ["QBANK_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qbank"


def runtime() -> str:
    """What an outcome depends on besides the snippet: the Python and torch that ran it."""
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = "none"
    return f"python {sys.version.split()[0]} torch {torch}"


class OutcomeStore:
    """A SQLite file of results by job key; safe to use from the pool's threads."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or default_folder()
        self.path = self.folder / "outcomes.sqlite3"
        self._salt = runtime().encode()
        self._lock = threading.Lock()
        self._pending = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS outcome (key TEXT PRIMARY KEY, result TEXT NOT NULL)")
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise QbankError(f"cannot use the outcome cache in {self.folder}: {exc}; try --no-cache") from None

    def _key(self, job_key: str) -> str:
        return hashlib.sha256(self._salt + b"\0" + job_key.encode()).hexdigest()

    def get(self, job_key: str) -> RunResult | None:
        with self._lock:
            row = self._db.execute("SELECT result FROM outcome WHERE key = ?", (self._key(job_key),)).fetchone()
        return RunResult(**json.loads(row[0])) if row else None

    def put(self, job_key: str, result: RunResult) -> None:
        if result.failure is not None:
            return  # a time-out or a crash may not happen again: such a job runs again next time
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO outcome (key, result) VALUES (?, ?)",
                (self._key(job_key), json.dumps(asdict(result))),
            )
            self._pending += 1
            if self._pending >= COMMIT_EVERY:
                self._db.commit()
                self._pending = 0

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outcome").fetchone()[0])

    def clear(self) -> int:
        """Forget every outcome; how many there were."""
        with self._lock:
            removed = int(self._db.execute("DELETE FROM outcome").rowcount)
            self._db.commit()
            self._db.execute("VACUUM")
        return removed

    def close(self) -> None:
        with self._lock:
            self._db.commit()
            self._db.close()
