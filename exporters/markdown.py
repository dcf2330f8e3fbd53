"""Markdown: a printable student sheet and a separate answer key (CommonMark).

Variants of one question are grouped under its heading (numbered 1.1, 1.2, …), and its hints are listed once.

Spec: https://spec.commonmark.org/0.31.2/ — bank text is already Markdown and goes in as it is; titles are
escaped, code goes in fenced `python` blocks whose fence is longer than any backtick run in the code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt

from qbank.display import code_block, code_span
from qbank.exporting import Exporter, Files, templates
from qbank.variant import BankInfo, Variant

_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")


def escape(text: str) -> str:
    """Plain text that Markdown shows as written (backslash before every ASCII punctuation it could read)."""
    text = _SPECIAL.sub(r"\\\1", " ".join(text.split()))
    text = re.sub(r"^([-+=])", r"\\\1", text)  # would start a list or an underline
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", text)  # would start a numbered list


_BLOCKS = MarkdownIt("commonmark")
#: A CommonMark autolink, which is a link and not HTML: <https://…> or <name@host>.
_AUTOLINK = re.compile(r"<(?:[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*|[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9.-]+)>")


# Variants share most of their texts: each distinct text is parsed once.
@lru_cache(maxsize=65536)
def neutral(markdown: str) -> str:
    """Bank Markdown whose raw HTML shows as text in any viewer, as it does in qbank's other formats.

    A `<` that could open an HTML tag or comment gets a backslash, except in code (blocks and spans),
    where it is already text, and in autolinks.
    """
    if "<" not in markdown:
        return markdown
    code_lines: set[int] = set()
    for token in _BLOCKS.parse(markdown):
        if token.type in ("fence", "code_block") and token.map:
            code_lines.update(range(*token.map))
    lines = markdown.split("\n")
    return "\n".join(line if number in code_lines else _neutral_line(line) for number, line in enumerate(lines))


def _neutral_line(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        char = line[i]
        if char == "`":
            run = len(line[i:]) - len(line[i:].lstrip("`"))
            close = line.find("`" * run, i + run)
            while close != -1 and line[close + run : close + run + 1] == "`":
                close = line.find("`" * run, close + run + 1)
            end = close + run if close != -1 else i + run
            out.append(line[i:end])
            i = end
        elif char == "\\":
            out.append(line[i : i + 2])
            i += 2
        elif char == "<" and _opens_tag(line[i + 1 : i + 2]):
            link = _AUTOLINK.match(line, i)
            out.append(link.group() if link else "\\<")
            i = link.end() if link else i + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _opens_tag(following: str) -> bool:
    """Whether a `<` followed by this character may start HTML (a tag, closing tag, comment or declaration)."""
    return following != "" and (following.isalpha() or following in "/!?")


def item(text: str) -> str:
    """Continuation lines of a list item, indented so blocks (code) stay inside the item."""
    return text.replace("\n", "\n   ")


_env = templates(
    autoescape=False,
    md_escape=escape,
    md=neutral,
    item=item,
    code=code_span,
    fenced=lambda code: code_block(code, "python"),
)


def by_question(variants: Sequence[Variant]) -> list[list[Variant]]:
    """The variants grouped by question, in the order the questions first appear."""
    groups: dict[tuple[str, str], list[Variant]] = {}
    for variant in variants:
        groups.setdefault((variant.bank_id, variant.question_id), []).append(variant)
    return list(groups.values())


def page(template: str, context: dict[str, Any]) -> str:
    """One of the Markdown templates rendered (the exam sheets use them too)."""
    return _env.get_template(template).render(context)


class MarkdownExporter(Exporter):
    name = "markdown"
    description = "a printable student sheet (.md) and a separate answer key (.key.md)"
    suffix = ".md"

    def render(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        context = {"bank": bank, "variants": variants, "questions": by_question(variants), "seed": seed}
        return {f"{bank.id}.md": page("sheet.md.j2", context), f"{bank.id}.key.md": page("key.md.j2", context)}
