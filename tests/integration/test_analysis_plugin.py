"""The built-in language analyzers, by their official names, on the real Elasticsearch.

On the local integ-test distribution they come from the newsflow-analysis plugin
(deploy/local/es-analysis-plugin, installed by `newsflow infra up`); the official distribution
has them built in. Either way the index template can name `arabic`, `english`, ... and these
tests hold.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import BadRequestError, Elasticsearch

from streams.settings import Settings
from streams.sinks.elastic import make_client
from tests.conftest import IN_CI

pytestmark = pytest.mark.elastic


@pytest.fixture(scope="module")
def client(elastic: Settings) -> Iterator[Elasticsearch]:
    es = make_client(elastic.elastic)
    try:
        es.indices.analyze(analyzer="arabic", text="x")
    except BadRequestError as exc:
        es.close()
        # A local stack started before the plugin existed: say how to fix it (fail under CI).
        message = (
            f"Elasticsearch at {elastic.elastic.url} has no `arabic` analyzer ({exc}); "
            "restart the local stack (`newsflow infra down && newsflow infra up`) so that it "
            "installs the newsflow-analysis plugin"
        )
        if IN_CI:
            pytest.fail("CI=true: " + message, pytrace=False)
        pytest.skip(message)
    yield es
    es.close()


def terms(client: Elasticsearch, analyzer: str, text: str) -> list[str]:
    res = client.indices.analyze(analyzer=analyzer, text=text)
    return [t["token"] for t in res["tokens"]]


def test_arabic_normalises_clitics_and_diacritics_to_one_term(client: Elasticsearch) -> None:
    # plain, with the conjunction wa- and with a shadda: one and the same term
    syria = [terms(client, "arabic", word) for word in ("سوريا", "وسوريا", "سوريّا")]
    assert all(len(t) == 1 for t in syria), syria
    assert len({t[0] for t in syria}) == 1, syria
    # the adjective with and without the article: light stemming meets in one term
    syrian = [terms(client, "arabic", word) for word in ("السورية", "سورية")]
    assert all(len(t) == 1 for t in syrian), syrian
    assert syrian[0] == syrian[1], syrian


def test_arabic_drops_stop_words(client: Elasticsearch) -> None:
    assert terms(client, "arabic", "في سوريا") == terms(client, "arabic", "سوريا")


def test_english_stems_plural_and_singular_alike(client: Elasticsearch) -> None:
    assert terms(client, "english", "elections") == terms(client, "english", "election")
    assert terms(client, "english", "the Elections") == terms(client, "english", "election")


def test_persian_normalises_plurals_and_drops_stop_words(client: Elasticsearch) -> None:
    book = terms(client, "persian", "کتاب")
    assert len(book) == 1, book
    # plural with a zero-width non-joiner, plural with the ezafe suffix: the same term
    assert terms(client, "persian", "کتاب\u200cها") == book
    assert terms(client, "persian", "کتابهای") == book
    assert terms(client, "persian", "و") == []  # "and"


def test_cjk_makes_overlapping_bigrams(client: Elasticsearch) -> None:
    assert terms(client, "cjk", "東京都") == ["東京", "京都"]
    tokens = terms(client, "cjk", "北京 Olympics")
    assert tokens == ["北京", "olympics"]


@pytest.mark.parametrize(
    ("analyzer", "inflected", "base"),
    [
        ("german", "Häuser", "Haus"),
        ("french", "maisons", "maison"),
        ("russian", "дома", "дом"),
        ("turkish", "İstanbul'da", "İstanbul"),  # apostrophe suffix, dotted capital I
        ("spanish", "elecciones", "elección"),
    ],
)
def test_other_language_analyzers_exist_and_stem(
    client: Elasticsearch, analyzer: str, inflected: str, base: str
) -> None:
    stem = terms(client, analyzer, base)
    assert len(stem) == 1, stem
    assert terms(client, analyzer, inflected) == stem


def test_analyzers_work_in_an_index_mapping(client: Elasticsearch, unique: str) -> None:
    """Mappings name the analyzers directly; a custom analyzer can use asciifolding."""
    index = f"test-analysis-{unique}"
    client.indices.create(
        index=index,
        settings={
            "number_of_replicas": 0,
            "analysis": {
                "analyzer": {
                    "folded": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["lowercase", "asciifolding"],
                    }
                }
            },
        },
        mappings={
            "properties": {
                "body": {
                    "type": "text",
                    "analyzer": "arabic",
                    "fields": {"en": {"type": "text", "analyzer": "english"}},
                },
                "name": {"type": "text", "analyzer": "folded"},
            }
        },
    )
    try:
        client.index(
            index=index,
            document={"body": "وسوريا elections", "name": "Élysée Straße"},
            refresh=True,
        )
        for query in (
            {"match": {"body": "سوريّا"}},
            {"match": {"body.en": "election"}},
            {"match": {"name": "elysee"}},
            {"match": {"name": "strasse"}},
        ):
            hits = client.search(index=index, query=query)["hits"]["total"]["value"]
            assert hits == 1, query
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
