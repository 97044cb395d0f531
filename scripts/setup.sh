#!/usr/bin/env bash
# Set up a fresh machine for transformers-msjoe (idempotent; safe to re-run).
#
#   scripts/setup.sh        runtime: FFmpeg (Debian), .venv, the pinned stack, the package   -> `msjoe demo`
#   scripts/setup.sh dev    + the [dev] extra (lmms-eval, pytest)                           -> the test suite
#
# torch/torchvision go first and come from constraints.txt (the tested pins; the CUDA build runs on a CPU),
# so that no later package can make pip fetch a different, multi-GB torch.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  "") target="." ;;
  dev) target=".[dev]" ;;
  *) echo "usage: scripts/setup.sh [dev]" >&2; exit 2 ;;
esac

if ! command -v ffmpeg >/dev/null 2>&1; then
  echo "setup: installing FFmpeg (Debian) for torchcodec and the synthetic test videos"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq ffmpeg >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
echo "setup: installing torch + torchvision (pinned)"
.venv/bin/pip install -q -c constraints.txt torch torchvision 2>&1 | grep -v "is ignored" || true
echo "setup: installing transformers-msjoe ${target#.} with pinned dependencies"
.venv/bin/pip install -q -c constraints.txt -e "$target" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import transformers_msjoe, torchcodec.decoders" \
  && echo "setup: done (activate with: . .venv/bin/activate)"
