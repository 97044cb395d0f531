"""Rewards of paper §2.2 with TRL's reward signature, and the stage-1 difficulty-aware advantage."""

import math

import pytest
import torch

from transformers_msjoe.rewards import (
    accuracy_reward,
    check_qa_row,
    difficulty_aware_advantage,
    format_reward,
    informativeness_reward,
    make_informativeness_reward,
    query_peak_ratios,
)


def test_accuracy_reward_matches_the_option_letter():
    completions = [
        "<answer>B</answer>",
        "<answer>A</answer>",
        "The answer is C.",
        "no idea",
        [{"role": "assistant", "content": "<answer>(B)</answer>"}],
    ]
    options = [["cat", "dog"], ["cat", "dog"], ["x", "y", "z"], ["x", "y"], {"A": "cat", "B": "dog"}]
    answers = ["B", "B", "C", "A", "b"]
    rewards = accuracy_reward(completions=completions, answer=answers, options=options, prompts=[""] * 5)
    assert rewards == [1.0, 0.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "options",
    [["Washington", "A. Lincoln"], ["A. Lincoln", "Washington"], ["A. Lincoln", "B. Washington", "C. Grant"]],
)
def test_option_texts_that_look_lettered_are_lettered_by_position(options):
    """Dataset options are plain texts (data/schema.py): "A. Lincoln" is a text, wherever it stands, never a label."""
    lincoln = next(i for i, o in enumerate(options) if "Lincoln" in o)
    letter = "AB"[lincoln]
    assert check_qa_row({"options": options, "answer": letter}, 0) is None
    assert check_qa_row({"options": options, "answer": "D"}, 0) is not None  # D is no option, even with "C. Grant"
    answers = [f"<answer>{letter}</answer>", f"<answer>{'BA'[lincoln]}</answer>"]
    assert accuracy_reward(completions=answers, answer=[letter] * 2, options=[options] * 2) == [1.0, 0.0]
    assert format_reward(completions=[f"<answer>{chr(65 + len(options) - 1)}</answer>"], options=[options]) == [1.0]


def test_accuracy_reward_ignores_letters_that_are_not_options():
    assert accuracy_reward(completions=["<answer>D</answer>"], answer=["D"], options=[["a", "b", "c"]]) == [0.0]


def test_format_reward_checks_both_turns():
    good_query = "<think>look</think>\n<query>a red box</query>\n<query>a door</query>"
    completions = ["<answer>A</answer>", "<answer>A</answer>", "A", "<answer>A</answer>", "<answer>A</answer>"]
    queries = [good_query, "1. a red box", good_query, "", "<query>a</query><query>b</query><query>c</query>"]
    rewards = format_reward(
        completions=completions, options=[["a", "b"]] * 5, query_completion=queries, num_queries=[2] * 5
    )
    # untagged queries, untagged answer, no query at all, more queries than asked for: all fail
    assert rewards == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_format_reward_without_query_turn_checks_the_answer_only():
    assert format_reward(completions=["<answer>B</answer>", "<answer>Z</answer>"], options=[["a", "b"]] * 2) == [
        1.0,
        0.0,
    ]
    with pytest.raises(ValueError, match="num_queries"):
        format_reward(completions=["<answer>A</answer>"], options=[["a", "b"]], query_completion=["<query>x</query>"])


def test_peak_ratio_normalisations():
    s = torch.tensor([[0.10, 0.12, 0.40], [0.20, 0.21, 0.22], [-0.1, 0.0, 0.3]], dtype=torch.float64)
    softmax = query_peak_ratios(s, "softmax", softmax_scale=100.0)
    assert torch.allclose(softmax, torch.exp(100.0 * torch.tensor([0.30, 0.02, 0.4], dtype=torch.float64)))
    raw = query_peak_ratios(s, "raw")
    assert raw[0].item() == pytest.approx(4.0) and raw[1].item() == pytest.approx(1.1) and math.isinf(raw[2].item())
    peak = query_peak_ratios(s, "peak_over_mean", softmax_scale=1.0)
    assert peak[1].item() == pytest.approx(3 * torch.softmax(s[1], 0).max().item())
    with pytest.raises(ValueError, match="normalization"):
        query_peak_ratios(s, "zscore")


