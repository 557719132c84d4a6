"""The sequence-tagging data layer (rnnkit.data.tagging): CoNLL files, tag schemes and conversions,
seqeval-compatible entity chunking, transition constraints, metrics and the generated corpus.

Every file is written into tmp_path with bytes the test controls. Expected metrics are computed by
hand in the comments, or are seqeval's documented examples.
"""
from __future__ import annotations

import pytest

from helpers import error, write
from rnnkit.data.tagging import (COMPANY_NAMES, COMPANY_SUFFIXES, FIRST_NAMES, NER_TAGS, PLACES, POS_TAGS,
                                 SURNAMES, Tagged, allowed_transition, entity_spans, generate_tagged,
                                 read_conll, scheme_of, tagging_metrics, to_bio, to_bioes)


# ---- Tagged -------------------------------------------------------------------------------------------

def test_tagged_checks_lengths_and_selects():
    with pytest.raises(ValueError, match="2 sentences but 1 tag lists"):
        Tagged([["a"], ["b"]], [["O"]])
    with pytest.raises(ValueError, match=r"sentences\[1\] has 2 tokens but tags\[1\] has 1 tags"):
        Tagged([["a"], ["b", "c"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match=r"sentences\[0\] is empty"):
        Tagged([[]], [[]])
    tagged = Tagged([["a"], ["b", "c"], ["d"]], [["X"], ["Y", "Z"], ["W"]])
    assert len(tagged) == 3 and list(tagged)[1] == (["b", "c"], ["Y", "Z"])
    picked = tagged.select([2, 0])
    assert (picked.sentences, picked.tags) == ([["d"], ["a"]], [["W"], ["X"]])


# ---- read_conll ---------------------------------------------------------------------------------------

CONLL2003 = """\
-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

"""


def test_read_conll_2003_four_columns(tmp_path):
    path = write(tmp_path / "train.txt", CONLL2003)
    tagged = read_conll(path)
    assert tagged.sentences == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"]]
    assert tagged.tags == [["B-ORG", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER"]]
    assert read_conll(path, tag_column=1).tags == [["NNP", "VBZ", "JJ", "NN", "."], ["NNP", "NNP"]]
    assert read_conll(path, tag_column=-2).tags[1] == ["B-NP", "I-NP"]
    # -DOCSTART- is recognised in the first column too, whatever the token column.
    assert read_conll(path, token_column=1, tag_column=2).sentences[1] == ["NNP", "NNP"]


def test_read_conll_two_columns_tabs_blank_runs_no_trailing_blank(tmp_path):
    path = write(tmp_path / "pos.tsv",
                 "The\tDET\nold  \t ADJ\nman NOUN\n\n\n \t \n-DOCSTART- O\nRuns\tVERB\n\n"
                 "-DOCSTART-\tO\n\nHe\tPRON\n.\tPUNCT")          # no newline at the end
    tagged = read_conll(path)
    assert tagged.sentences == [["The", "old", "man"], ["Runs"], ["He", "."]]
    assert tagged.tags == [["DET", "ADJ", "NOUN"], ["VERB"], ["PRON", "PUNCT"]]


def test_read_conll_docstart_ends_a_sentence_and_is_not_counted(tmp_path):
    # A -DOCSTART- line needs no blank line around it, and its column count is not checked.
    path = write(tmp_path / "d.txt", "a X\n-DOCSTART-\nb Y\n")
    assert read_conll(path).sentences == [["a"], ["b"]]


def test_read_conll_bom_crlf_and_other_encoding(tmp_path):
    path = write(tmp_path / "bom.txt", b"\xef\xbb\xbfParis B-LOC\r\nis O\r\n\r\nOK O\r\n")
    tagged = read_conll(path)
    assert tagged.sentences == [["Paris", "is"], ["OK"]] and tagged.tags == [["B-LOC", "O"], ["O"]]
    latin = write(tmp_path / "latin.txt", b"M\xfcnchen B-LOC\n")
    assert read_conll(latin, encoding="latin-1").sentences == [["München"]]
    # Only spaces and tabs separate columns: a no-break space stays inside the token.
    nbsp = write(tmp_path / "nbsp.txt", "New\u00a0York B-LOC\n")
    assert read_conll(nbsp).sentences == [["New\u00a0York"]]


def test_read_conll_column_count_must_match_the_first_line(tmp_path):
    lines = CONLL2003.splitlines()
    lines[8] = "Peter NNP B-PER"                                  # line 9 has 3 columns
    path = write(tmp_path / "bad.txt", "\n".join(lines) + "\n")
    assert error(read_conll, path) == f"{path}, line 9: 3 columns, but the file's first line has 4"
    one = write(tmp_path / "one.txt", "a O\nb O\n\nc\n")
    assert error(read_conll, one) == f"{one}, line 4: 1 column, but the file's first line has 2"


def test_read_conll_column_index_out_of_range(tmp_path):
    path = write(tmp_path / "c.txt", CONLL2003)
    assert error(read_conll, path, token_column=4) == \
        f"{path}, line 3: token_column 4 is out of range for a line of 4 columns"
    assert error(read_conll, path, tag_column=-5) == \
        f"{path}, line 3: tag_column -5 is out of range for a line of 4 columns"
    assert error(read_conll, path, token_column=3, tag_column=-1) == (
        f"{path}, line 3: token_column 3 and tag_column -1 are the same column of 4 columns "
        f"(a line needs a token and a tag)")
    single = write(tmp_path / "single.txt", "\nword\n")
    assert error(read_conll, single) == (
        f"{single}, line 2: token_column 0 and tag_column -1 are the same column of 1 column "
        f"(a line needs a token and a tag)")


def test_read_conll_bad_bytes_name_line_and_column(tmp_path):
    path = write(tmp_path / "bytes.txt", b"a O\n\nb O\ncaf\xe9 O\n")
    assert error(read_conll, path) == \
        f"{path}, line 4, column 4: not valid utf-8 (bytes e9: invalid continuation byte)"


def test_read_conll_without_sentences_and_missing_file(tmp_path):
    message = "no sentences (a CoNLL file has a token and its tag a line, a blank line between sentences)"
    empty = write(tmp_path / "empty.txt", b"")
    assert error(read_conll, empty) == f"{empty}: {message}"
    docs = write(tmp_path / "docs.txt", "-DOCSTART- -X- -X- O\n\n \n-DOCSTART- -X- -X- O\n")
    assert error(read_conll, docs) == f"{docs}: {message}"
    assert error(read_conll, tmp_path / "nope.txt") == f"no such file: {tmp_path / 'nope.txt'}"
    assert error(read_conll, tmp_path) == f"is a directory, not a CoNLL file: {tmp_path}"


# ---- schemes and chunking -------------------------------------------------------------------------------

def test_scheme_of():
    assert scheme_of(["B-PER", "I-PER", "O", "S-LOC"]) == "BIOES"
    assert scheme_of(["O", "E-PER"]) == "BIOES"
    assert scheme_of(["B-PER", "I-PER", "O"]) == "BIO"
    assert scheme_of([["O", "B-LOC"], ["I-PER"]]) == "BIO"              # a corpus: a list of tag lists
    assert scheme_of(["I-PER", "O", "I-LOC"]) == "IO"
    assert scheme_of(["O", "O"]) == "IO"
    assert scheme_of(["NOUN", "VERB", "PUNCT"]) == "none"
    assert scheme_of(["B-PER", "NOUN"]) == "none"                       # one plain tag: no structure
    assert scheme_of(["B-", "O"]) == "none" and scheme_of(["X-PER"]) == "none"
    with pytest.raises(ValueError, match="no tags"):
        scheme_of([])


@pytest.mark.parametrize("tags, spans", [
    ([], []),
    (["O", "O"], []),
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["O", "I-PER", "I-PER", "O"], [("PER", 1, 3)]),                    # I- after O starts an entity
    (["I-PER"], [("PER", 0, 1)]),
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),      # a type change inside
    (["B-PER", "B-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 3)]),
    (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]),   # IOB1
    (["O", "B-LOC", "I-LOC"], [("LOC", 1, 3)]),                         # open at the end
    (["B-PER", "I-PER", "E-PER", "S-LOC", "S-LOC"], [("PER", 0, 3), ("LOC", 3, 4), ("LOC", 4, 5)]),
    (["B-PER", "E-PER", "E-PER"], [("PER", 0, 2), ("PER", 2, 3)]),      # E- ends; a second E- starts anew
    (["S-LOC", "I-LOC", "E-LOC"], [("LOC", 0, 1), ("LOC", 1, 3)]),      # I- after S- starts anew
    (["E-ORG", "O", "B-ORG", "O"], [("ORG", 0, 1), ("ORG", 2, 3)]),
    (["B-PER", "I-PER", "E-LOC"], [("PER", 0, 2), ("LOC", 2, 3)]),
    (["B-DATE-TIME", "I-DATE-TIME"], [("DATE-TIME", 0, 2)]),            # a type may contain "-"
])
def test_entity_spans_follow_seqeval(tags, spans):
    assert entity_spans(tags) == spans


def test_entity_spans_rejects_plain_tags():
    expected = r"tag 'NOUN' at position 1 is not an entity tag \(O, or B-, I-, E-, S- followed by a type\)"
    with pytest.raises(ValueError, match=expected):
        entity_spans(["O", "NOUN"])


def test_bio_bioes_conversions():
    bio = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "I-LOC", "B-ORG"]
    bioes = ["B-PER", "E-PER", "O", "S-LOC", "B-LOC", "I-LOC", "E-LOC", "S-ORG"]
    assert to_bioes(bio) == bioes
    assert to_bio(bioes) == bio
    assert to_bio(bio) == bio and to_bioes(bioes) == bioes
    # IOB1: I- starts an entity, B- only between adjacent entities of one type.
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]
    assert to_bio(iob1) == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"]
    assert to_bioes(iob1) == ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG"]
    assert to_bio([]) == [] and to_bioes(["O"]) == ["O"]
    with pytest.raises(ValueError, match="'PROPN' at position 0"):
        to_bio(["PROPN"])


# ---- allowed_transition ----------------------------------------------------------------------------------

def _table(tags: list[str], scheme: str) -> list[str]:
    """One row a previous tag (None first: the start), one column a next tag (None last: the end)."""
    rows = []
    for prev in [None, *tags]:
        cells = ["-" if prev is None and nxt is None else "1" if allowed_transition(prev, nxt, scheme) else "0"
                 for nxt in [*tags, None]]
        rows.append("".join(cells))
    return rows


def test_allowed_transition_bio():
    #                                   next: O  B-PER I-PER B-LOC I-LOC end
    assert _table(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "BIO") == [
        "11010-",   # start
        "110101",   # O
        "111101",   # B-PER
        "111101",   # I-PER
        "110111",   # B-LOC
        "110111",   # I-LOC
    ]


def test_allowed_transition_bioes():
    #                                     next: O  B-PER I-PER E-PER S-PER I-LOC end
    assert _table(["O", "B-PER", "I-PER", "E-PER", "S-PER", "I-LOC"], "BIOES") == [
        "110010-",   # start
        "1100101",   # O
        "0011000",   # B-PER
        "0011000",   # I-PER
        "1100101",   # E-PER
        "1100101",   # S-PER
        "0000010",   # I-LOC
    ]
    assert allowed_transition("B-LOC", "E-LOC", "BIOES") and not allowed_transition("B-LOC", "E-PER", "BIOES")


def test_allowed_transition_other_schemes_and_errors():
    assert allowed_transition("I-PER", "I-LOC", "IO") and allowed_transition(None, "NOUN", "none")
    with pytest.raises(ValueError, match="tag 'E-PER' is not a BIO tag"):
        allowed_transition("E-PER", "O", "BIO")
    with pytest.raises(ValueError, match="tag 'NOUN' is not a BIOES tag"):
        allowed_transition("O", "NOUN", "BIOES")
    with pytest.raises(ValueError, match="scheme must be one of BIOES, BIO, IO, none, got 'IOB'"):
        allowed_transition("O", "O", "IOB")
    with pytest.raises(ValueError, match="cannot both be None"):
        allowed_transition(None, None, "BIO")


# ---- tagging_metrics ---------------------------------------------------------------------------------

def test_metrics_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG", "O", "B-LOC", "B-PER"]]
    m = tagging_metrics(gold, pred)
    # Tokens: 3 of 4 right (not B-LOC), then 3 of 5 (not I-ORG, not the O) -> 6/9.
    assert m["token_accuracy"] == pytest.approx(6 / 9)
    assert m["scheme"] == "BIO"
    # Gold: PER 0-2, LOC 3-4 | ORG 1-3, PER 4-5 (4). Predicted: PER 0-2, ORG 3-4 | ORG 1-2, LOC 3-4,
    # PER 4-5 (5). Right: the two PERs. P = 2/5, R = 2/4, F1 = 2PR/(P+R) = 0.4/0.9.
    assert (m["precision"], m["recall"]) == (pytest.approx(0.4), pytest.approx(0.5))
    assert m["f1"] == pytest.approx(4 / 9)
    assert m["per_type"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2},
    }
    assert list(m["per_type"]) == ["LOC", "ORG", "PER"]


