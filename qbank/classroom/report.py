"""The report a teacher reads after a quiz: `report.md`, a self-contained `report.html` (the same text, its charts
inline, readable on a phone and in dark mode) and a CSV of every table.

What a teacher acts on comes first: the misconceptions the class holds (the named mistakes chosen most), the
questions that separate strong and weak students poorly, and the answers to regrade; then the quiz as a whole and
each question with its variants, options and parameters.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt

from qbank import answers, display
from qbank.classroom.analysis import WEAK_DISCRIMINATION, Analysis, ItemStats, Key, analyse
from qbank.classroom.results import Response, Results
from qbank.exporting import Files
from qbank.grading import NO_ANSWER, NOT_AN_OPTION, RIGHT, SEVERAL, WRONG_TYPED
from qbank.variant import Variant

#: The most misconceptions and regrades listed in the report's first sections (every one is in the CSVs).
MOST_LISTED = 12


@dataclass(frozen=True)
class Regrade:
    response: Response
    #: Why qbank's mark differs from the LMS's, as a teacher reads it.
    why: str


def regrades(results: Results) -> list[Regrade]:
    """Every answer whose LMS mark and qbank's (by meaning) differ."""
    found = []
    for response in results.responses:
        lms = response.lms_mark
        if lms is None or math.isclose(lms, response.score, abs_tol=1e-9):
            continue
        wrongly = "marked right by the LMS, but it does not mean the key"
        found.append(Regrade(response, _why_right(response) if response.score > lms else wrongly))
    return found


def _why_right(response: Response) -> str:
    answer, variant = response.record.answer, response.variant
    if variant.type == "numeric" and re.fullmatch(r"\s*[+-]?\d+,\d+\s*", answer):
        return "a decimal comma: the LMS read it as another number"
    if variant.answers and answer.casefold() not in {a.casefold() for a in variant.answers}:
        return "means the key, spelled or spaced another way"
    return "means the key"


def _pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.1f}\u202f%"  # a narrow no-break space


def _md(text: str) -> str:
    """Text safe in a Markdown table cell."""
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", " ".join(str(text).split()))


def _code(text: str) -> str:
    return display.code_span(" ".join(text.split())).replace("|", "\\|") if text else "(none)"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[int] = ()) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _stats_row(label: str, stats: ItemStats | None) -> list[str]:
    if stats is None:
        return [label, "–", "–", "–", "–", "–"]
    return [
        label,
        str(stats.attempts),
        _pct(stats.facility),
        _pct(stats.sd),
        _pct(stats.discrimination),
        _pct(stats.efficiency),
    ]


def _slug(key: Key) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{key[0]}-{key[1]}")


# --- charts ----------------------------------------------------------------------------------------------------

_KIND_COLOURS = {"right": "#1a7f37", "mistake": "#bc4c00", "blank": "#8c959f", "other": "#6e7781"}


def _kind(label: str) -> str:
    if label == RIGHT:
        return "right"
    if label.startswith("mistake: "):
        return "mistake"
    if label in (NO_ANSWER, NOT_AN_OPTION, SEVERAL):
        return "blank"
    return "other"


