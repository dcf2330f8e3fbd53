"""QTI 1.2 for Canvas: a zip with imsmanifest.xml, the assessment, and Canvas's assessment_meta.xml.

Spec: IMS QTI ASI 1.2 (http://www.imsglobal.org/question/qtiv1p2/imsqti_asi_infov1p2.html) as Canvas
reads it: item types in `question_type` metadata; every question is a group (a `section` with
`selection_number` 1) holding all its variants, so each student draws one variant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from qbank.exporting import Exporter, Files, question_html, templates, xml_refusal, zip_bytes
from qbank.render import inline_html, markdown_html
from qbank.variant import BankInfo, Variant

CANVAS_TYPES = {
    "multiple_choice": "multiple_choice_question",
    "true_false": "true_false_question",
    "short_answer": "short_answer_question",
    "numeric": "numerical_question",
    "fill_in": "fill_in_multiple_blanks_question",
    "matching": "matching_question",
}


def ident(*parts: str) -> str:
    """A QTI identifier (an XML name) that depends only on `parts`."""
    return "qb" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class _Choice:
    ident: str
    html: str
    correct: bool
    feedback: str


@dataclass(frozen=True)
class _Item:
    variant: Variant
    ident: str
    canvas_type: str
    html: str
    choices: list[_Choice]
    general_feedback: str
    low: float
    high: float
    #: A fill_in question's gaps: (Canvas's blank id, [(answer ident, accepted text)]).
    gaps: list[tuple[str, list[tuple[str, str]]]]
    #: The share of the score each gap (or matched item) gives.
    gap_score: str
    #: A matching question's items: (response ident, item HTML, ident of its match); and every match (text, ident).
    pairs: list[tuple[str, str, str]]
    matches: list[tuple[str, str]]


def _item(variant: Variant) -> _Item:
    canvas_type = CANVAS_TYPES[variant.type]
    if variant.multiple_answers:
        canvas_type = "multiple_answers_question"
    # Canvas's fill-in-multiple-blanks: a gap is `[gapN]` in the text, answered by any of its accepted texts.
    html = question_html(variant, lambda number, _: f"[gap{number}]")
    item_ident = ident("item", variant.bank_id, variant.variant_id)
    gaps = [
        (f"gap{number}", [(f"{item_ident}_g{number}_{i}", text) for i, text in enumerate(blank.answers)])
        for number, blank in enumerate(variant.blanks, start=1)
    ]
    # Canvas's matching: a response per item offering every match; the item's own one scores its share. Canvas's
    # importer takes a match's id from the first run of digits in its identifier (associate_interaction.rb), so
    # that run is the match's number, before the item's hash (whose digits would be the same for every match).
    match_ids = {match: f"m{i}_{item_ident}" for i, match in enumerate(variant.matches, start=1)}
    pairs = [
        (f"{item_ident}_p{i}", markdown_html(pair.item), match_ids[pair.match]) for i, pair in enumerate(variant.pairs)
    ]
    choices = [
        _Choice(
            f"{item_ident}_{index}",
            inline_html(choice.text),
            choice.correct,
            markdown_html(choice.feedback) if choice.feedback else "",
        )
        for index, choice in enumerate(variant.choices)
    ]
    hints = "".join(markdown_html(f"**Hint:** {hint}") for hint in variant.hints)
    low = high = 0.0
    if variant.type == "numeric":
        value, tolerance = float(variant.answers[0]), variant.tolerance or 0.0
        low, high = value - tolerance, value + tolerance
    general = markdown_html(variant.explanation) + hints
    parts = len(gaps) or len(pairs)
    share = f"{100 / parts:.2f}" if parts else "0"
    return _Item(
        variant, item_ident, canvas_type, html, choices, general, low, high, gaps, share, pairs, list(match_ids.items())
    )


_env = templates(autoescape=True)


class QtiExporter(Exporter):
    name = "qti"
    description = "QTI 1.2 zip for Canvas: one question group per question (Settings → Import course content)"
    suffix = ".qti.zip"

    def refusal(self, variant: Variant) -> str | None:
        if variant.type == "ordering":  # Canvas's classic quizzes have no ordering question
            return (
                "an ordering question (Canvas's QTI import has no ordering type; use Moodle XML, or leave the question "
                "out with --question)"
            )
        return xml_refusal(variant)

    def render(self, bank: BankInfo, variants: Sequence[Variant], seed: int) -> Files:
        assessment = ident("assessment", bank.id)
        groups: dict[str, list[_Item]] = {}
        for variant in variants:
            groups.setdefault(variant.question_id, []).append(_item(variant))
        context = {
            "bank": bank,
            "seed": seed,
            "assessment": assessment,
            "meta": ident("meta", bank.id),
            "assignment": ident("assignment", bank.id),
            "assignment_group": ident("assignment-group", bank.id),
            "groups": [
                {"ident": ident("group", bank.id, qid), "title": items[0].variant.title, "members": items}
                for qid, items in groups.items()
            ],
        }
        entries = {
            "imsmanifest.xml": _env.get_template("qti_manifest.xml.j2").render(context),
            f"{assessment}/{assessment}.xml": _env.get_template("qti_assessment.xml.j2").render(context),
            f"{assessment}/assessment_meta.xml": _env.get_template("qti_meta.xml.j2").render(context),
        }
        return {f"{bank.id}{self.suffix}": zip_bytes({name: text.encode() for name, text in entries.items()})}
