"""Frame-selection strategies: each one's defining behaviour on hand-made similarity curves, the shared contract
(K distinct time-ordered indices, T < K, errors), and selection by name through `answer()` and the CLI."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from transformers_msjoe import MSJoEFrameSampler, MSJoESamplerConfig
from transformers_msjoe.modeling_sampler import topk_frames
from transformers_msjoe.selection import (
    AKSSelector,
    BOLTSelector,
    MSJoESamplerSelector,
    QFrameSelector,
    available_selectors,
    build_selector,
    combine_queries,
    parse_selection_options,
)

BASELINES = ("uniform", "clip_topk", "bolt", "qframe", "aks")
QUESTION = "What colour is the square in the middle of the video?"
OPTIONS = ["A. red", "B. blue", "C. yellow", "D. green"]


@pytest.fixture(scope="module")
def small_sampler() -> MSJoEFrameSampler:
    torch.manual_seed(0)
    config = MSJoESamplerConfig(base_channels=8, channel_multipliers=[1, 2], num_groups=4)
    return MSJoEFrameSampler(config).eval()


def _selector(name: str, sampler: MSJoEFrameSampler, **options):
    return build_selector(name, sampler=sampler, **options)


def _plateaus(num_frames: int, regions: dict[tuple[int, int], float], base: float = 0.2) -> torch.Tensor:
    """A CLIP-like cosine curve `(1, T)`: `base` everywhere, raised to a value on each [start, end) region."""
    curve = torch.full((num_frames,), base)
    for (start, end), value in regions.items():
        curve[start:end] = value
    return curve[None]


# ---------------------------------------------------------------- the shared contract
def test_registry_has_every_strategy():
    assert available_selectors() == sorted([*BASELINES, "msjoe"])


@pytest.mark.parametrize("name", [*BASELINES, "msjoe"])
@pytest.mark.parametrize("num_queries", [1, 3])
def test_k_distinct_indices_in_time_order(name, num_queries, small_sampler):
    selector = _selector(name, small_sampler)
    for seed in range(3):
        similarity = 0.2 + 0.05 * torch.randn(num_queries, 157, generator=torch.Generator().manual_seed(seed))
        for k in (1, 7, 32):
            picks = selector.select(similarity, 157, k, generator=torch.Generator().manual_seed(seed)).indices
            assert picks.dtype == torch.long and picks.shape == (k,)
            assert torch.all(picks[1:] > picks[:-1]), f"{name}: not distinct and ascending: {picks.tolist()}"
            assert 0 <= int(picks[0]) and int(picks[-1]) < 157


@pytest.mark.parametrize("name", [*BASELINES, "msjoe"])
def test_fewer_candidates_than_budget_uses_all_with_warning(name, small_sampler, caplog):
    similarity = torch.rand(2, 5, generator=torch.Generator().manual_seed(0))
    with caplog.at_level(logging.WARNING):
        picks = _selector(name, small_sampler).select(similarity, 5, 8, generator=torch.Generator().manual_seed(0))
    assert picks.indices.tolist() == [0, 1, 2, 3, 4]
    assert "Only 5 candidate frames for a budget of 8 key frames" in caplog.text


@pytest.mark.parametrize("name", BASELINES)
def test_weights_are_a_distribution(name):
    similarity = 0.2 + 0.05 * torch.rand(2, 90, generator=torch.Generator().manual_seed(1))
    weights = build_selector(name).select(similarity, 90, 10, generator=torch.Generator().manual_seed(0)).weights
    assert weights.shape == (90,) and bool((weights >= 0).all())
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", ["clip_topk", "bolt", "aks"])
def test_deterministic_strategies_ignore_the_generator(name):
    similarity = 0.2 + 0.05 * torch.rand(1, 300, generator=torch.Generator().manual_seed(2))
    runs = {tuple(build_selector(name).select(similarity, 300, 16, generator=torch.Generator().manual_seed(s)).indices.tolist()) for s in range(4)}  # fmt: skip
    assert len(runs) == 1


def test_unknown_name_and_option_errors_name_the_fix(small_sampler):
    with pytest.raises(ValueError, match=r"Unknown frame selection 'topk'.*'clip_topk'"):
        build_selector("topk")
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['tau'\].*'temperature'"):
        build_selector("qframe", tau=0.5)
    with pytest.raises(ValueError, match="accepts no options"):
        build_selector("uniform", power=2)
    with pytest.raises(ValueError, match="needs the learned sampler"):
        build_selector("msjoe")


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("bolt", {"power": 0.0}, "`power`"),
        ("qframe", {"temperature": -1.0}, "`temperature`"),
        ("qframe", {"logit_scale": float("nan")}, "`logit_scale`"),
        ("aks", {"max_depth": -1}, "`max_depth`"),
        ("aks", {"threshold": "high"}, "`threshold`"),
        ("aks", {"judge_top": "segment"}, "`judge_top`"),
        ("aks", {"max_depth": True}, "`max_depth`"),
        ("clip_topk", {"query_source": "none"}, "`query_source`"),
        ("bolt", {"query_reduction": "sum"}, "`query_reduction`"),
    ],
)
def test_bad_hyper_parameters_are_rejected(name, options, message):
    with pytest.raises(ValueError, match=message):
        build_selector(name, **options)


@pytest.mark.parametrize("name", ["clip_topk", "bolt", "qframe", "aks"])
def test_bad_similarity_input_is_rejected(name):
    selector = build_selector(name)
    with pytest.raises(ValueError, match="needs a similarity matrix"):
        selector.select(None, 10, 4)
    with pytest.raises(ValueError, match=r"num_candidates=10\), got shape \(1, 9\)"):
        selector.select(torch.rand(1, 9), 10, 4)
    with pytest.raises(ValueError, match="NaN or infinite"):
        selector.select(torch.full((1, 10), float("nan")), 10, 4)
    with pytest.raises(ValueError, match="positive integer"):
        selector.select(torch.rand(1, 10), 10, 0)


def test_msjoe_checks_the_similarity_against_the_candidates(small_sampler):
    selector = build_selector("msjoe", sampler=small_sampler)
    with pytest.raises(
        ValueError, match=r"'msjoe' must be \(num_queries >= 1, num_candidates=10\), got shape \(2, 9\)"
    ):
        selector.select(torch.rand(2, 9), 10, 4)
    with pytest.raises(ValueError, match="needs a similarity matrix"):
        selector.select(None, 10, 4)
    with pytest.raises(ValueError, match="NaN or infinite"):
        selector.select(torch.full((1, 10), float("inf")), 10, 4)


@pytest.mark.parametrize(("name", "options"), [("qframe", {}), ("msjoe", {"mode": "sample"})])
def test_a_seed_instead_of_a_generator_is_rejected(name, options, small_sampler):
    with pytest.raises(
        ValueError, match=r"torch.Generator or None, got int; pass e.g. torch.Generator\(\).manual_seed"
    ):
        _selector(name, small_sampler, **options).select(torch.rand(1, 20), 20, 4, generator=0)


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a GPU to put the generator and logits on different devices"
)
def test_one_generator_serves_any_device(small_sampler):
    similarity = torch.rand(2, 50, generator=torch.Generator().manual_seed(0))
    gpu_sampler = MSJoEFrameSampler(small_sampler.config).to("cuda").eval()
    sample = build_selector("msjoe", sampler=gpu_sampler, mode="sample")
    on_cpu = sample.select(similarity, 50, 6, generator=torch.Generator().manual_seed(1))  # CPU generator, GPU logits
    again = sample.select(similarity, 50, 6, generator=torch.Generator().manual_seed(1))
    assert on_cpu.indices.tolist() == again.indices.tolist() and on_cpu.indices.device.type == "cpu"
    cuda_gen = torch.Generator(device="cuda").manual_seed(1)
    picks = build_selector("qframe").select(similarity, 50, 6, generator=cuda_gen).indices  # GPU generator, CPU logits
    assert picks.shape == (6,) and torch.all(picks.diff() > 0)


def test_query_rows_are_combined_by_max_or_mean():
    rows = torch.tensor([[0.1, 0.5, 0.2], [0.3, 0.1, 0.2]])
    assert combine_queries(rows, 3, "max", "x").tolist() == pytest.approx([0.3, 0.5, 0.2])
    assert combine_queries(rows, 3, "mean", "x").tolist() == pytest.approx([0.2, 0.3, 0.2])
    # max: a frame matching either query counts; mean: only frames matching both.
    similarity = torch.full((2, 100), 0.2)
    similarity[0, 10:14] = 0.5  # query 1's event
    similarity[1, 70:74] = 0.5  # query 2's event
    similarity[:, 40:44] = 0.4  # both queries, weaker
    assert build_selector("clip_topk").select(similarity, 100, 8).indices.tolist() == [10, 11, 12, 13, 70, 71, 72, 73]
    mean = build_selector("clip_topk", query_reduction="mean").select(similarity, 100, 4).indices.tolist()
    assert mean == [40, 41, 42, 43]


def test_parse_selection_options():
    parsed = parse_selection_options(["temperature=0.5", "query_source=reasoned", "max_depth=3", "x=true"])
    assert parsed == {"temperature": 0.5, "query_source": "reasoned", "max_depth": 3, "x": True}
    assert parse_selection_options(None) == {}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_selection_options(["temperature"])


# ---------------------------------------------------------------- each strategy's defining behaviour
def test_uniform_is_evenly_spaced_bin_centres():
    picks = build_selector("uniform").select(None, 100, 8).indices
    assert picks.tolist() == [6, 18, 31, 43, 56, 68, 81, 93]
    gaps = picks.diff()
    assert int(gaps.max() - gaps.min()) <= 1
    assert build_selector("uniform").select(None, 64, 8).indices.tolist() == list(range(4, 64, 8))


def test_clip_topk_picks_the_k_peaks():
    background = 0.2 + 0.02 * torch.rand(300, generator=torch.Generator().manual_seed(0))
    peaks = [12, 40, 41, 150, 151, 152, 260, 299]
    background[peaks] = torch.linspace(0.3, 0.4, len(peaks))
    assert build_selector("clip_topk").select(background[None], 300, len(peaks)).indices.tolist() == peaks


def test_bolt_spreads_picks_in_proportion_to_similarity_mass():
    # Normalised mass: region A (40 frames at 1.0) holds 3x region B (40 frames at 1/3); the rest is 0.
    similarity = _plateaus(200, {(20, 60): 0.5, (120, 160): 0.3})
    picks = build_selector("bolt", power=1.0).select(similarity, 200, 16).indices
    in_a = int(((picks >= 20) & (picks < 60)).sum())
    in_b = int(((picks >= 120) & (picks < 160)).sum())
    assert (in_a, in_b) == (12, 4)
    # inside a region of equal mass the picks are evenly spread, like quantiles should be
    assert int(picks[:12].diff().max() - picks[:12].diff().min()) <= 1
    # a higher power moves mass, hence frames, to the more similar region
    sharp = build_selector("bolt", power=4.0).select(similarity, 200, 16).indices
    assert int(((sharp >= 20) & (sharp < 60)).sum()) > in_a


def test_bolt_on_a_flat_curve_is_uniform():
    flat = torch.full((1, 64), 0.25)
    assert (
        build_selector("bolt").select(flat, 64, 8).indices.tolist()
        == build_selector("uniform").select(None, 64, 8).indices.tolist()
    )


def test_bolt_keeps_picks_distinct_around_a_narrow_peak():
    similarity = _plateaus(100, {(50, 51): 0.9})  # all the mass on frame 50
    picks = build_selector("bolt").select(similarity, 100, 5).indices.tolist()
    assert picks == [48, 49, 50, 51, 52]


def test_aks_keeps_coverage_of_every_segment():
    # One long, clearly relevant event on a varying background; top-k would spend the whole budget on it.
    # (Were the background flat and low, the root would be judged "peaked" and AKS would keep the top frames,
    # as in the next test.)
    similarity = 0.35 + 0.05 * torch.sin(torch.arange(256) / 5.0)[None]
    similarity[0, 100:140] = 0.6
    topk = build_selector("clip_topk").select(similarity, 256, 16).indices
    assert bool(((topk >= 100) & (topk < 140)).all())
    picks = build_selector("aks").select(similarity, 256, 16).indices
    segments = torch.div(picks, 16, rounding_mode="floor")
    assert segments.tolist() == list(range(16)), "AKS must keep one pick in each of the 16 leaf segments"
    # within a segment AKS keeps the most relevant frame, not an arbitrary one
    leaf = similarity[0, 96:112]
    assert int(picks[6]) == 96 + int(leaf.argmax())


def test_aks_judge_keeps_the_top_frames_of_a_peaked_segment():
    # Isolated spikes on a flat background: relevance is concentrated, so AKS keeps them all even when two fall
    # in the same leaf segment (a pure split would have to drop one).
    spikes = [3, 4, 90, 128, 129, 200, 230, 250]
    similarity = torch.full((1, 256), 0.2)
    similarity[0, spikes] = 0.5
    assert build_selector("aks").select(similarity, 256, len(spikes)).indices.tolist() == spikes


def test_aks_threshold_extremes():
    similarity = 0.2 + 0.05 * torch.rand(1, 240, generator=torch.Generator().manual_seed(3))
    always_top = build_selector("aks", threshold=0.0 - 1e-9).select(similarity, 240, 12).indices
    assert always_top.tolist() == build_selector("clip_topk").select(similarity, 240, 12).indices.tolist()
    never_top = AKSSelector(threshold=2.0, max_depth=2).select(similarity, 240, 12).indices
    # 4 leaf segments of 60 frames, 3 frames each: the top 3 of each quarter
    for quarter in range(4):
        chunk = similarity[0, quarter * 60 : (quarter + 1) * 60]
        expected = sorted((torch.topk(chunk, 3).indices + quarter * 60).tolist())
        assert never_top[quarter * 3 : quarter * 3 + 3].tolist() == expected


def test_aks_judges_with_the_whole_budget_by_default():
    # Left half: 4 spikes in 32 frames; right half: a flat 0.5. K = 8, so the left half has a budget of 4.
    similarity = torch.zeros(1, 64)
    similarity[0, 2:6] = 1.0
    similarity[0, 32:] = 0.5
    # "budget" (default): s_top = mean of the left half's top 8 = 0.5, s_all = 0.125, margin 0.375 < 0.8 -> split
    # down to one frame per 8-frame leaf, so the spikes share one pick and the rest of the half is covered.
    assert AKSSelector().select(similarity, 64, 8).indices.tolist() == [2, 8, 16, 24, 32, 40, 48, 56]
    # "share": s_top = mean of its top 4 = 1.0, margin 0.875 > 0.8 -> the half keeps its 4 spikes.
    share = AKSSelector(judge_top="share").select(similarity, 64, 8).indices.tolist()
    assert share == [2, 3, 4, 5, 32, 40, 48, 56]


@pytest.mark.parametrize("k", [3, 5, 7, 12])
def test_aks_returns_exactly_k_when_the_budget_is_not_a_power_of_two(k):
    # max_depth 5 allows 32 leaves: a floor of K / 2**depth would give some leaves no frame at all.
    similarity = 0.3 + 0.05 * torch.sin(torch.arange(500) / 7.0)[None]
    picks = AKSSelector().select(similarity, 500, k).indices
    assert picks.shape == (k,) and torch.all(picks.diff() > 0)
    # no pure peak here, so AKS splits: each of the K roughly equal stretches of time keeps a frame
    assert int(picks.diff().max()) < 2 * 500 // k


def test_qframe_honours_the_generator():
    similarity = 0.2 + 0.05 * torch.rand(1, 128, generator=torch.Generator().manual_seed(4))
    selector = build_selector("qframe")
    first = selector.select(similarity, 128, 16, generator=torch.Generator().manual_seed(7))
    again = selector.select(similarity, 128, 16, generator=torch.Generator().manual_seed(7))
    other = selector.select(similarity, 128, 16, generator=torch.Generator().manual_seed(8))
    assert first.indices.tolist() == again.indices.tolist()
    assert first.indices.tolist() != other.indices.tolist()
    assert first.draw_order is not None and sorted(first.draw_order.tolist()) == first.indices.tolist()


def test_qframe_respects_temperature():
    similarity = _plateaus(200, {(80, 100): 0.28}, base=0.2) + 0.01 * torch.rand(
        1, 200, generator=torch.Generator().manual_seed(5)
    )
    expected = torch.softmax(similarity[0].double() * 100.0 / 0.8, dim=0).float()
    assert torch.allclose(QFrameSelector().select(similarity, 200, 8).weights, expected, atol=1e-6)

    def share_in_event(temperature: float) -> float:
        selector = QFrameSelector(temperature=temperature)
        picks = torch.cat([selector.select(similarity, 200, 10, generator=torch.Generator().manual_seed(s)).indices for s in range(20)])  # fmt: skip
        return float(((picks >= 80) & (picks < 100)).float().mean())

    cold, paper, hot = share_in_event(0.05), share_in_event(0.8), share_in_event(50.0)
    assert cold == 1.0 and cold >= paper > hot
    assert hot < 0.4  # near-uniform: the event is 10% of the frames
    # a tiny temperature is top-K whatever the noise
    frozen = QFrameSelector(temperature=1e-4).select(similarity, 200, 10, generator=torch.Generator().manual_seed(9))
    assert frozen.indices.tolist() == build_selector("clip_topk").select(similarity, 200, 10).indices.tolist()


def test_msjoe_selector_topk_vs_sample(small_sampler):
    similarity = 0.2 + 0.05 * torch.rand(3, 96, generator=torch.Generator().manual_seed(6))
    top = MSJoESamplerSelector(small_sampler, mode="topk")
    with torch.no_grad():
        logits = small_sampler(similarity)
    chosen = top.select(similarity, 96, 12)
    assert chosen.indices.tolist() == topk_frames(logits, 12).tolist()
    assert chosen.draw_order is None and chosen.logits is not None
    sample = build_selector("msjoe", sampler=small_sampler, mode="sample")
    draws = [sample.select(similarity, 96, 12, generator=torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert draws[0].indices.tolist() == draws[1].indices.tolist() != draws[2].indices.tolist()
    assert sorted(draws[0].draw_order.tolist()) == draws[0].indices.tolist()
    assert draws[0].indices.tolist() != chosen.indices.tolist()
    with pytest.raises(ValueError, match="'topk' or 'sample'"):
        build_selector("msjoe", sampler=small_sampler, mode="greedy")


def test_bolt_and_qframe_dataclass_defaults_are_the_documented_ones():
    assert BOLTSelector().power == 2.0
    assert (QFrameSelector().temperature, QFrameSelector().logit_scale) == (0.8, 100.0)
    assert (AKSSelector().threshold, AKSSelector().max_depth, AKSSelector().judge_top) == (0.8, 5, "budget")
    for cls in (BOLTSelector, QFrameSelector, AKSSelector):
        assert (cls().query_source, cls().query_reduction) == ("question", "max")


# ---------------------------------------------------------------- selection by name, end to end
@pytest.fixture(scope="module")
def model(tiny_mllm_dir, tiny_clip_dir):
    from transformers_msjoe import MSJoEForVideoQA

    return MSJoEForVideoQA.from_mllm(
        tiny_mllm_dir("qwen2_5_vl"), clip=tiny_clip_dir, num_key_frames=4, query_max_new_tokens=8,
        answer_max_new_tokens=4, max_candidate_frames=64,
    )  # fmt: skip


@pytest.mark.parametrize("name", available_selectors())
def test_answer_runs_with_every_strategy(model, short_video, name):
    out = model.answer(short_video, QUESTION, OPTIONS, selection=name, generator=torch.Generator().manual_seed(0))
    assert out.selection == name
    assert out.key_frame_indices.shape == (4,) and torch.all(out.key_frame_indices.diff() > 0)
    assert torch.equal(out.key_frame_timestamps, out.candidate_timestamps[out.key_frame_indices])
    assert out.answer_turn_text is not None
    if name == "uniform":
        assert out.similarity is None and out.queries == []
    elif name == "msjoe":
        assert out.query_turn_text is not None
    else:
        assert out.queries == [QUESTION] and out.query_turn_text is None
        assert out.similarity.shape == (1, len(out.candidate_timestamps))


def test_selection_options_reach_the_selector(model, short_video):
    kwargs = {"selection": "qframe", "num_key_frames": 6}
    cold = model.select_frames(short_video, QUESTION, selection_options={"temperature": 1e-4}, **kwargs)
    topk = model.select_frames(short_video, QUESTION, selection="clip_topk", num_key_frames=6)
    assert cold.key_frame_indices.tolist() == topk.key_frame_indices.tolist()
    expected = torch.softmax(cold.similarity[0].double() * 100.0 / 1e-4, dim=0).float()
    assert torch.allclose(cold.frame_weights, expected)
    reasoned = model.select_frames(
        short_video, QUESTION, selection="bolt", selection_options={"query_source": "reasoned"}
    )
    assert reasoned.query_turn_text is not None and reasoned.preview_timestamps is not None
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['tau'\]"):
        model.select_frames(short_video, QUESTION, selection_options={"tau": 0.5}, **kwargs)


def test_cli_selection_by_name_with_options(tiny_mllm_dir, tiny_clip_dir, short_video, capsys):
    from transformers_msjoe.cli.main import main

    argv = [
        "select", short_video, QUESTION, "--model", tiny_mllm_dir("qwen2_5_vl"), "--clip", tiny_clip_dir,
        "--frames", "5", "--selection", "aks", "--selection-option", "max_depth=1", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["selection"] == "aks" and len(report["key_frame_indices"]) == 5
    assert report["queries"] == [QUESTION]
    # the option reached the selector: the picks are AKS(max_depth=1) on the reported similarity, not the default's
    similarity, num_candidates = torch.tensor(report["similarity"]), len(report["candidate_timestamps"])
    depth_one = AKSSelector(max_depth=1).select(similarity, num_candidates, 5).indices.tolist()
    assert report["key_frame_indices"] == depth_one
    assert depth_one != AKSSelector().select(similarity, num_candidates, 5).indices.tolist()


def test_cli_selection_help_lists_the_registered_strategies(capsys, monkeypatch):
    from transformers_msjoe import selection
    from transformers_msjoe.cli.main import main

    # a strategy registered by user code shows up too: the list is read from the registry, not hard-coded
    monkeypatch.setitem(selection._SELECTORS, "my_selector", selection.UniformSelector)
    with pytest.raises(SystemExit):
        main(["select", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"one of {', '.join(available_selectors())}" in help_text and "my_selector" in help_text