def bar_chart(title: str, counts: Sequence[tuple[str, int]], *, inline: str | None = None) -> str:
    """Horizontal bars: how many students chose each origin (right green, mistakes orange). `inline` (an id unique in
    the page): for the HTML report, coloured by its style sheet so that dark mode applies; else a standalone SVG file
    with its own colours."""
    label_width, bar_width, row, top = 300, 220, 26, 30
    most = max((count for _, count in counts), default=1) or 1
    width, height = label_width + bar_width + 50, top + row * len(counts) + 8
    ident = f"chart-{inline}"
    text_fill = 'fill="currentColor"' if inline else 'fill="#24292f"'
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width:{width}px" font-family="sans-serif" font-size="13" role="img" aria-labelledby="{ident}">'
        if inline
        else f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} '
        f'{height}" font-family="sans-serif" font-size="13">',
        f'<title id="{ident}">{html.escape(title)}: '
        + html.escape(", ".join(f"{label} {count}" for label, count in counts))
        + "</title>",
    ]
    if not inline:
        parts.append(f'<rect width="{width}" height="{height}" fill="#ffffff"/>')
    parts.append(f'<text x="4" y="18" font-weight="bold" {text_fill}>{html.escape(_cut(title, 70))}</text>')
    for index, (label, count) in enumerate(counts):
        y = top + index * row
        kind = _kind(label)
        colour = f'class="bar-{kind}"' if inline else f'fill="{_KIND_COLOURS[kind]}"'
        length = max(1, round(bar_width * count / most))
        parts.append(f'<text x="4" y="{y + 16}" {text_fill}>{html.escape(_cut(label, 42))}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 4}" width="{length}" height="{row - 8}" {colour}/>')
        parts.append(f'<text x="{label_width + length + 6}" y="{y + 16}" {text_fill}>{count}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    """The right answer first, then what was chosen most; no answer last."""
    first = {RIGHT: 0, NO_ANSWER: 2}
    return sorted(counts.items(), key=lambda item: (first.get(item[0], 1), -item[1], item[0]))


# --- the report ------------------------------------------------------------------------------------------------


def report_files(results: Results, title: str, *, extra_csvs: bool = True) -> Files:
    """Every file of the report: `report.md`, `report.html`, a chart per question, and the CSVs."""
    analysis = analyse(results)
    regraded = regrades(results)
    by_question: dict[Key, list[Response]] = {}
    for response in results.responses:
        by_question.setdefault((response.variant.bank_id, response.variant.question_id), []).append(response)
    titles = {key: group[0].variant.title for key, group in by_question.items()}
    lms_known = analysis.quiz_lms is not None
    md: list[str] = [f"# {_md(title)}: results\n\n"]
    students = len({(a.student, a.attempt) for a in results.attempts}) or len(
        {(r.record.student, r.record.attempt) for r in results.responses}
    )
    md.append(
        f"{students} attempts, {len(results.responses)} answers traced to their variant"
        + (f", {len(results.problems)} that could not be (listed at the end)" if results.problems else "")
        + f"; {len(regraded)} to regrade. Marks: qbank's, by meaning"
        + ("; beside them, the LMS's." if lms_known else ".")
        + "\n"
    )
    charts: dict[str, str] = {}
    inline: dict[str, str] = {}

    # Misconceptions.
    md.append("\n## Misconceptions the class holds\n\n")
    chosen = [row for row in analysis.mistakes if row.chosen]
    if chosen:
        md.append(
            "Each wrong option of a computed question is the outcome of a named mistake. How often the option of "
            "each mistake was chosen when it was offered (95 % interval):\n\n"
        )
        md.append(
            _table(
                ["mistake", "question", "offered", "chosen", "share", "95 % interval"],
                (
                    [
                        _md(row.name),
                        _md(", ".join(titles.get(key, key[1]) for key in row.keys)),
                        str(row.offered),
                        str(row.chosen),
                        _pct(100 * row.chosen / row.offered),
                        f"{100 * row.low:.0f}–{100 * row.high:.0f}\u202f%",
                    ]
                    for row in chosen[:MOST_LISTED]
                ),
                right=(2, 3, 4),
            )
        )
        shared = [row for row in analysis.bank_mistakes if row.chosen]
        if shared:
            md.append("\nThe same mistake across the questions that name it:\n\n")
            md.append(
                _table(
                    ["mistake", "questions", "offered", "chosen", "share"],
                    (
                        [
                            _md(row.name),
                            str(len(row.keys)),
                            str(row.offered),
                            str(row.chosen),
                            _pct(100 * row.chosen / row.offered),
                        ]
                        for row in shared
                    ),
                    right=(1, 2, 3, 4),
                )
            )
    else:
        md.append("No option of a named mistake was chosen.\n")

    # Weak questions.
    md.append("\n## Questions that separate students poorly\n\n")
    weak = [
        row
        for row in analysis.questions
        if row.stats.discrimination is not None and row.stats.discrimination < WEAK_DISCRIMINATION
    ]
    if weak:
        md.append(
            f"A discrimination index below {WEAK_DISCRIMINATION:.0f} % means the question's marks hardly follow the "
            "rest of the quiz's (below 0: the weaker students did better on it). Check its key, its wording, and "
            "whether its variants are equally hard (below, per question).\n\n"
        )
        md.append(
            _table(
                ["question", "attempts", "facility", "discrimination", "efficiency"],
                (
                    [
                        _md(row.title),
                        str(row.stats.attempts),
                        _pct(row.stats.facility),
                        _pct(row.stats.discrimination),
                        _pct(row.stats.efficiency),
                    ]
                    for row in weak
                ),
                right=(1, 2, 3, 4),
            )
        )
    else:
        md.append(
            f"None: every question's discrimination index is at least {WEAK_DISCRIMINATION:.0f} % (where it can be "
            "computed).\n"
        )

    # Regrading.
    md.append("\n## What to regrade\n\n")
    if regraded:
        md.append(
            "Answers the LMS marked one way and qbank, comparing by meaning, the other (every one in `regrade.csv`; "
            "`grades.csv` has each attempt's grade both ways):\n\n"
        )
        md.append(
            _table(
                ["student", "question", "variant", "answer", "LMS", "qbank", "why"],
                (
                    [
                        _md(g.response.record.name or g.response.record.student),
                        _md(g.response.variant.title),
                        g.response.variant.variant_id[:8],
                        _code(g.response.record.answer),
                        f"{g.response.lms_mark:g}",
                        f"{g.response.score:g}",
                        _md(g.why),
                    ]
                    for g in regraded[: MOST_LISTED * 3]
                ),
                right=(4, 5),
            )
        )
    elif lms_known:
        md.append("Nothing: the LMS and qbank agree on every mark.\n")
    else:
        md.append("The source gives no marks to compare with.\n")

    # The quiz.
    md.append("\n## The quiz\n\n")
    quiz_rows = [
        ("attempts", lambda q: str(q.attempts)),
        ("mean", lambda q: _pct(q.mean)),
        ("median", lambda q: _pct(q.median)),
        ("standard deviation", lambda q: _pct(q.sd)),
        ("coefficient of internal consistency (α)", lambda q: _pct(q.cic)),
        ("error ratio", lambda q: _pct(q.error_ratio)),
        ("standard error", lambda q: _pct(q.standard_error)),
    ]
    header = ["measure", "qbank's marks", *(["LMS marks"] if lms_known else [])]
    md.append(
        _table(
            header,
            (
                [label, get(analysis.quiz), *([get(analysis.quiz_lms)] if analysis.quiz_lms else [])]
                for label, get in quiz_rows
            ),
            right=(1, 2),
        )
    )
    md.append(
        "\nFacility, standard deviation, discrimination index and discriminative efficiency as Moodle defines them; "
        "a variant's discrimination against the attempt's whole total, as Moodle computes it for a random question's "
        "variants; an option's point-biserial as Canvas defines it.\n"
    )

    if results.problems or results.notes:
        md.append("\n## Problems and notes\n\n")
        md += [f"- {_md(line)}\n" for line in results.problems]
        md += [f"- {_md(line)}\n" for line in results.notes]
        md += [f"- marks: {_md(line)}\n" for line in results.marks_from]

    # Per question.
    for row in analysis.questions:
        key = row.key
        group = by_question[key]
        md.append(f"\n## {_md(row.title)}\n\n`{key[0]}/{key[1]}` · {_md(row.category)}\n\n")
        md.append(
            _table(
                ["marks", "attempts", "facility", "SD", "discrimination", "efficiency"],
                [_stats_row("qbank", row.stats), *([_stats_row("LMS", row.lms)] if lms_known else [])],
                right=(1, 2, 3, 4, 5),
            )
        )
        counts = ranked(Counter(label for response in group for label in response.chosen))
        md.append(
            "\n" + _table(["chosen", "students"], ([_md(label), str(count)] for label, count in counts), right=(1,))
        )
        wrong = _common_wrong(group)
        if wrong:
            md.append("\nMost common wrong answers: " + ", ".join(f"{_code(t)} ×{n}" for t, n in wrong) + ".\n")
        name = f"chart-{_slug(key)}.svg"
        charts[name] = bar_chart(row.title, counts)
        inline[name] = bar_chart(row.title, counts, inline=_slug(key))
        md.append(f"\n![Chosen options: {_md(row.title)}]({name})\n")
        variant_rows = [v for v in analysis.variants if v.key == key]
        if len(variant_rows) > 1:
            md.append("\nBy variant (discrimination against the attempt's total):\n\n")
            md.append(
                _table(
                    ["variant", "parameters", "attempts", "facility", "SD", "discrimination", "efficiency"],
                    ([v.variant_id[:8], _md(_params(v.params)), *_stats_row("", v.stats)[1:]] for v in variant_rows),
                    right=(2, 3, 4, 5, 6),
                )
            )
        options = [o for o in analysis.options if o.key == key]
        if options:
            md.append("\nOptions (point-biserial against the attempt's total):\n\n")
            md.append(
                _table(
                    ["variant", "option", "text", "origin", "chosen", "point-biserial"],
                    (
                        [
                            o.variant_id[:8],
                            o.letter,
                            _code(display.plain_of(o.text)),
                            _md(o.origin),
                            f"{o.chosen} of {o.offered}",
                            "–" if o.point_biserial is None else f"{o.point_biserial:.2f}",
                        ]
                        for o in options
                    ),
                    right=(4, 5),
                )
            )
        parameters = [p for p in analysis.parameters if p.key == key]
        varied = {p.name for p in parameters if sum(q.name == p.name for q in parameters) > 1}
        if varied:
            md.append("\nFacility by parameter value (qbank's marks):\n\n")
            md.append(
                _table(
                    ["parameter", "value", "attempts", "facility"],
                    (
                        [_md(p.name), _code(p.value), str(p.attempts), _pct(p.facility)]
                        for p in parameters
                        if p.name in varied
                    ),
                    right=(2, 3),
                )
            )
    text = "".join(md)
    files: Files = {"report.md": text, "report.html": _html(title, text, inline), **charts}
    files.update(_csvs(results, analysis, regraded))
    return files


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in params.items()) or "–"


