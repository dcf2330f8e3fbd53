"""Markdown: a printable student sheet and a separate answer key (CommonMark).

Spec: https://spec.commonmark.org/0.31.2/ — bank text is already Markdown and goes in as it is; titles are
escaped, code goes in fenced `python` blocks whose fence is longer than any backtick run in the code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qbank.display import code_block, code_span
from qbank.exporting import Exporter, Files, templates
from qbank.variant import BankInfo, Variant

_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")


def escape(text: str) -> str:
    """Plain text that Markdown shows as written (backslash before every ASCII punctuation it could read)."""
    text = _SPECIAL.sub(r"\\\1", " ".join(text.split()))
    text = re.sub(r"^([-+=])", r"\\\1", text)  # would start a list or an underline
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", text)  # would start a numbered list


def item(text: str) -> str:
    """Continuation lines of a list item, indented so blocks (code) stay inside the item."""
    return text.replace("\n", "\n   ")


_env = templates(
    autoescape=False,
    md_escape=escape,
    item=item,
    code=code_span,
    fenced=lambda code: code_block(code, "python"),
)


class MarkdownExporter(Exporter):
    name = "markdown"
    description = "a printable student sheet (.md) and a separate answer key (.key.md)"
    suffix = ".md"

    def render(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        context = {"bank": bank, "variants": variants, "seed": seed}
        return {
            f"{bank.id}.md": _env.get_template("sheet.md.j2").render(context),
            f"{bank.id}.key.md": _env.get_template("key.md.j2").render(context),
        }
