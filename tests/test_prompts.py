import pytest

from transformers_msjoe.prompts import (
    ANSWER_TEMPLATE,
    QUERY_TEMPLATE,
    LetteredOption,
    format_options,
    letter_options,
    parse_answer,
    parse_queries,
    split_inline_options,
)


@pytest.mark.parametrize(
    "options",
    [
        ["A. a red car", "B. a blue bus"],
        ["(A) a red car", "(B) a blue bus"],
        ["A) a red car", "B: a blue bus"],
        ["a red car", "a blue bus"],
        {"a": "a red car", "B": "a blue bus"},
    ],
)
def test_letter_options_accepts_the_common_forms(options):
    assert letter_options(options) == [LetteredOption("A", "a red car"), LetteredOption("B", "a blue bus")]


def test_letter_options_keeps_given_letters_and_open_questions():
    assert [o.letter for o in letter_options({"C": "x", "E": "y"})] == ["C", "E"]
    assert letter_options(None) == []
    assert format_options([]) == ""
    assert format_options(letter_options(["x", "y"])) == "Options:\nA. x\nB. y\n"


@pytest.mark.parametrize(
    "options, message",
    [
        ("A. cat B. dog", "single string"),
        (["A. cat", "dog"], "look lettered"),
        ({"A": "cat", "a": "dog"}, "unique"),
        (["A. cat", "A. dog"], "look lettered"),
        (["A. ", "B. dog"], "needs a text"),
        ({"AB": "cat"}, "single letters"),
        ([f"option {i}" for i in range(27)], "At most 26"),
    ],
)
def test_letter_options_rejects_what_cannot_be_lettered(options, message):
    with pytest.raises(ValueError, match=message):
        letter_options(options)


@pytest.mark.parametrize(
    "options, texts",
    [
        (["U.S. flag", "a dog"], ["U.S. flag", "a dog"]),  # starts like a label, but not "A."
        (["C. 5", "D. 6"], ["C. 5", "D. 6"]),  # option texts of a benchmark column, lettered by position
        (["J. K. Rowling", "Tolkien"], ["J. K. Rowling", "Tolkien"]),
    ],
)
def test_texts_that_merely_start_with_a_letter_stay_texts(options, texts):
    lettered = letter_options(options)
    assert [o.letter for o in lettered] == ["A", "B"] and [o.text for o in lettered] == texts


def test_lettered_flag_forces_either_reading():
    assert [o.text for o in letter_options(["A. 5", "B. 6"], lettered=False)] == ["A. 5", "B. 6"]
    assert [o.text for o in letter_options(["A. 5", "B. 6"])] == ["5", "6"]
    with pytest.raises(ValueError, match="no 'X. ' label"):
        letter_options(["A. 5", "six"], lettered=True)


def test_split_inline_options():
    stem, options = split_inline_options("Which box comes first?\n(A) red\n(B) blue\nAnswer with a letter.")
    assert stem == "Which box comes first?\nAnswer with a letter."
    assert [str(o) for o in options] == ["A. red", "B. blue"]
    assert split_inline_options("A plain question.") == ("A plain question.", [])


def test_templates_have_the_documented_fields():
    fields = dict(num_frames=8, question="q?", options_block="", num_queries=4)
    assert "q?" in QUERY_TEMPLATE.format(**fields) and "<query>" in QUERY_TEMPLATE
    assert "<answer>" in ANSWER_TEMPLATE.format(**fields)


def test_parse_queries_tagged_deduplicated_and_capped():
    text = (
        "<think>look for the kitchen</think>\n<query>a red car</query>\n<query> A  red car</query><query>a man</query>"
    )
    parsed = parse_queries(text, 4)
    assert parsed.queries == ["a red car", "a man"]
    assert not parsed.well_formed  # a duplicate was dropped
    capped = parse_queries("".join(f"<query>q{i}</query>" for i in range(6)), 4)
    assert capped.queries == ["q0", "q1", "q2", "q3"] and not capped.well_formed
    clean = parse_queries("<query>a dog</query><query>a cat</query>", 4)
    assert clean.well_formed and clean.queries == ["a dog", "a cat"]


def test_parse_queries_falls_back_to_list_items_and_reports_nothing_parsable():
    assert parse_queries("<think>1. not this</think>\n1. a dog on a sofa\n- a cat", 4).queries == [
        "a dog on a sofa",
        "a cat",
    ]
    assert parse_queries("no idea", 4).queries == []


@pytest.mark.parametrize(
    "text, option",
    [
        ("<answer>B</answer>", "B"),
        ("<think>hmm</think><answer>(C) the bus</answer>", "C"),
        ("B. a blue bus", "B"),
        ("(D)", "D"),
        ("The answer is (C).", "C"),
        ("Answer: A because", "A"),
        ("A dog runs", None),  # a word, not a letter
        ("the answer is a dog", None),
        ("<answer>E</answer>", None),  # not one of the options
        ("The answer is: B", "B"),
        ("Option A is wrong; the answer is B", "B"),
        ("<answer>b</answer>", "B"),
        ("**B**", "B"),
        ("I choose option C.", "C"),
        ("The answer is Apple", None),
    ],
)
def test_parse_answer_letters(text, option):
    assert parse_answer(text, "ABCD").option == option


def test_parse_answer_open_and_format():
    parsed = parse_answer("<answer> forty two </answer>")
    assert parsed.text == "forty two" and parsed.option is None and parsed.well_formed
    assert not parse_answer("<answer>A</answer><answer>B</answer>", "AB").well_formed


def test_already_lettered_options_pass_through():
    given = letter_options(["A. Lincoln", "G. Washington"], lettered=False)
    assert letter_options(given) == given and given[0].text == "A. Lincoln"