def _common_wrong(group: Sequence[Response], most: int = 5) -> list[tuple[str, int]]:
    """Typed wrong answers, those that mean the same counted together (first spelling shown)."""
    found: list[list[str]] = []
    for response in group:
        if response.chosen != (WRONG_TYPED,):
            continue
        text = response.record.answer.strip()
        same = next((g for g in found if answers.same(g[0], text, errors=response.variant.about_errors)), None)
        if same is None:
            found.append([text])
        else:
            same.append(text)
    return [(g[0], len(g)) for g in sorted(found, key=lambda g: -len(g))[:most]]


# --- HTML ------------------------------------------------------------------------------------------------------

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_STYLE = """
:root { color-scheme: light dark; --fg: #1f2328; --bg: #ffffff; --muted: #57606a; --line: #d0d7de; --head: #f6f8fa;
  --right: #1a7f37; --mistake: #bc4c00; --blank: #8c959f; --other: #6e7781; --link: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d; --head: #161b22;
    --right: #3fb950; --mistake: #f0883e; --blank: #6e7681; --other: #9198a1; --link: #4493f8; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 16px/1.5 system-ui, -apple-system, "Segoe UI",
  Roboto, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid var(--line); }
a { color: var(--link); }
.scroll { overflow-x: auto; margin: .5rem 0; }
table { border-collapse: collapse; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; vertical-align: top; }
th { background: var(--head); text-align: left; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; background: var(--head);
  border-radius: 4px; padding: 0 .2em; overflow-wrap: anywhere; }
figure { margin: .5rem 0; }
svg { height: auto; }
.bar-right { fill: var(--right); } .bar-mistake { fill: var(--mistake); } .bar-blank { fill: var(--blank); }
.bar-other { fill: var(--other); }
@media (max-width: 600px) { main { padding: .6rem; } table { font-size: .8rem; } th, td { padding: .2rem .3rem; } }
"""


