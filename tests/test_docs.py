import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_reference_is_generated_from_the_docstrings():
    """docs/configuration.md must match the config docstrings (regenerate with the script if this fails)."""
    result = subprocess.run([sys.executable, "scripts/generate_config_reference.py", "--check"], cwd=ROOT)
    assert result.returncode == 0, "run: python scripts/generate_config_reference.py"


def test_readme_has_exactly_two_fresh_machine_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- fresh-machine -->")[1]
    fenced = block.split("```")[1].splitlines()[1:]  # drop the language tag line
    commands = [line for line in fenced if line.strip() and not line.startswith("#")]
    assert commands == [
        "scripts/setup.sh && .venv/bin/msjoe demo",
        "scripts/setup.sh dev && .venv/bin/python -m pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci
