"""The one copy of the paper's BibTeX entry, for every place that cites it.

Dependency-free on purpose (no `datasets`, no torch) so that any module can import the string; the dataset
card renders it (`card_template.md`) and the `datasets` builder reports it (`LongVideoQA._info`).
"""

from __future__ import annotations

__all__ = ["MSJOE_CITATION"]

MSJOE_CITATION = """@inproceedings{tan2026msjoe,
  title     = {MSJoE: Jointly Evolving MLLM and Sampler for Efficient Long-Form Video Understanding},
  author    = {Tan, Wenhui and Yu, Xiaoyi and Li, Jiaze and Chen, Yijing and Ju, Jianzhong and Luo, Zhenbo and Song, Ruihua and Luan, Jian},
  booktitle = {CVPR},
  year      = {2026},
  eprint    = {2602.22932},
  archivePrefix = {arXiv}
}"""