def _html(title: str, markdown: str, charts: dict[str, str]) -> str:
    body = _MARKDOWN.render(markdown)
    # A wide table scrolls inside its own box (which the keyboard can reach), never the page.
    body = body.replace("<table>", '<div class="scroll" tabindex="0"><table>')
    body = body.replace("</table>", "</table></div>")

    def chart(match: re.Match[str]) -> str:
        svg = charts.get(html.unescape(match.group(1)))
        return f"<figure>{svg}</figure>" if svg else match.group(0)

    body = re.sub(r'<p><img src="([^"]+)" alt="[^"]*" /></p>', chart, body)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}: results</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"{body}</main>\n</body>\n</html>\n"
    )


# --- CSVs ------------------------------------------------------------------------------------------------------


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if cell is None else round(cell, 4) if isinstance(cell, float) else cell for cell in row])
    return out.getvalue()


#: The first columns of a CSV with a row per answer: who, where, which variant, what was answered.
_WHERE_COLUMNS = ("student", "name", "attempt", "position", "bank", "question_id", "variant_id", "answer")


def _csvs(results: Results, analysis: Analysis, regraded: list[Regrade]) -> Files:
    def where(response: Response) -> list[Any]:
        record = response.record
        return [record.student, record.name, record.attempt, record.position]

    def of(variant: Variant) -> list[str]:
        return [variant.bank_id, variant.question_id, variant.variant_id]

    files: Files = {
        "responses.csv": _csv(
            [
                *_WHERE_COLUMNS,
                "read_as",
                "chosen",
                "lms_mark",
                "qbank_score",
                "tries",
                "file",
                "line",
                "column",
            ],
            (
                [
                    *where(r),
                    *of(r.variant),
                    r.record.answer,
                    r.answer,
                    " + ".join(r.chosen),
                    r.lms_mark,
                    r.score,
                    r.record.tries,
                    str(r.record.where.file),
                    r.record.where.line,
                    r.record.where.column,
                ]
                for r in results.responses
            ),
        ),
        "regrade.csv": _csv(
            [
                *_WHERE_COLUMNS,
                "lms_mark",
                "qbank_score",
                "why",
            ],
            (
                [
                    *where(g.response),
                    *of(g.response.variant),
                    g.response.record.answer,
                    g.response.lms_mark,
                    g.response.score,
                    g.why,
                ]
                for g in regraded
            ),
        ),
        "questions.csv": _csv(
            ["bank", "question_id", "title", "marks", "attempts", "facility", "sd", "discrimination", "efficiency"],
            (
                [*row.key, row.title, basis, s.attempts, s.facility, s.sd, s.discrimination, s.efficiency]
                for row in analysis.questions
                for basis, s in (("qbank", row.stats), ("lms", row.lms))
                if s is not None
            ),
        ),
        "variants.csv": _csv(
            [
                "bank",
                "question_id",
                "variant_id",
                "params",
                "marks",
                "attempts",
                "facility",
                "sd",
                "discrimination",
                "efficiency",
            ],
            (
                [
                    *row.key,
                    row.variant_id,
                    _params(row.params),
                    basis,
                    s.attempts,
                    s.facility,
                    s.sd,
                    s.discrimination,
                    s.efficiency,
                ]
                for row in analysis.variants
                for basis, s in (("qbank", row.stats), ("lms", row.lms))
                if s is not None
            ),
        ),
        "options.csv": _csv(
            ["bank", "question_id", "variant_id", "option", "text", "origin", "offered", "chosen", "point_biserial"],
            (
                [
                    *o.key,
                    o.variant_id,
                    o.letter,
                    display.plain_of(o.text),
                    o.origin,
                    o.offered,
                    o.chosen,
                    o.point_biserial,
                ]
                for o in analysis.options
            ),
        ),
        "mistakes.csv": _csv(
            ["scope", "questions", "mistake", "offered", "chosen", "share", "low_95", "high_95"],
            (
                [
                    scope,
                    " ".join(f"{k[0]}/{k[1]}" for k in row.keys),
                    row.name,
                    row.offered,
                    row.chosen,
                    row.chosen / row.offered,
                    row.low,
                    row.high,
                ]
                for scope, rows in (("question", analysis.mistakes), ("bank", analysis.bank_mistakes))
                for row in rows
            ),
        ),
        "parameters.csv": _csv(
            ["bank", "question_id", "parameter", "value", "attempts", "facility"],
            ([*p.key, p.name, p.value, p.attempts, p.facility] for p in analysis.parameters),
        ),
        "quiz.csv": _csv(
            ["marks", "attempts", "mean", "median", "sd", "cic", "error_ratio", "standard_error"],
            (
                [basis, q.attempts, q.mean, q.median, q.sd, q.cic, q.error_ratio, q.standard_error]
                for basis, q in (("qbank", analysis.quiz), ("lms", analysis.quiz_lms))
                if q is not None
            ),
        ),
        "grades.csv": _grades(results),
    }
    if results.problems:
        files["problems.csv"] = _csv(["problem"], ([line] for line in results.problems))
    return files


def _grades(results: Results) -> str:
    """Each attempt: the LMS's grade, and the grade with qbank's marks (both as a share of the attempt's questions
    and, where the LMS shows its scale, on that scale)."""
    scores: dict[tuple[str, int], list[Response]] = {}
    for response in results.responses:
        scores.setdefault((response.record.student, response.record.attempt), []).append(response)
    rows = []
    for attempt in results.attempts:
        group = scores.get((attempt.student, attempt.attempt), [])
        if not group:
            continue
        share = sum(r.score for r in group) / len(group)
        lms = [r.lms_mark for r in group]
        lms_share = sum(m for m in lms if m is not None) / len(group) if None not in lms else None
        scale = attempt.out_of
        rows.append(
            [
                attempt.student,
                attempt.name,
                attempt.attempt,
                attempt.grade,
                scale,
                None if lms_share is None else 100 * lms_share,
                100 * share,
                None if scale is None else round(share * scale, 2),
            ]
        )
    return _csv(
        ["student", "name", "attempt", "lms_grade", "out_of", "lms_percent", "regraded_percent", "regraded_grade"],
        rows,
    )
