"""The shipped `msjoe_accuracy` evaluate module, loaded offline from the package, on hand-made predictions."""

import pytest

from transformers_msjoe.metrics import MSJOE_ACCURACY_PATH, load_msjoe_accuracy


@pytest.fixture(scope="module")
def metric():
    return load_msjoe_accuracy()


def test_overall_by_type_and_by_duration(metric):
    result = metric.compute(
        predictions=["A", "b", "", "C", "D", None],
        references=["A", "B", "B", "A", "D", "C"],
        question_types=["count", "count", "ocr", "ocr", None, "order"],
        durations=[60.0, 200.0, 1000.0, 4000.0, 120.0, None],
    )
    assert result["accuracy"] == pytest.approx(3 / 6)
    assert result["count"] == 6 and result["unanswered"] == 2
    assert result["accuracy_by_type"] == {"count": 1.0, "ocr": 0.0, "order": 0.0, "unknown": 1.0}
    assert result["count_by_type"] == {"count": 2, "ocr": 2, "order": 1, "unknown": 1}
    assert result["accuracy_by_duration"] == {
        "0-180s": 1.0,
        "180-900s": 1.0,
        "900-1800s": 0.0,
        ">=1800s": 0.0,
        "unknown": 0.0,
    }
    assert result["count_by_duration"] == {"0-180s": 2, "180-900s": 1, "900-1800s": 1, ">=1800s": 1, "unknown": 1}


def test_custom_buckets_and_plain_accuracy(metric):
    result = metric.compute(
        predictions=["A", "B"], references=["A", "A"], durations=[10.0, 50.0], duration_bucket_edges=[30.0]
    )
    assert result["accuracy_by_duration"] == {"0-30s": 1.0, ">=30s": 0.0}
    assert metric.compute(predictions=["C"], references=["C"]) == {"accuracy": 1.0, "count": 1, "unanswered": 0}


def test_bad_inputs_are_named(metric):
    with pytest.raises(ValueError, match="question_types"):
        metric.compute(predictions=["A"], references=["A"], question_types=["x", "y"])
    with pytest.raises(ValueError, match="strictly increasing"):
        metric.compute(predictions=["A"], references=["A"], durations=[1.0], duration_bucket_edges=[10.0, 5.0])
    with pytest.raises(ValueError, match="option letter"):
        metric.compute(predictions=["A"], references=[""])


def test_loads_with_evaluate_from_the_package_path():
    import os

    import evaluate

    assert os.path.isfile(os.path.join(MSJOE_ACCURACY_PATH, "msjoe_accuracy.py"))
    assert evaluate.load(MSJOE_ACCURACY_PATH).compute(predictions=["B"], references=["A"])["accuracy"] == 0.0
