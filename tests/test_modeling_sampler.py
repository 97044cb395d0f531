import logging
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformers_msjoe import MSJoEFrameSampler, MSJoESamplerConfig
from transformers_msjoe.modeling_sampler import frame_log_prob, sample_frames, topk_frames

SMALL = dict(base_channels=16, channel_multipliers=[1, 2, 4], kernel_size=3, num_groups=4)
GOLDEN = Path(__file__).parent / "artifacts" / "sampler_golden.safetensors"


@pytest.fixture
def sampler():
    torch.manual_seed(0)
    model = MSJoEFrameSampler(MSJoESamplerConfig(**SMALL)).eval()
    torch.nn.init.normal_(model.head.weight, std=0.5)  # make logits depend visibly on the input
    return model


def test_default_size_is_about_two_million_parameters():
    params = MSJoEFrameSampler(MSJoESamplerConfig()).num_parameters()
    assert 1.5e6 < params < 2.5e6  # paper: "about 2M parameters"


def test_shapes_batched_and_unbatched(sampler):
    similarity = torch.rand(3, 4, 37)
    assert sampler(similarity).shape == (3, 37)
    assert sampler(similarity[0]).shape == (37,)
    assert torch.allclose(sampler(similarity)[0], sampler(similarity[0]), atol=1e-5)


def test_padding_in_time_is_masked_and_does_not_change_valid_logits(sampler):
    similarity = torch.rand(1, 3, 50)
    alone = sampler(similarity)
    padded = torch.nn.functional.pad(similarity, (0, 27), value=5.0)  # garbage in the padding
    mask = torch.zeros(1, 77, dtype=torch.bool)
    mask[:, :50] = True
    batched = sampler(padded, frame_mask=mask)
    assert torch.allclose(batched[:, :50], alone, atol=1e-4)
    assert torch.isneginf(batched[:, 50:]).all()


def test_fewer_queries_equal_zero_padded_query_rows(sampler):
    similarity = torch.rand(1, 2, 40)
    two = sampler(similarity)
    padded = torch.cat([similarity, torch.rand(1, 2, 40)], dim=1)
    query_mask = torch.tensor([[True, True, False, False]])
    assert torch.allclose(sampler(padded, query_mask=query_mask), two, atol=1e-5)


def test_too_many_queries_and_empty_input_are_clear_errors(sampler):
    with pytest.raises(ValueError, match="at most 4 queries"):
        sampler(torch.rand(5, 10))
    with pytest.raises(ValueError, match="empty"):
        sampler(torch.rand(2, 0))


def test_matches_golden_artifact():
    """Regenerate with scripts/regenerate_sampler_golden.py only for an intended change."""
    golden = load_file(GOLDEN)
    model = MSJoEFrameSampler(MSJoESamplerConfig(**SMALL)).eval()
    model.load_state_dict({k.removeprefix("weights."): v for k, v in golden.items() if k.startswith("weights.")})
    with torch.no_grad():
        logits = model(golden["similarity"], frame_mask=golden["frame_mask"])
    torch.testing.assert_close(logits, golden["logits"], atol=1e-5, rtol=1e-5)


def test_topk_is_time_ordered_distinct_and_picks_the_peaks():
    logits = torch.full((20,), -3.0)
    logits[[15, 2, 9]] = torch.tensor([5.0, 4.0, 3.0])
    assert topk_frames(logits, 3).tolist() == [2, 9, 15]


def test_fewer_candidates_than_budget_returns_all_with_a_warning(caplog):
    logits = torch.tensor([0.1, 0.3, float("-inf")])
    with caplog.at_level(logging.WARNING):
        chosen = topk_frames(logits, 8)
    assert chosen.tolist() == [0, 1]  # the padded frame is never chosen
    assert "Only 2 candidate frames for a budget of 8" in caplog.text
    assert sample_frames(logits, 8).indices.tolist() == [0, 1]


def test_sampling_without_replacement_is_reproducible_and_follows_the_distribution():
    logits = torch.log(torch.tensor([0.7, 0.1, 0.1, 0.05, 0.05]))
    draws = [sample_frames(logits, 2, generator=torch.Generator().manual_seed(s)) for s in range(400)]
    for d in draws:
        assert d.indices.tolist() == sorted(set(d.indices.tolist()))
        assert sorted(d.draw_order.tolist()) == d.indices.tolist()
    first_is_zero = sum(int(d.draw_order[0] == 0) for d in draws) / len(draws)
    assert abs(first_is_zero - 0.7) < 0.08  # the first draw follows softmax(logits)
    again = sample_frames(logits, 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again.draw_order, draws[3].draw_order)


