#!/usr/bin/env bash
# Set up a fresh machine for transformers-msjoe (idempotent; safe to re-run).
#
#   scripts/setup.sh        runtime: FFmpeg (Debian), .venv, the pinned stack, the package   -> `msjoe demo`
#   scripts/setup.sh dev    + the [dev] extra (lmms-eval, pytest, ruff)                     -> the test suite
#
# torch/torchvision go first and come from constraints.txt (the tested pins; the CUDA build runs on a CPU),
# so that no later package can make pip fetch a different, multi-GB torch.
# PYTHON=/path/to/python3 picks the interpreter (default: python3 on PATH; 3.10 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: error: $*" >&2; exit 1; }

case "${1:-}" in
  "") target="." ;;
  dev) target=".[dev]" ;;
  *) echo "usage: scripts/setup.sh [dev]" >&2; exit 2 ;;
esac

python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || die "no '$python' on PATH: install Python 3.10+ or set PYTHON=/path/to/python3"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$("$python" --version 2>&1) is too old: transformers-msjoe needs Python 3.10+ (set PYTHON=...)"

apt_install() {  # apt_install PKG...: Debian packages, as root or through sudo
  local sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install $* (run: apt-get install -y $*)"
    sudo_cmd="sudo"
  fi
  command -v apt-get >/dev/null 2>&1 || die "no apt-get: install $* with your system's package manager"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}

quiet_pip() {  # pip with its "constraint ... is ignored" chatter removed; pip's own exit status is kept
  local status=0
  "$@" 2> >(grep -v "is ignored" >&2) || status=$?
  [ "$status" -eq 0 ] || die "'$*' failed (exit $status); see the pip output above"
}

if ! command -v ffmpeg >/dev/null 2>&1; then
  echo "setup: installing FFmpeg (Debian) for torchcodec and the synthetic test videos"
  apt_install ffmpeg
fi

# A .venv that cannot run (moved, or its interpreter removed) is rebuilt rather than half-used.
if [ -e .venv ] && ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
  echo "setup: .venv is broken; recreating it"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    echo "setup: installing python3-venv (Debian) for '$python -m venv'"
    apt_install python3-venv
    "$python" -m venv .venv || die "'$python -m venv .venv' failed"
  fi
fi

quiet_pip .venv/bin/python -m pip install -q --upgrade pip
echo "setup: installing torch + torchvision (pinned)"
quiet_pip .venv/bin/pip install -q -c constraints.txt torch torchvision
echo "setup: installing transformers-msjoe ${target#.} with pinned dependencies"
quiet_pip .venv/bin/pip install -q -c constraints.txt -e "$target"
.venv/bin/python -c "import transformers_msjoe, torchcodec.decoders" \
  || die "the install finished but 'import transformers_msjoe, torchcodec.decoders' fails (see above)"
echo "setup: done (activate with: . .venv/bin/activate)"
