"""`evaluate` metric modules shipped with transformers-msjoe (loadable offline with `evaluate.load(path)`)."""

import os

__all__ = ["MSJOE_ACCURACY_PATH", "load_msjoe_accuracy"]

# A folder holding `msjoe_accuracy.py`, the layout `evaluate.load(<folder>)` expects for a local module.
MSJOE_ACCURACY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "msjoe_accuracy")


def load_msjoe_accuracy(**kwargs):
    """`evaluate.load` of the shipped MSJoE accuracy metric (no network: the module is a local file)."""
    import evaluate

    return evaluate.load(MSJOE_ACCURACY_PATH, **kwargs)
