"""Take the screenshots of the napari widgets used in the docs (docs/images/*.png).

Run under a display, or headless with Xvfb:

    xvfb-run -a .venv/bin/python scripts/docs_screenshots.py [--model NAME_OR_PATH]

Each screenshot is the whole napari window with the widget docked and in use,
scaled down to at most 960 pixels wide. Look at them before committing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "docs" / "images"
WINDOW = (1280, 760)
MAX_WIDTH = 960


def _save(viewer, name: str) -> Path:
    from qtpy.QtWidgets import QApplication

    for _ in range(20):  # let napari draw the final state
        QApplication.processEvents()
    return _shrink(viewer.screenshot(canvas_only=False, flash=False), name)


def _shrink(shot, name: str) -> Path:
    from PIL import Image

    image = Image.fromarray(np.asarray(shot)[..., :3])
    if image.width > MAX_WIDTH:
        height = round(image.height * MAX_WIDTH / image.width)
        image = image.resize((MAX_WIDTH, height), Image.LANCZOS)
    path = OUT / name
    OUT.mkdir(parents=True, exist_ok=True)
    # a 256-colour palette keeps the files small; the UI and the samples survive it
    image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(path, optimize=True)
    print(f"wrote {path} {image.size}")
    return path


def _wait(worker) -> None:
    from qtpy.QtCore import QEventLoop

    loop = QEventLoop()
    worker.finished.connect(loop.quit)
    worker.start()
    loop.exec()


def _viewer():
    import napari

    viewer = napari.Viewer(title="napari-colorize")
    viewer.window.resize(*WINDOW)
    return viewer


def colorize_screenshot(model: str) -> Path:
    """The Colorize widget on grayscale CryptoPunks: gray | colorized | truth."""
    from napari_colorize.demo import load_demo_sample
    from napari_colorize.widgets.demo import _arrange

    sample = load_demo_sample()
    viewer = _viewer()
    gray = viewer.add_image(sample.gray, name=sample.name)
    truth = viewer.add_image(sample.truth, name=f"{sample.name} truth", rgb=True)
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-colorize", "Colorize")
    widget.refresh_choices(block=True)
    widget.image.value = gray
    widget.set_model(model)
    _wait(widget.run(start=False))
    colorized = viewer.layers[f"{sample.name} colorized"]
    _arrange(viewer, gray, colorized, truth)
    viewer.dims.set_current_step(0, 6)
    viewer.layers.selection.active = colorized
    path = _save(viewer, "colorize_widget.png")
    viewer.close()
    return path


def reference_screenshot() -> Path:
    """Colour from a reference layer: the left half of a stained section colours its right half."""
    from skimage import data

    from napari_colorize.color import lab_to_rgb, rgb_to_lab

    rgb = data.immunohistochemistry()
    half = rgb.shape[1] // 2
    lab = rgb_to_lab(rgb[:, half:])
    lab[..., 1:] = 0
    gray = (lab_to_rgb(lab)[..., 0] * 255).round().astype(np.uint8)
    viewer = _viewer()
    viewer.add_image(rgb[:, :half], name="reference (left half)", rgb=True)
    target = viewer.add_image(gray, name="section", translate=(0, half + 20))
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-colorize", "Colorize")
    widget.refresh_choices(block=True)
    widget.image.value = target
    widget.model.value = "reference"
    widget.reference.value = viewer.layers["reference (left half)"]
    _wait(widget.run(start=False))
    viewer.layers["section"].visible = False
    viewer.reset_view()
    path = _save(viewer, "colorize_reference.png")
    viewer.close()
    return path


def hints_screenshot(model: str = "beta-punks-hints") -> Path:
    """Colour hints: a punk without and with two hint points (green hair, red lenses)."""
    from napari_colorize.demo import load_demo_sample

    sample = load_demo_sample()
    plane = sample.gray[6]
    viewer = _viewer()
    gray = viewer.add_image(plane, name="punk")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-colorize", "Colorize")
    widget.refresh_choices(block=True)
    widget.image.value = gray
    widget.set_model(model)
    widget.live.value = False
    _wait(widget.run(start=False))
    plain = viewer.layers["punk colorized"]
    plain.name = "no hints"
    plain.metadata = {}  # keep it: the next run makes its own output layer
    points = viewer.add_points(
        HINT_POINTS,
        face_color=HINT_COLOURS,
        size=HINT_SIZE,
        border_width=0.1,
        border_color="white",
        name="hints",
    )
    widget.reset_choices()
    widget.hints.value = points
    _wait(widget.run(start=False))
    hinted = viewer.layers["punk colorized"]
    hinted.name = "with the two hints"
    hinted.translate = (0, 26)
    points.translate = (0, 26)
    gray.visible = False
    viewer.layers.move(viewer.layers.index(points), len(viewer.layers))  # drawn on top
    viewer.reset_view()
    viewer.layers.selection.active = points
    path = _save(viewer, "hints.png")
    viewer.close()
    return path


#: Two hint points on punk 6 of the demo sample: (row, column), colours and diameter.
HINT_POINTS = [[6.0, 12.0], [12.5, 9.5]]
HINT_SIZE = 3.0
HINT_COLOURS = [[0.2, 0.8, 0.3, 1.0], [0.9, 0.15, 0.1, 1.0]]


def lab_screenshot() -> Path:
    """The Lab channels widget on the astronaut: RGB | L | a | b."""
    from napari_colorize.sample_data import gray_photo

    (_gray, _kw, _), (rgb, _tkw, _) = gray_photo()
    viewer = _viewer()
    photo = viewer.add_image(rgb, name="astronaut", rgb=True)
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-colorize", "Lab channels")
    widget.rgb_layer.value = photo
    channels = widget.split()
    order = [photo, *channels]
    for target, layer in enumerate(order):
        viewer.layers.move(viewer.layers.index(layer), target)
    viewer.grid.enabled = True
    viewer.grid.shape = (2, 2)
    viewer.reset_view()
    viewer.layers.selection.active = channels[1]
    path = _save(viewer, "lab_channels.png")
    viewer.close()
    return path


def demo_screenshot(model: str) -> Path:
    """What ``napari-colorize demo --screenshot`` shows."""
    import tempfile

    import imageio.v3 as iio

    from napari_colorize.widgets.demo import run_viewer_demo

    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "demo.png"
        if run_viewer_demo(model=model, screenshot=shot) != 0:
            raise SystemExit("the demo did not colorize the sample")
        return _shrink(iio.imread(shot), "demo.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="beta-punks", help="model for the Colorize shot")
    parser.add_argument(
        "--only", choices=["colorize", "lab", "demo", "hints", "reference"], default=None
    )
    args = parser.parse_args()
    if args.only in (None, "lab"):
        lab_screenshot()
    if args.only in (None, "colorize"):
        colorize_screenshot(args.model)
    if args.only in (None, "demo"):
        demo_screenshot(args.model)
    if args.only in (None, "hints"):
        hints_screenshot()
    if args.only in (None, "reference"):
        reference_screenshot()


if __name__ == "__main__":
    main()
