"""CLIP stage on decoded frames: MSJoE's tensor preprocessing + encode + similarity vs raw open_clip
`encode_image` on the same frames already preprocessed (issue 6, figure 4; goal <= 1.10x its time).

128 candidate frames are decoded once, outside the timing, at the size the pipeline decodes them
(`frame_features.candidate_decode_size`): the test video's 320x240 frames are within 4x a 224-px CLIP's decode
area, so they are decoded natively and MSJoE's side resizes them in torch, as `answer()` does. MSJoE's side is
`MSJoECLIPScorer.encode_frames` (resize/crop/normalise as tensor ops on the CLIP device, encode, L2-normalise,
back to the CPU) in batches of `MSJoEConfig.clip_batch_size`, then the query x frame cosine similarity. The baseline
gets the frames already preprocessed (resized, cropped, normalised), on the device, and only runs
`model.encode_image` in the same batches: the ratio is everything MSJoE adds around the encoder, the resize
included. Default: ViT-B-32 with random weights (no
download); `--clip ViT-L-14/openai --device cuda` on a GPU box.

Run: python benchmarks/clip_stage.py [--clip ViT-B-32] [--device cpu] [--frames 128] [--repeats 3]
"""

from __future__ import annotations

import torch
from _common import describe, interleaved, load_note, parser, setup, timing_basis, verdict, video

QUERIES = ["a red square in the middle", "a blue square", "a person opens a door", "text on a screen"]


def main() -> None:
    p = parser(__doc__, clip="ViT-B-32")
    p.add_argument("--frames", type=int, default=128, help="Number of candidate frames.")
    from transformers_msjoe.configuration_msjoe import MSJoEConfig

    p.add_argument(
        "--batch-size", type=int, default=MSJoEConfig.clip_batch_size, help="CLIP batch (MSJoEConfig.clip_batch_size)."
    )
    args = p.parse_args()
    setup(args)
    from transformers_msjoe.clip_scoring import MSJoECLIPScorer
    from transformers_msjoe.frame_features import candidate_decode_size
    from transformers_msjoe.video_io import open_video, plan_uniform_timestamps

    scorer = MSJoECLIPScorer.from_identity(args.clip, device=args.device)
    reader = open_video(video(args.workdir, duration=args.duration))
    height, width = reader.info.height, reader.info.width
    size = candidate_decode_size(height, width, scorer.decode_size(height, width))  # None: native, as the pipeline
    frames = reader.frames_at(
        plan_uniform_timestamps(reader.info.duration_seconds, args.frames), size=size
    )  # (N, 3, h, w)
    queries = scorer.encode_texts(QUERIES)  # (Q, D), outside the timed region on both sides
    preprocessed = scorer.preprocess(frames)  # (N, 3, S, S) on the device: the baseline's head start

    def ours() -> torch.Tensor:
        embeddings = torch.cat([scorer.encode_frames(b) for b in frames.split(args.batch_size)])  # (N, D)
        return scorer.similarity(queries, embeddings)  # (Q, N)

    @torch.inference_mode()
    def raw_open_clip() -> torch.Tensor:
        return torch.cat([scorer.model.encode_image(b) for b in preprocessed.split(args.batch_size)])  # (N, D)

    reference = torch.nn.functional.normalize(raw_open_clip().float(), dim=-1).cpu()
    difference = (ours() - queries @ reference.T).abs().max().item()
    if difference > 1e-4:  # not `assert`: `python -O` would skip the check and time two different computations
        raise SystemExit(
            f"MSJoE's similarity differs from open_clip's by up to {difference:.2e}: the comparison is void"
        )
    ours(), raw_open_clip()  # warm-up (allocator, kernels)
    print(f"before: {load_note()}")
    times = interleaved({"msjoe": ours, "raw_open_clip": raw_open_clip}, args.repeats, args.device)
    print(f"after: {load_note()}")
    decoded = "natively" if size is None else "downscaled in FFmpeg"
    print(
        f"CLIP {args.clip} on {args.device}, {args.frames} frames decoded {decoded} at {tuple(frames.shape[-2:])} -> {scorer.image_size}, batch {args.batch_size}"
    )
    for name, seconds in times.items():
        print(describe(name, seconds))
    basis = timing_basis(args.device)
    wall_ratio = min(times["msjoe"]["wall"]) / min(times["raw_open_clip"]["wall"])
    print(f"wall-clock ratio (disturbed by other processes on a shared CPU): {wall_ratio:.3f}x")
    ratio = min(times["msjoe"][basis]) / min(times["raw_open_clip"][basis])
    print(
        f"CLIP stage (tensor preprocess + encode + similarity) relative to raw open_clip encode_image on preprocessed frames, {basis} time (same run): {ratio:.3f}x {verdict(ratio, 1.10, at_least=False)}"
    )


if __name__ == "__main__":
    main()
