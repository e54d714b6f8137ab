#!/usr/bin/env bash
# Create or reuse .venv and install napari-colorize into it.
#
#   bash scripts/setup.sh [EXTRAS]     EXTRAS: qt (default) or testing
#
# - Debian packages that Xvfb and Qt need: installed when missing and running as
#   root; otherwise the exact apt-get line is printed and the script stops.
# - torch: kept if the venv has one (a CPU build is replaced on a machine with an
#   NVIDIA GPU); else the CUDA build where `nvidia-smi` sees a GPU, else the CPU
#   build (a local wheel if pip finds one, else PyTorch's CPU index).
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
has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }
torch_info() { "$VENV/bin/python" -c "import torch; print(torch.__version__, torch.version.cuda or 'cpu')" 2>/dev/null; }
install_cuda_torch() {
  say "installing torch==$TORCH_VERSION (CUDA build)"
  # PyPI's Linux wheel is the CUDA build (TORCH_INDEX_URL: another, e.g. a cuXYZ index
  # of download.pytorch.org); --force-reinstall replaces a CPU build already there
  "${PIP[@]}" --force-reinstall "torch==$TORCH_VERSION" \
    ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple}
}
info="$(torch_info || true)"
if [ -n "$info" ]; then
  say "torch ${info% *} (${info#* } build) already installed"
  case "$info" in "$TORCH_VERSION"*) ;; *)
    say "note: TORCH_VERSION is $TORCH_VERSION; remove $VENV to install that one instead" ;;
  esac
  if has_gpu && [ "${info#* }" = cpu ]; then
    say "this machine has an NVIDIA GPU but the torch in $VENV is a CPU build: replacing it"
    install_cuda_torch
  fi
elif has_gpu; then
  install_cuda_torch
elif "${PIP[@]}" --no-index --no-deps "torch==$TORCH_VERSION" 2>/dev/null; then
  # a CPU wheel in pip's local find-links: take it, then its dependencies from the index
  "${PIP[@]}" "torch==$TORCH_VERSION"
  say "installed torch==$TORCH_VERSION (CPU build) from the local wheel cache"
else
  say "installing torch==$TORCH_VERSION (CPU build)"
  "${PIP[@]}" "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu \
    --extra-index-url https://pypi.org/simple
fi
if has_gpu; then
  case "$(torch_info)" in *" cpu") say "warning: torch is a CPU build on a machine with an NVIDIA GPU:" \
    "pip found a CPU wheel first; rerun with TORCH_INDEX_URL=https://download.pytorch.org/whl/cuXYZ" ;; esac
fi

# ---------------------------------------------------------------- the package
say "installing napari-colorize[$EXTRAS]"
set +e
"${PIP[@]}" -e ".[$EXTRAS]" 2>&1 | grep -vE "is ignored: it is neither a file nor a directory"
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then
  say "pip could not install napari-colorize[$EXTRAS] (exit status $status); see its message above"
  exit 1
fi
"$VENV/bin/python" -c "import napari_colorize" || { say "installation failed"; exit 1; }
say "ready: $VENV ($("$VENV/bin/python" -c 'import napari_colorize as m; print("napari-colorize", m.__version__)'))"