def test_informativeness_is_the_fraction_of_peaked_queries():
    peaked, flat = [0.1] * 9 + [0.5], [0.2] * 10  # ratios exp(40) and 1 under softmax(100 s)
    similarity = [torch.tensor([peaked, flat]), torch.tensor([peaked, peaked]), None]
    assert informativeness_reward(completions=["", "", ""], similarity=similarity) == [0.5, 1.0, None]


def test_informativeness_counts_only_the_queries_the_mllm_wrote():
    peaked, flat = [0.1] * 9 + [0.5], [0.2] * 10
    similarity = [
        torch.tensor([flat, peaked]),  # one written query (flat), then the question appended by use_question_as_query
        torch.tensor([peaked]),  # the query turn fell back to the question: nothing was asked
        torch.tensor([peaked, flat, peaked]),  # two written queries, then the question
    ]
    rewards = informativeness_reward(completions=[""] * 3, similarity=similarity, num_written_queries=[1, 0, 2])
    assert rewards == [0.0, 0.0, 0.5]
    strict = make_informativeness_reward(threshold=10.0, normalization="raw")
    assert strict(completions=[""], similarity=[torch.tensor([peaked, flat])]) == [0.0]  # raw ratios 5 and 1
    assert strict.__name__ == "informativeness"
    with pytest.raises(ValueError, match="normalization"):
        make_informativeness_reward(normalization="bogus")


def test_difficulty_aware_advantage():
    correct = torch.tensor([True, False, True, False, True, False])
    pass_rate = torch.tensor([0.5, 0.5, 0.25, 0.75, 0.0, 1.0])
    advantage = difficulty_aware_advantage(correct, pass_rate, cap=10.0)
    assert advantage.tolist() == pytest.approx([2.0, -2.0, 4.0, -4.0, 10.0, -10.0])
    assert difficulty_aware_advantage(torch.tensor([True]), torch.tensor([0.05]), cap=10.0).item() == pytest.approx(
        10.0
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        difficulty_aware_advantage(torch.tensor([True]), torch.tensor([1.5]))


def test_check_qa_row_names_each_problem():
    assert check_qa_row({"options": ["a", "b"], "answer": "B"}, 0) is None
    assert check_qa_row({"options": [], "answer": "A"}, 3) == "row 3 has no options"
    assert "row 3 has no answer" in check_qa_row({"options": ["a", "b"], "answer": ""}, 3)
    assert "not one of its option letters" in check_qa_row({"options": ["a", "b"], "answer": "C"}, 3)
    assert check_qa_row({"options": ["a", "b"], "answer": "A", "c": 0.3}, 3, pass_rate_column="c") is None
    rate = check_qa_row({"options": ["a", "b"], "answer": "A", "c": None}, 3, pass_rate_column="c")
    assert "row 3 has c=None" in rate and "msjoe data label-difficulty" in rate  # the fix is named


@pytest.mark.parametrize(
    "row, message",
    [
        ({"id": "q-7", "video": None}, "row 2 (id 'q-7') has no video (`video` is None)"),
        ({"video": {"path": None, "bytes": None}}, "row 2 has no video"),
        ({"video": ""}, "row 2 has no video"),
        ({"id": "q-7", "video": "v.mp4", "question": None}, "row 2 (id 'q-7') has no question (`question` is None)"),
        ({"video": "v.mp4", "question": " "}, "row 2 has no question (`question` is ' ')"),
    ],
)
def test_check_qa_row_names_a_missing_video_or_question(row, message):
    problem = check_qa_row({**row, "options": ["a", "b"], "answer": "A"}, 2)
    assert problem is not None and problem.startswith(message)
    assert check_qa_row({"video": {"path": "v.mp4"}, "question": "Q?", "options": ["a"], "answer": "A"}, 2) is None
