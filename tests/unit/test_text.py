"""Text preparation: field choice, limits with a flag, offsets preserved."""

from __future__ import annotations

from streams.enrich.text import cut, language_text, prepare


def test_cut_at_word_boundary_and_flags() -> None:
    assert cut("short", 10) == ("short", False)
    text, was_cut = cut("alpha beta gamma delta", 13)
    assert (text, was_cut) == ("alpha beta", True)


def test_summary_contained_in_content_is_skipped() -> None:
    prep = prepare("T", "Lead paragraph.", "Lead   paragraph. More text.", 1000)
    assert list(prep.fields) == ["title", "content"]
    prep2 = prepare("T", "A different teaser.", "Body text.", 1000)
    assert list(prep2.fields) == ["title", "summary", "content"]


def test_limit_keeps_prefixes_so_offsets_stay_valid() -> None:
    content = "كلمة " * 500
    prep = prepare("عنوان", "", content, 600)
    assert prep.truncated
    assert content.startswith(prep.fields["content"])
    assert sum(len(v) for v in prep.fields.values()) <= 600


def test_language_input_is_normalised_without_urls() -> None:
    text = language_text({"title": "ﻣﺮﺣﺒﺎ see https://x.example/a?b=1", "content": "body"})
    assert "https" not in text and "مرحبا" in text  # presentation forms folded by NFKC


def test_empty_fields_are_dropped() -> None:
    prep = prepare("", "  ", None, 100)
    assert prep.fields == {} and prep.language_input == "" and not prep.truncated
