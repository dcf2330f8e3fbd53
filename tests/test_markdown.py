"""Markdown: a student sheet and a key, parsed back with markdown-it-py (structure, not substrings)."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

import qbank
from qbank.generate import Generation

parser = MarkdownIt("commonmark")


def tokens(path: Path) -> list[Token]:
    return parser.parse(path.read_text(encoding="utf-8"))


def headings(parsed: list[Token], level: str) -> list[str]:
    return [parsed[i + 1].content for i, t in enumerate(parsed) if t.type == "heading_open" and t.tag == level]


def question_ids(variants: list) -> list[str]:  # type: ignore[type-arg]
    return list(dict.fromkeys(v.question_id for v in variants))


def test_sheet_groups_the_variants_of_each_question_under_one_heading(gru_50: Generation, tmp_path: Path) -> None:
    qbank.export(gru_50, ["markdown"], tmp_path)
    parsed = tokens(tmp_path / "gru_mastery.md")
    questions = [t for t in headings(parsed, "h2") if t != "Hints"]
    ids = question_ids(gru_50.variants)
    assert len(questions) == len(ids)
    assert questions[0] == f"1. {gru_50.variants[0].title}"
    # Sub-headings 1.1, 1.2, … for a question with several variants, in the order the variants were made.
    subs = headings(parsed, "h3")
    for number, qid in enumerate(ids, start=1):
        group = [v for v in gru_50.variants if v.question_id == qid]
        mine = [s for s in subs if s.startswith(f"{number}.")]
        expected = [f"{number}.{i} · variant {v.variant_id[:8]}" for i, v in enumerate(group, start=1)]
        assert mine == (expected if len(group) > 1 else [])
    fences = [t for t in parsed if t.type == "fence"]
    coded = [v for v in gru_50.variants if v.code]
    assert [f.content for f in fences if f.info == "python"] == [v.code.rstrip("\n") + "\n" for v in coded]
    items = [parsed[i + 2].content for i, t in enumerate(parsed) if t.type == "list_item_open"]
    lettered = [text for text in items if text[:6] in {f"**{c}.**" for c in "ABCDEFGH"}]
    assert len(lettered) >= sum(len(v.choices) for v in gru_50.variants if v.type == "multiple_choice")
    assert "intermediate · 2:00" in (tmp_path / "gru_mastery.md").read_text()


def test_hints_are_listed_once_per_question(gru_50: Generation, tmp_path: Path) -> None:
    qbank.export(gru_50, ["markdown"], tmp_path)
    hints = (tmp_path / "gru_mastery.md").read_text().split("\n## Hints\n")[1]
    for number, qid in enumerate(question_ids(gru_50.variants), start=1):
        distinct = {h for v in gru_50.variants if v.question_id == qid for h in v.hints}
        assert hints.count(f"- **Question {number}:**") == len(distinct)


def test_key_gives_the_answer_and_explanation_for_each_variant(gru_50: Generation, tmp_path: Path) -> None:
    qbank.export(gru_50, ["markdown"], tmp_path)
    text = (tmp_path / "gru_mastery.key.md").read_text()
    parsed = tokens(tmp_path / "gru_mastery.key.md")
    assert len(headings(parsed, "h2")) == len(question_ids(gru_50.variants))
    sections = re.split(r"\n##+ |\n\*Variant ", text)
    sections = [s for s in sections if "**Answer" in s]
    for section, variant in zip(sections, gru_50.variants, strict=True):
        assert "**Answer" in section
        if variant.type == "multiple_choice":
            letter = "ABCDEFGH"[[c.correct for c in variant.choices].index(True)]
            assert f"**Answer {letter}:**" in section
        assert variant.explanation.strip().splitlines()[0] in section
    assert "seed 7" in text


def test_hostile_titles_are_escaped_and_code_is_kept(hostile: Generation, tmp_path: Path) -> None:
    qbank.export(hostile, ["markdown"], tmp_path)
    parsed = tokens(tmp_path / "hostile.md")
    assert len(headings(parsed, "h1")) == 1
    inline = next(t for i, t in enumerate(parsed) if t.type == "inline" and parsed[i - 1].tag == "h1")
    rendered = "".join(child.content for child in inline.children or [])
    assert rendered == hostile.bank.title
    fences = [t.content for t in parsed if t.type == "fence"]
    for variant in hostile.variants:
        if variant.code:
            assert variant.code.rstrip("\n") + "\n" in fences


def test_bank_html_stays_text_in_any_markdown_viewer(hostile: Generation, tmp_path: Path) -> None:
    qbank.export(hostile, ["markdown"], tmp_path)
    viewer = MarkdownIt("commonmark")  # raw HTML enabled, as in many viewers
    for name in ("hostile.md", "hostile.key.md"):
        parsed = viewer.parse((tmp_path / name).read_text())
        html_tokens = [t for t in parsed if t.type == "html_block"]
        html_tokens += [c for t in parsed if t.type == "inline" for c in t.children or [] if c.type == "html_inline"]
        assert html_tokens == [], name
    shown = viewer.render((tmp_path / "hostile.md").read_text())
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in shown
    assert "<script>" not in shown
    # code keeps its characters: in fences and in code spans nothing is escaped
    printed = next(v for v in hostile.variants if v.question_id == "printed_markup")
    assert printed.code.rstrip("\n") in (tmp_path / "hostile.md").read_text()
    assert "`<int, int> only`" in (tmp_path / "hostile.md").read_text()
