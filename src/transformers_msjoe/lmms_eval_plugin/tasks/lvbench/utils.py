"""msjoe_lvbench: lmms-eval's LVBench prompt and scorer; local videos; options as fields."""

from transformers_msjoe.lmms_eval_plugin.benchmarks import BENCHMARKS, official_task_utils

_official = official_task_utils("lvbench")

lvbench_doc_to_text = _official.lvbench_doc_to_text
lvbench_process_results = _official.lvbench_process_results
doc_to_visual = BENCHMARKS["lvbench"].doc_to_visual  # <video root>/<video_path>
process_docs = BENCHMARKS["lvbench"].process_docs  # adds msjoe_question / msjoe_options
