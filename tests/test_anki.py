"""Anki: every .apkg is imported by the official `anki` package and its cards rendered as Anki does."""

from __future__ import annotations

import html
import itertools
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from anki.collection import Collection, ImportAnkiPackageOptions, ImportAnkiPackageRequest

import qbank
from qbank.generate import Generation


@pytest.fixture
def collection(tmp_path: Path) -> Iterator[Collection]:
    (tmp_path / "profile").mkdir()
    col = Collection(str(tmp_path / "profile" / "collection.anki2"))
    try:
        yield col
    finally:
        col.close()


def build(result: Generation, folder: Path, epoch: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(epoch))
    qbank.export(result, ["anki"], folder)
    return folder / f"{result.bank.id}.apkg"


def import_apkg(col: Collection, path: Path):  # type: ignore[no-untyped-def]
    request = ImportAnkiPackageRequest(package_path=str(path), options=ImportAnkiPackageOptions())
    return col.import_anki_package(request).log


# What Anki puts on a card instead of raising when a template or field is wrong.
TEMPLATE_PROBLEMS = ("template has a problem", "front of this card is blank", "Found '{{", "No field called")


def shown(html_text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


@pytest.mark.parametrize("which", ["gru_50", "hostile"])
def test_every_card_renders_with_stem_code_and_answer(
    which: str,
    request: pytest.FixtureRequest,
    collection: Collection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result: Generation = request.getfixturevalue(which)
    log = import_apkg(collection, build(result, tmp_path, 1_700_000_000, monkeypatch))
    assert len(log.new) == len(result.variants)
    by_guid = {}
    for note_id in collection.find_notes(""):
        note = collection.get_note(note_id)
        by_guid[note.guid] = note
    assert len(by_guid) == len(result.variants)
    for card_id in collection.find_cards(""):
        card = collection.get_card(card_id)
        front, back = card.question(), card.answer()
        source = shown(card.note()["Source"])
        variant = next(v for v in result.variants if v.variant_id in source)
        for problem in TEMPLATE_PROBLEMS:
            assert problem not in front and problem not in back
        assert "{{" not in front and "{{" not in back
        front_text = shown(front)
        assert variant.title in front_text
        if variant.code:
            assert variant.code in front_text  # `<int, int>`, `a<b`, `]]>` intact
        key = variant.correct_choices[0].text if variant.choices else variant.key_text
        assert shown(qbank.render.inline_html(key)) in shown(back)
        assert shown(qbank.render.markdown_html(variant.explanation))[:40] in shown(back)
        if which == "hostile":
            assert "<script>" not in front


def test_one_deck_per_bank_with_its_description_and_category_tags(
    gru_50: Generation, collection: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_apkg(collection, build(gru_50, tmp_path, 1_700_000_000, monkeypatch))
    names = {d.name for d in collection.decks.all_names_and_ids()} - {"Default"}
    assert names == {"GRU Mastery"}
    deck = collection.decks.by_name("GRU Mastery")
    assert deck is not None and gru_50.bank.description[:40] in html.unescape(deck["desc"])
    assert gru_50.bank.badge and gru_50.bank.badge in html.unescape(deck["desc"])
    for category in {v.category for v in gru_50.variants}:
        assert collection.find_notes(f"tag:{'_'.join(category.split())}"), category
    note = collection.get_note(collection.find_notes("")[0])
    assert all(" " not in tag for tag in note.tags)
    assert any(tag.startswith("qbank::") for tag in note.tags)


def test_new_cards_take_turns_between_questions(
    gru_50: Generation, collection: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first study session mixes questions: Anki's own queue, not our idea of it, is what is checked."""
    import_apkg(collection, build(gru_50, tmp_path, 1_700_000_000, monkeypatch))
    deck = collection.decks.by_name("GRU Mastery")
    assert deck is not None
    collection.decks.select(deck["id"])
    config = collection.decks.config_dict_for_deck_id(deck["id"])
    config["new"]["perDay"] = 20
    collection.decks.update_config(config)
    queued = collection.sched.get_queued_cards(fetch_limit=20).cards
    assert len(queued) == 20
    questions = [shown(collection.get_card(entry.card.id).note()["Source"]).split(" · ")[1] for entry in queued]
    assert len(set(questions)) >= 5, questions
    assert all(a != b for a, b in itertools.pairwise(questions)), "the same question twice in a row"


def test_no_note_is_flagged_as_a_duplicate_of_another(
    gru_50: Generation, collection: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anki.notes import NoteFieldsCheckResult

    import_apkg(collection, build(gru_50, tmp_path, 1_700_000_000, monkeypatch))
    checks = [collection.get_note(note_id).fields_check() for note_id in collection.find_notes("")]
    assert len(checks) == len(gru_50.variants)
    assert all(check == NoteFieldsCheckResult.NORMAL for check in checks), set(checks)


def test_reimporting_a_later_export_updates_in_place(
    gru_bank,
    pool,
    collection: Collection,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = qbank.generate(gru_bank, 3, 5, pool=pool)
    first = import_apkg(collection, build(result, tmp_path / "a", 1_700_000_000, monkeypatch))
    assert len(first.new) == len(result.variants)
    again = import_apkg(collection, build(result, tmp_path / "b", 1_700_000_100, monkeypatch))
    assert len(again.new) == 0 and len(again.duplicate) == 0
    assert len(again.updated) == len(result.variants)
    assert len(collection.find_notes("")) == len(result.variants)
    models = [m.name for m in collection.models.all_names_and_ids() if m.name.startswith("qbank")]
    assert models == ["qbank v3: GRU Mastery"]

    edited_bank = gru_bank.model_copy(
        update={
            "questions": [
                q.model_copy(update={"explanation": q.explanation + "\n\nEdited: now with a remark."})
                for q in gru_bank.questions
            ]
        }
    )
    edited = qbank.generate(edited_bank, 3, 5, pool=pool)
    log = import_apkg(collection, build(edited, tmp_path / "c", 1_700_000_200, monkeypatch))
    assert len(log.new) == 0 and len(log.updated) == len(result.variants)
    for note_id in collection.find_notes(""):
        assert "Edited: now with a remark." in collection.get_note(note_id)["Explanation"]


def test_same_epoch_gives_byte_identical_packages(
    gru_50: Generation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(gru_50, tmp_path / "a", 1_700_000_000, monkeypatch).read_bytes()
    second = build(gru_50, tmp_path / "b", 1_700_000_000, monkeypatch).read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a" / "gru_mastery.apkg") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_short_answers_are_type_in_cards_holding_the_first_spelling(
    hostile: Generation, collection: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_apkg(collection, build(hostile, tmp_path, 1_700_000_000, monkeypatch))
    typed = 0
    for card_id in collection.find_cards(""):
        card = collection.get_card(card_id)
        variant = next(v for v in hostile.variants if v.variant_id in shown(card.note()["Source"]))
        # Anki leaves [[type:Field]] for its reviewer to turn into the box (front) and the comparison (back).
        has_box = "[[type:Typed]]" in card.question()
        assert has_box == (variant.type == "short_answer"), variant.question_id
        if has_box:
            typed += 1
            assert html.unescape(card.note()["Typed"]) == variant.answers[0]
            assert card.answer().count("[[type:Typed]]") == 1
    assert typed >= 3
