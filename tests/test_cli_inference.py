import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transformers_msjoe.cli.main import main

OPTIONS = ["A. red", "B. blue", "C. yellow", "D. green"]


def _model_args(tiny_mllm_dir, tiny_clip_dir):
    return ["--model", tiny_mllm_dir(), "--clip", tiny_clip_dir, "--frames", "4"]


def test_answer_json_and_plot(tiny_mllm_dir, tiny_clip_dir, short_video, tmp_path, capsys):
    plot = tmp_path / "sel.png"
    code = main(
        [
            "answer",
            short_video,
            "What colour?",
            "--options",
            *OPTIONS,
            *_model_args(tiny_mllm_dir, tiny_clip_dir),
            "--json",
            "--plot",
            str(plot),
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["key_frame_timestamps"]) == 4 and result["options"] == OPTIONS
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_select_human_output_with_given_queries(tiny_mllm_dir, tiny_clip_dir, short_video, capsys):
    code = main(
        [
            "select",
            short_video,
            "What colour?",
            *_model_args(tiny_mllm_dir, tiny_clip_dir),
            "--queries",
            "a red square",
            "--selection",
            "msjoe",
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0] == "queries: ['a red square']"
    assert lines[1].startswith("key frames (s): ") and len(lines[1].split(",")) == 4
    assert not any(line.startswith("answer:") for line in lines)


def test_bad_input_exits_2_with_one_clear_line(tiny_mllm_dir, tiny_clip_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["answer", str(tmp_path / "missing.mp4"), "Why?", *_model_args(tiny_mllm_dir, tiny_clip_dir)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "msjoe answer: error: Video file not found" in err and "Traceback" not in err


def test_unknown_selection_is_reported(tiny_mllm_dir, tiny_clip_dir, short_video, capsys):
    with pytest.raises(SystemExit):
        main(["select", short_video, "Why?", *_model_args(tiny_mllm_dir, tiny_clip_dir), "--selection", "nope"])
    assert "Unknown frame selection 'nope'" in capsys.readouterr().err


def test_zero_key_frames_is_rejected_not_replaced_by_the_default(short_video, capsys):
    for command in (["select", short_video, "Why?"], ["demo"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--frames", "0"])
        assert exit_info.value.code == 2
        assert "--frames: must be a positive integer (a number of key frames), got '0'" in capsys.readouterr().err


def test_demo_writes_plot_and_report(tmp_path, capsys, caplog):
    assert main(["demo", "--output-dir", str(tmp_path), "--duration", "90", "--frames", "6"]) == 0
    out = capsys.readouterr().out
    assert "RANDOM" in out and "plot:" in out and "report:" in out and "key frames (s): " in out
    # the demo says its weights are random; open_clip must not warn about it as if it were a mistake
    assert not [r for r in caplog.records if "initialized randomly" in r.getMessage() or "no CLIP" in r.getMessage()]
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["key_frame_timestamps"]) == 6 and len(report["candidate_timestamps"]) == 90
    assert "random" in report["note"].lower()
    assert (tmp_path / "selection.png").exists() and (
        tmp_path / "models" / "tiny-clip" / "open_clip_config.json"
    ).exists()


def test_console_script_is_installed():
    # The script sits beside the interpreter; CI runs `.venv/bin/python -m pytest` without activating the venv.
    script = Path(sys.executable).parent / "msjoe"
    assert script.exists(), f"console script missing at {script}: reinstall with `pip install -e .`"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert result.returncode == 0 and "answer" in result.stdout and "demo" in result.stdout
