"""plotting: the selection figure renders any model output as literal text."""

import torch

from transformers_msjoe.modeling_outputs import MSJoEVideoQAOutput
from transformers_msjoe.plotting import plot_selection


def test_model_text_with_dollars_and_control_characters_is_drawn_literally(short_video, tmp_path):
    """Random or real model output may hold `$...\\left$`, which matplotlib would parse as (broken) mathtext."""
    times = torch.arange(10, dtype=torch.float64) + 0.5
    output = MSJoEVideoQAOutput(
        question="Costs $5 or $\\left(6\\right)?",
        options=["A. yes", "B. no"],
        selection="msjoe",
        queries=["a $\\left x$ sign", "tab\there \x07 bell"],
        candidate_timestamps=times,
        similarity=torch.rand(2, 10),
        frame_weights=torch.softmax(torch.rand(10), dim=0),
        key_frame_indices=torch.tensor([2, 7]),
        key_frame_timestamps=times[[2, 7]],
        answer="$\\left",
    )
    path = plot_selection(output, short_video, tmp_path / "sel.png")
    assert (tmp_path / "sel.png").stat().st_size > 1000 and path.endswith("sel.png")
