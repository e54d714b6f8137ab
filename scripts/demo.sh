#!/usr/bin/env bash
# Set everything up (see scripts/setup.sh), then run the demo: napari opens with a
# grayscale sample and colorizes it with the bundled model. Without a display it
# writes the colorized samples and a side-by-side PNG instead.
# Extra arguments go to `napari-colorize demo`, e.g. --screenshot demo.png
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh qt
exec .venv/bin/napari-colorize demo "$@"
