"""`msjoe/longvideo-qa`: schema, raw-corpus builder, validation, Hub layout, difficulty labels, filtering, push.

    build (validate + write layout) -> label_difficulty (pass_rate) -> filter_dataset -> push_longvideo_qa
    prune_unreferenced: delete videos no question uses (what push refuses)
    load_longvideo_qa("msjoe/longvideo-qa" | "path/to/folder", split="train")   # what the trainer calls

See docs/dataset.md.
"""

from .builder import (
    BuildReport,
    LongVideoQA,
    LongVideoQAConfig,
    build_longvideo_qa,
    recover_interrupted_build,
)
from .card import render_dataset_card, write_dataset_card
from .converters import available_formats, convert_llava_video_mcq, read_records
from .difficulty import DifficultyReport, DifficultySettings, label_difficulty, model_weights_identity
from .filtering import FilterCriteria, FilterReport, PruneReport, filter_dataset, prune_unreferenced
from .hub import load_longvideo_qa, push_longvideo_qa
from .qa_files import QAFileError, RawRecord, read_qa_file
from .schema import LONGVIDEO_QA_FEATURES, METADATA_FEATURES, check_features
from .validation import ValidationOptions, ValidationResult, validate_records
from .writer import LayoutError, verify_layout

__all__ = [
    "LONGVIDEO_QA_FEATURES",
    "METADATA_FEATURES",
    "BuildReport",
    "DifficultyReport",
    "DifficultySettings",
    "FilterCriteria",
    "FilterReport",
    "LayoutError",
    "LongVideoQA",
    "LongVideoQAConfig",
    "PruneReport",
    "QAFileError",
    "RawRecord",
    "ValidationOptions",
    "ValidationResult",
    "available_formats",
    "build_longvideo_qa",
    "check_features",
    "convert_llava_video_mcq",
    "filter_dataset",
    "label_difficulty",
    "load_longvideo_qa",
    "model_weights_identity",
    "prune_unreferenced",
    "push_longvideo_qa",
    "read_qa_file",
    "read_records",
    "recover_interrupted_build",
    "render_dataset_card",
    "validate_records",
    "verify_layout",
    "write_dataset_card",
]