def test_log_prob_paper_form_equals_hand_computation():
    logits = torch.tensor([1.0, 2.0, 0.5, -1.0])
    order = torch.tensor([1, 3])
    z = sum(math.exp(v) for v in logits.tolist())
    expected = math.log(math.exp(2.0) / z) + math.log(math.exp(-1.0) / z)
    assert frame_log_prob(logits, order).item() == pytest.approx(expected, rel=1e-6)


def test_log_prob_plackett_luce_equals_sequential_draws():
    logits = torch.randn(6, generator=torch.Generator().manual_seed(1))
    order = torch.tensor([4, 0, 5])
    remaining, expected = list(range(6)), 0.0
    for i in order.tolist():
        expected += (logits[i] - torch.logsumexp(logits[remaining], 0)).item()
        remaining.remove(i)
    assert frame_log_prob(logits, order, "plackett_luce").item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="form"):
        frame_log_prob(logits, order, "bogus")


def test_one_reinforce_step_with_positive_advantage_raises_chosen_probability(sampler):
    similarity = torch.rand(3, 64, generator=torch.Generator().manual_seed(2))
    optimizer = torch.optim.SGD(sampler.parameters(), lr=1e-3)
    drawn = sample_frames(sampler(similarity), 8, generator=torch.Generator().manual_seed(0))
    before = torch.softmax(sampler(similarity), -1)[drawn.indices].sum().item()
    loss = -1.0 * frame_log_prob(sampler(similarity), drawn.draw_order)  # advantage A = +1
    loss.backward()
    optimizer.step()
    after = torch.softmax(sampler(similarity), -1)[drawn.indices].sum().item()
    assert after > before


def test_reinforce_learns_to_find_a_planted_needle():
    """Stage-1-style REINFORCE on synthetic similarity: reward = needle frames found; the sampler learns them."""
    torch.manual_seed(0)
    model = MSJoEFrameSampler(MSJoESamplerConfig(**SMALL))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen, eval_gen = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)

    def task(g=gen):
        similarity = 0.2 + 0.02 * torch.randn(2, 96, generator=g)
        start = int(torch.randint(0, 90, (1,), generator=g))
        similarity[0, start : start + 4] += 0.08  # one query peaks on the needle (4 sigma); the other is noise
        return similarity, set(range(start, start + 4))

    def recall() -> float:
        hits = []
        with torch.no_grad():
            for _ in range(20):
                similarity, needle = task(eval_gen)
                hits.append(len(needle & set(topk_frames(model(similarity), 4).tolist())) / 4)
        return sum(hits) / len(hits)

    untrained = recall()
    for _ in range(150):
        similarity, needle = task()
        logits = model(similarity)
        draws = [sample_frames(logits, 4, generator=gen) for _ in range(4)]  # a group of 4, GRPO-style baseline
        rewards = torch.tensor([len(needle & set(d.indices.tolist())) / 4 for d in draws])
        advantages = rewards - rewards.mean()
        loss = -sum(a * frame_log_prob(logits, d.draw_order) for a, d in zip(advantages, draws))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert untrained < 0.3
    trained = recall()
    assert trained > 0.8, trained


def test_select_method_is_topk_in_time_order_or_reproducible_sampling(sampler):
    torch.nn.init.normal_(sampler.head.weight, std=1.0)
    similarity = torch.randn(3, 40)  # (Q, T) of one video
    logits = sampler(similarity).detach()
    top = sampler.select(similarity, 6)
    assert torch.equal(top.indices, topk_frames(logits, 6))
    assert top.draw_order.tolist() == logits.topk(6).indices.tolist()  # greedy draw: decreasing logit
    drawn = sampler.select(similarity, 6, mode="sample", generator=torch.Generator().manual_seed(3))
    expected = sample_frames(logits, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(drawn.indices, expected.indices) and torch.equal(drawn.draw_order, expected.draw_order)
    with pytest.raises(ValueError, match="'topk' or 'sample'"):
        sampler.select(similarity, 6, mode="best")
    with pytest.raises(ValueError, match=r"one video's similarity `\(Q, T\)`"):
        sampler.select(similarity[None], 6)


def test_log_prob_method_is_the_differentiable_log_prob_of_the_sampler_logits(sampler):
    similarity = torch.randn(2, 24)
    indices = torch.tensor([5, 1, 17])
    for form in ("paper", "plackett_luce"):
        value = sampler.log_prob(similarity, indices, form=form)
        assert torch.allclose(value, frame_log_prob(sampler(similarity), indices, form=form))
    sampler.zero_grad()
    sampler.log_prob(similarity, indices).backward()
    assert sampler.head.weight.grad is not None and sampler.head.weight.grad.abs().sum() > 0
