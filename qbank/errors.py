"""Errors that reach the user as one readable paragraph, never as a traceback."""

from __future__ import annotations


class QbankError(Exception):
    """An error caused by the input (a bank, an option, a file); the CLI prints it and exits with 1."""


class BankError(QbankError):
    """A bank that cannot be used, located as precisely as we can: file, line, question, field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        question: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.question = question
        self.field = field
        self.reason = message
        super().__init__(self._paragraph())

    def _paragraph(self) -> str:
        where: list[str] = []
        if self.file:
            where.append(f"{self.file}" + (f", line {self.line}" if self.line else ""))
        if self.question:
            where.append(f"question '{self.question}'")
        if self.field:
            where.append(f"field '{self.field}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason

    def located(self, file: str | None) -> BankError:
        """The same error, attributed to `file` when it did not know its file yet."""
        if self.file or not file:
            return self
        return BankError(self.reason, file=file, line=self.line, question=self.question, field=self.field)
