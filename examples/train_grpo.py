"""Train MSJoE with RL (paper §2): stage 1 pre-trains the sampler, stage 2 trains MLLM and sampler jointly.

    accelerate launch examples/train_grpo.py --config examples/configs/sampler_pretrain.yaml   # stage 1
    accelerate launch examples/train_grpo.py --config examples/configs/joint.yaml              # stage 2

`--model_name_or_path` is an MLLM (e.g. Qwen/Qwen2.5-VL-7B-Instruct, wrapped with a fresh sampler) or an MSJoE
checkpoint (stage 2 starts from stage 1's output); `--dataset_name` is msjoe/longvideo-qa or a local folder in
its layout. `--use_peft` puts LoRA on the MLLM's language model (q/k/v/o projections unless
`--lora_target_modules` says otherwise); the sampler always trains fully. Every `MSJoEGRPOConfig` field is a flag
or a YAML key; see docs/training.md.
"""

from dataclasses import dataclass, field

from trl import ModelConfig, ScriptArguments, TrlParser, get_peft_config

from transformers_msjoe.data import load_longvideo_qa
from transformers_msjoe.grpo_config import MSJoEGRPOConfig
from transformers_msjoe.grpo_trainer import MSJoEGRPOTrainer
from transformers_msjoe.loading import load_msjoe_model


@dataclass
class MSJoEScriptArguments(ScriptArguments):
    """Dataset flags (`--dataset_name`, `--dataset_train_split`, `--dataset_test_split`) plus the CLIP to use."""

    dataset_name: str = field(
        default="msjoe/longvideo-qa", metadata={"help": "Hub id or local folder in the msjoe/longvideo-qa layout."}
    )
    clip: str | None = field(
        default=None,
        metadata={
            "help": "CLIP identity when wrapping a plain MLLM (default ViT-L-14/openai), or an override for an MSJoE "
            "checkpoint."
        },
    )


def main() -> None:
    parser = TrlParser((MSJoEScriptArguments, MSJoEGRPOConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    mllm_kwargs = {"revision": model_args.model_revision, "dtype": model_args.dtype}
    if model_args.attn_implementation is not None:
        mllm_kwargs["attn_implementation"] = model_args.attn_implementation
    model = load_msjoe_model(model_args.model_name_or_path, clip=script_args.clip, mllm_kwargs=mllm_kwargs)
    train = load_longvideo_qa(script_args.dataset_name, script_args.dataset_train_split, decode_video=False)
    evaluation = None
    if training_args.eval_strategy != "no":
        evaluation = load_longvideo_qa(script_args.dataset_name, script_args.dataset_test_split, decode_video=False)
    trainer = MSJoEGRPOTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)  # a loadable MSJoE checkpoint (LoRA merged); pushed with --push_to_hub


if __name__ == "__main__":
    main()
