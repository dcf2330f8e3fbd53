"""HTML challenge: one self-contained page that plays a bank as a timed challenge.

Per problem: a countdown from its time limit, attempts left, hints on request, feedback (why a chosen option
is wrong) and the explanation; at the end a score, the bank's badge when every answer is right, and a review
of every problem. Code wraps to the screen; colours follow the system's light or dark setting. No network: CSS and JS
are inline. Bank text reaches the page only as HTML rendered from Markdown with raw HTML disabled, and
the data is embedded as JSON with `<`, `>` and `&` escaped, so bank content cannot become markup.
Each problem shows one of its variants, chosen when the page loads (`#seed=N` in the address fixes it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from markupsafe import Markup

from qbank.exporting import Exporter, Files, clock, style_sheet, templates
from qbank.render import code_html, inline_html, markdown_html
from qbank.variant import BankInfo, Variant


def _problem(variant: Variant) -> dict[str, Any]:
    # The page carries qbank's style sheet: code is styled by its classes (light and dark palettes).
    return {
        "id": variant.variant_id,
        "title": variant.title,
        "category": variant.category,
        "difficulty": variant.difficulty,
        "type": variant.type,
        "multiple": variant.multiple_answers,
        "seconds": variant.time_limit,
        "clock": clock(variant.time_limit),
        "attempts": variant.attempts,
        "stem": markdown_html(variant.stem, True),
        "code": _code(variant),
        "choices": [
            {
                "html": inline_html(c.text, True),
                "correct": c.correct,
                "feedback": markdown_html(c.feedback, True) if c.feedback else "",
            }
            for c in variant.choices
        ],
        "answers": variant.answers,
        "blanks": [blank.answers for blank in variant.blanks],
        "blocks": [code_html(block, classes=True) for block in variant.blocks],
        "pairs": [
            {"item": markdown_html(pair.item, True), "match": variant.matches.index(pair.match)}
            for pair in variant.pairs
        ],
        "matches": variant.matches,
        "orders": variant.orders,
        # Typed answers are compared by meaning in the page, as `qbank check` compares them (answers.js).
        "errors": variant.about_errors,
        "tolerance": variant.tolerance or 0.0,
        "hints": [markdown_html(f"**Hint:** {hint}", True) for hint in variant.hints],
        "explanation": markdown_html(variant.explanation, True),
        "key": inline_html(variant.key_text, True),
        "tags": variant.tags,
    }


def _code(variant: Variant) -> str:
    """The code as shown; a fill_in question's gaps are text boxes in it (all as wide: no length is given away)."""
    if variant.gapped_code is not None:
        return variant.with_gaps(
            code_html(variant.gapped_code, classes=True),
            lambda number, _: (
                f'<input class="blank" type="text" data-blank="{number - 1}" aria-label="Gap {number}" '
                'autocomplete="off" autocapitalize="off" spellcheck="false">'
            ),
        )
    return code_html(variant.shown_code, classes=True) if variant.shown_code else ""


def script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>` or `&` can end it or start markup."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


_env = templates(autoescape=True)
#: The answer model in JavaScript, inlined as it is (read as a file, not parsed as a template).
ANSWERS_JS = resources.files("qbank.exporters.templates").joinpath("answers.js").read_text(encoding="utf-8")


class HtmlExporter(Exporter):
    name = "html"
    description = "a self-contained interactive HTML challenge: timer, attempts, hints, score and badge"
    suffix = ".html"

    def render(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        problems: dict[str, list[dict[str, Any]]] = {}
        for variant in variants:
            problems.setdefault(variant.question_id, []).append(_problem(variant))
        data = {"title": bank.title, "badge": bank.badge, "seed": seed, "problems": list(problems.values())}
        page = _env.get_template("challenge.html.j2").render(
            bank=bank,
            count=len(problems),
            data=script_json(data),
            answers_js=Markup(ANSWERS_JS),
            shared_css=Markup(style_sheet()),
        )
        return {f"{bank.id}{self.suffix}": page}
