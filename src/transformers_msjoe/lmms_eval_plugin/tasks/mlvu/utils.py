"""msjoe_mlvu: lmms-eval's MLVU (dev) prompt, scorer and aggregation; local videos; options as fields."""

from transformers_msjoe.lmms_eval_plugin.benchmarks import BENCHMARKS, official_task_utils

_official = official_task_utils("mlvu")

mlvu_doc_to_text = _official.mlvu_doc_to_text
mlvu_process_results = _official.mlvu_process_results
mlvu_aggregate_results_dev = _official.mlvu_aggregate_results_dev
doc_to_visual = BENCHMARKS["mlvu"].doc_to_visual  # <video root>/<video_name>
process_docs = BENCHMARKS["mlvu"].process_docs  # adds msjoe_question / msjoe_options
