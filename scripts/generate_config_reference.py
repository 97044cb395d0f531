"""Write docs/configuration.md from the config docstrings, the single place each field is documented.

python scripts/generate_config_reference.py        # rewrite the page
python scripts/generate_config_reference.py --check  # exit 1 if the page is stale (used by the tests)
"""

import argparse
import inspect
import re
import sys
from pathlib import Path

from transformers_msjoe import MSJoEConfig, MSJoESamplerConfig

PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
HEADER = """# Configuration reference

Generated from the docstrings of `MSJoEConfig` and `MSJoESamplerConfig` by
`scripts/generate_config_reference.py`; edit the docstrings, not this page. Fields marked "(inferred)"
are choices the paper (https://huggingface.co/papers/2602.22932) does not state.
"""


def render() -> str:
    parts = [HEADER]
    for cls in (MSJoEConfig, MSJoESamplerConfig):
        body = inspect.cleandoc(cls.__doc__)
        lines = []
        for line in body.splitlines():
            if line.startswith("> "):
                lines.append(f"\n### {line[2:]}\n")
            elif line and not line.startswith(" ") and " (`" in line:
                name, _, rest = line.partition(" (")
                lines.append(f"- **`{name}`** ({rest}")
            elif line.startswith("    "):
                lines.append(f"  {line.strip()}")
            else:
                lines.append(line)
        parts.append(f"## `{cls.__name__}`\n\n" + "\n".join(lines).strip() + "\n")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render()
    if args.check:
        return 0 if PAGE.exists() and PAGE.read_text() == text else 1
    PAGE.parent.mkdir(exist_ok=True)
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