def test_metrics_seqeval_readme_example():
    y_true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    y_pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    m = tagging_metrics(y_true, y_pred)
    # seqeval: f1_score 0.50, accuracy_score 0.80; report MISC 0 0 0 (1), PER 1 1 1 (1), micro avg 0.50.
    assert (m["f1"], m["precision"], m["recall"], m["token_accuracy"]) == (0.5, 0.5, 0.5, 0.8)
    assert m["per_type"]["MISC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}


def test_metrics_seqeval_per_class_example():
    # seqeval's changelog: f1_score(average=None) == [0.5, 1.0] for MISC, PER.
    y_true = [["O", "O", "B-MISC", "I-MISC", "B-MISC", "O", "O"], ["B-PER", "I-PER", "O"]]
    y_pred = [["O", "O", "B-MISC", "I-MISC", "B-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    m = tagging_metrics(y_true, y_pred)
    assert (m["per_type"]["MISC"]["f1"], m["per_type"]["PER"]["f1"]) == (0.5, 1.0)
    assert m["f1"] == pytest.approx(2 / 3)          # 2 right of 3 predicted and 3 gold entities


def test_metrics_plain_tags_and_edge_cases():
    m = tagging_metrics([["DET", "NOUN", "VERB"], ["PRON"]], [["DET", "VERB", "VERB"], ["PRON"]])
    assert m == {"token_accuracy": 0.75, "scheme": "none"}
    m = tagging_metrics([["O", "O"]], [["O", "B-PER"]])               # no gold entity, one predicted
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)
    assert m["per_type"] == {"PER": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}}
    m = tagging_metrics([["B-X", "E-X"]], [["B-X", "E-X"]])
    assert (m["scheme"], m["f1"], m["token_accuracy"]) == ("BIOES", 1.0, 1.0)
    with pytest.raises(ValueError, match="2 gold sentences but 1 predicted"):
        tagging_metrics([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match=r"gold\[1\] has 2 tags but predicted\[1\] has 1"):
        tagging_metrics([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="no tags to score"):
        tagging_metrics([], [])


# ---- generated corpus -------------------------------------------------------------------------------

def test_generate_is_deterministic_and_pinned():
    a, b = generate_tagged(50, seed=3), generate_tagged(50, seed=3)
    assert a == b and generate_tagged(50, seed=4) != a
    first = generate_tagged(1, seed=1)
    assert first.sentences == [["Atlas", "opened", "a", "new", "warehouse", "in", "South", "Africa", "."]]
    assert first.tags == [["B-ORG", "O", "O", "O", "O", "O", "B-LOC", "I-LOC", "O"]]
    assert generate_tagged(1, seed=1, tagset="pos").tags == [
        ["PROPN", "VERB", "DET", "ADJ", "NOUN", "ADP", "PROPN", "PROPN", "PUNCT"]]
    assert len(generate_tagged(0, seed=0)) == 0


def test_generate_tags_are_valid():
    ner, pos = generate_tagged(400, seed=1), generate_tagged(400, seed=1, tagset="pos")
    assert ner.sentences == pos.sentences                 # one sentence stream, two tag sets
    for tokens, tags, pos_tags in zip(ner.sentences, ner.tags, pos.tags):
        assert len(pos_tags) == len(tokens) == len(tags)
        assert set(tags) <= set(NER_TAGS) and set(pos_tags) <= set(POS_TAGS)
        for prev, tag in zip([None, *tags], [*tags, None]):
            assert allowed_transition(prev, tag, "BIO"), (tokens, tags)
        assert all(p == "PROPN" for t, p in zip(tags, pos_tags) if t != "O")
        assert to_bio(to_bioes(tags)) == tags
    assert scheme_of(ner.tags) == "BIO" and scheme_of(pos.tags) == "none"
    used = {t for tags in ner.tags for t in tags}
    assert used == set(NER_TAGS) and {t for tags in pos.tags for t in tags} == set(POS_TAGS)


def test_generate_has_ambiguity_adjacency_and_multi_token_entities():
    ner = generate_tagged(1000, seed=2)
    types_of: dict[str, set[str]] = {}
    adjacent = multi = 0
    for tokens, tags in zip(ner.sentences, ner.tags):
        spans = entity_spans(tags)
        for type_, start, end in spans:
            multi += end - start > 1
            for word in tokens[start:end]:
                types_of.setdefault(word, set()).add(type_)
        adjacent += any(a[2] == b[1] and a[0] != b[0] for a, b in zip(spans, spans[1:]))
    assert {"PER", "LOC"} <= types_of["Jordan"] and {"PER", "LOC"} <= types_of["Washington"]
    assert {"ORG", "LOC"} <= types_of["Phoenix"]
    assert adjacent > 50 and multi > 500


def test_train_and_test_names_are_disjoint():
    for lists in (FIRST_NAMES, SURNAMES):
        assert not set(lists["train"]) & set(lists["test"])
    train_words = {w for name in COMPANY_NAMES["train"] for w in name.split()}
    assert not train_words & {w for name in COMPANY_NAMES["test"] for w in name.split()}
    assert not set(COMPANY_SUFFIXES) & (train_words | set(FIRST_NAMES["train"]) | set(SURNAMES["train"]))

    def name_words(tagged: Tagged) -> set[str]:
        return {w for tokens, tags in tagged for type_, s, e in entity_spans(tags) if type_ in ("PER", "ORG")
                for w in tokens[s:e] if w not in COMPANY_SUFFIXES and not w.endswith(".")}   # not initials

    train, test = generate_tagged(500, seed=5), generate_tagged(500, seed=5, names="test")
    assert not name_words(train) & name_words(test)
    # Test names that are also places (Austin, Lincoln, ...) occur in training only as places.
    places = {w for place in PLACES for w in place.split()}
    assert name_words(test) & places


def test_generate_argument_errors():
    with pytest.raises(ValueError, match="n must be >= 0"):
        generate_tagged(-1, seed=0)
    with pytest.raises(ValueError, match="tagset must be one of ner, pos, got 'chunk'"):
        generate_tagged(1, seed=0, tagset="chunk")
    with pytest.raises(ValueError, match="names must be one of train, test, got 'all'"):
        generate_tagged(1, seed=0, names="all")
