"""``python -m napari_colorize.train ARGS``: the same as ``napari-colorize train ARGS``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
