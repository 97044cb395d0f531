"""The one copy of the paper's BibTeX entry, for every place that cites it.

Dependency-free on purpose (no `datasets`, no torch) so that any module can import the string: the model card
(`model_card.py`), the dataset card (`data/card_template.md`), the `datasets` builder (`LongVideoQA._info`) and the
`msjoe_accuracy` metric all render this one entry.
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
