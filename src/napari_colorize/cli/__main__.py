"""``python -m napari_colorize.cli ARGS``: the same as ``napari-colorize ARGS``."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
