#!/usr/bin/env bash
# Create or reuse .venv and install napari-colorize into it.
#
#   bash scripts/setup.sh [EXTRAS]     EXTRAS: qt (default) or testing
#
# - Debian packages that Xvfb and Qt need: installed when missing and running as
#   root; otherwise the exact apt-get line is printed and the script stops.
# - torch: kept if the venv has one; else the CUDA build where `nvidia-smi` sees a
#   GPU, else the CPU build (a local wheel if pip finds one, else PyTorch's CPU index).
#   TORCH_VERSION (default 2.13.0) pins it.
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS="${1:-qt}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
PYTHON="${PYTHON:-python3}"
VENV=".venv"
say() { printf '[setup] %s\n' "$*"; }

# ---------------------------------------------------------------- system packages
APT_PACKAGES=(python3-venv xvfb xauth libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3
  libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0)
if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    # python3-venv only matters when the interpreter cannot make a venv by itself
    if [ "$pkg" = python3-venv ] && "$PYTHON" -c "import ensurepip, venv" 2>/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then
      say "installing Debian packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      say "missing Debian packages for Xvfb/Qt. Run as root, then run this script again:"
      printf '  sudo sh -c "%s"\n' "$line"
      exit 1
    fi
  fi
else
  say "not a Debian-like system: make sure Qt's xcb libraries (and Xvfb for the tests) are installed"
fi

# ---------------------------------------------------------------- virtual environment
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

# ---------------------------------------------------------------- torch
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  say "torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') already installed"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  say "installing torch==$TORCH_VERSION (CUDA build)"
  "${PIP[@]}" "torch==$TORCH_VERSION"
elif "${PIP[@]}" --no-index --no-deps "torch==$TORCH_VERSION" 2>/dev/null; then
  # a CPU wheel in pip's local find-links: take it, then its dependencies from the index
  "${PIP[@]}" "torch==$TORCH_VERSION"
  say "installed torch==$TORCH_VERSION (CPU build) from the local wheel cache"
else
  say "installing torch==$TORCH_VERSION (CPU build)"
  "${PIP[@]}" "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu \
    --extra-index-url https://pypi.org/simple
fi

# ---------------------------------------------------------------- the package
say "installing napari-colorize[$EXTRAS]"
"${PIP[@]}" -e ".[$EXTRAS]" 2>&1 | grep -vE "is ignored: it is neither a file nor a directory" || true
"$VENV/bin/python" -c "import napari_colorize" || { say "installation failed"; exit 1; }
say "ready: $VENV ($("$VENV/bin/python" -c 'import napari_colorize as m; print("napari-colorize", m.__version__)'))"
