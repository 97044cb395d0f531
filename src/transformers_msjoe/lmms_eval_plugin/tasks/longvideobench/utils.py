"""msjoe_longvideobench: lmms-eval's LongVideoBench prompt, scorer and aggregation; local videos; options as fields."""

from transformers_msjoe.lmms_eval_plugin.benchmarks import BENCHMARKS, official_task_utils

_official = official_task_utils("longvideobench")

longvideobench_doc_to_text = _official.longvideobench_doc_to_text
longvideobench_process_results = _official.longvideobench_process_results
longvideobench_aggregate_results = _official.longvideobench_aggregate_results
doc_to_visual = BENCHMARKS["longvideobench"].doc_to_visual  # <video root>/<video_path>
process_docs = BENCHMARKS["longvideobench"].process_docs  # adds msjoe_question / msjoe_options
