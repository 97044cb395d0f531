"""msjoe_videomme(_long): lmms-eval's Video-MME prompt, scorer and aggregation; local videos; options as fields."""

import datasets

from transformers_msjoe.lmms_eval_plugin.benchmarks import BENCHMARKS, official_task_utils

_official = official_task_utils("videomme")

videomme_doc_to_text = _official.videomme_doc_to_text
videomme_process_results = _official.videomme_process_results
videomme_aggregate_results = _official.videomme_aggregate_results
doc_to_visual = BENCHMARKS["videomme"].doc_to_visual  # <video root>/<videoID>.mp4 (then .MP4, .mkv)
process_docs = BENCHMARKS["videomme"].process_docs  # adds msjoe_question / msjoe_options


def process_docs_long(dataset: datasets.Dataset) -> datasets.Dataset:
    """`process_docs` of msjoe_videomme_long: the long videos only (lmms-eval's own filter, so the subset is the
    official one), then the msjoe fields."""
    return process_docs(_official.videomme_process_docs_long(dataset))
