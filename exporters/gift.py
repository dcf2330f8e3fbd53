"""GIFT: Moodle's plain-text question format.

Spec: https://docs.moodle.org/en/GIFT_format — questions are separated by blank lines, so every newline
inside a text is written `\\n`; the characters ~ = # { } : and the backslash are escaped with a backslash.
Text goes in as HTML (`[html]`), the same HTML the other exporters use. GIFT has no hints or tries: the
hints are added to the general feedback (after `####`), so nothing is lost. A comment line above each question
carries its idnumber and tags (`// [id:…] [tag:…]`), which Moodle's GIFT import reads since 4.0.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import partial

from qbank.exporting import Exporter, Files, clock
from qbank.render import inline_html, markdown_html
from qbank.variant import BankInfo, BlankKey, Variant

from .moodle import FRACTIONS, category_path, idnumber, question_tags

_SPECIAL = {"\\": "\\\\", "~": "\\~", "=": "\\=", "#": "\\#", "{": "\\{", "}": "\\}", ":": "\\:", "\n": "\\n", "\r": ""}


def escape(text: str) -> str:
    """Text that GIFT reads back exactly."""
    return "".join(_SPECIAL.get(char, char) for char in text)


def _question_html(variant: Variant) -> str:
    """Stem and code as HTML."""
    header = f"<p><small>{variant.category} · {variant.difficulty} · time limit {clock(variant.time_limit)}</small></p>"
    shown = variant.gapped_code if variant.gapped_code is not None else variant.shown_code
    # Long lines wrap at the screen's edge; unhighlighted, so the code stays readable in the GIFT file itself.
    wrap = "white-space:pre-wrap;overflow-wrap:anywhere"
    code = f'<pre style="{wrap}"><code>{html.escape(shown, quote=False)}</code></pre>' if shown else ""
    return header + markdown_html(variant.stem) + code


def _general_feedback(variant: Variant) -> str:
    hints = "".join(markdown_html(f"**Hint:** {hint}") for hint in variant.hints)
    return markdown_html(variant.explanation) + hints


def _id_and_tags(bank: BankInfo, variant: Variant) -> str:
    """The comment Moodle's GIFT import reads an idnumber and tags from: `]` escaped; no control characters, and
    no `<` or `>` in a tag (Moodle's pattern stops at them)."""

    def clean(text: str, extra: str = "") -> str:
        text = "".join(c for c in " ".join(text.split()) if c.isprintable() and c not in extra)
        return text.replace("]", "\\]")

    tags = " ".join(f"[tag:{clean(t, '<>')}]" for t in question_tags(variant) if clean(t, "<>"))
    return f"// [id:{clean(idnumber(bank, variant))}] {tags}".rstrip()


def _missing_word(feedback: str, number: int, blank: BlankKey) -> str:
    """A gap accepting every value that works (`*` is a wildcard in Moodle's short answers: written `\\*`)."""
    accepted = " ".join("=" + escape(answer).replace("*", "\\*") for answer in blank.answers)
    return f"{{{accepted} {feedback}}}"


def _answers(variant: Variant) -> list[str]:
    if variant.type == "matching":  # `=item -> match`; the item as HTML (the question is [html])
        return [f"={escape(markdown_html(pair.item))} -> {escape(pair.match)}" for pair in variant.pairs]
    if variant.type == "multiple_choice":
        correct = len(variant.correct_choices)
        wrong = len(variant.choices) - correct
        lines = []
        for choice in variant.choices:
            if variant.multiple_answers:
                weight = FRACTIONS[correct] if choice.correct else "-" + FRACTIONS[wrong]
                mark = f"~%{weight}%"
            else:
                mark = "=" if choice.correct else "~"
            feedback = f"#{escape(markdown_html(choice.feedback))}" if choice.feedback else ""
            lines.append(f"{mark}{escape(inline_html(choice.text))}{feedback}")
        return lines
    if variant.type == "true_false":
        truth = next(c.text == "True" for c in variant.choices if c.correct)
        return ["TRUE" if truth else "FALSE"]
    if variant.type == "numeric":
        return [f"#{variant.answers[0]}:{variant.tolerance or 0:g}"]
    # In a Moodle short answer `*` is a wildcard (`=a*b` would accept "a anything b"); `\*` is a literal star.
    return ["=" + escape(answer).replace("*", "\\*") for answer in variant.answers]


class GiftExporter(Exporter):
    name = "gift"
    description = "Moodle GIFT text: one category per question (Question bank → Import → GIFT)"
    suffix = ".gift.txt"

    def refusal(self, variant: Variant) -> str | None:
        if variant.type == "ordering":
            return "an ordering question (GIFT has none; use Moodle XML)"
        if len(variant.blanks) > 1:  # GIFT's "missing word" holds one gap per question
            return (
                f"{len(variant.blanks)} blanks (GIFT has one gap per question; use Moodle XML, whose Cloze questions "
                "take any number)"
            )
        return None

    def render(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        lines = [f"// {escape(bank.title)}: made by qbank, seed {seed}", ""]
        category = None
        for variant in variants:
            if variant.question_id != category:
                category = variant.question_id
                path = category_path(bank.title, f"{variant.title} ({variant.question_id})")
                lines += [f"$CATEGORY: {path}", ""]
            name = escape(f"{variant.title} · {variant.variant_id[:8]}")
            lines += [_id_and_tags(bank, variant)]
            feedback = f"####{escape(_general_feedback(variant))}"
            text = escape(_question_html(variant))
            if variant.blanks:  # the "missing word": the gap, with every value that works, stands in the code
                lines += [f"::{name}::[html]{variant.with_gaps(text, partial(_missing_word, feedback))}", ""]
                continue
            body = "\n".join(f"\t{answer}" for answer in _answers(variant))
            lines += [f"::{name}::[html]{text}{{\n{body}\n\t{feedback}\n}}", ""]
        return {f"{bank.id}{self.suffix}": "\n".join(lines)}
