"""Make the pictures of docs/which_method.md: gray, each method, truth, with their errors.

Run from the repository root (offline; the CryptoPunks are read from the
package's cache, see :func:`napari_colorize.data.punks.load_punks`):

    .venv/bin/python scripts/which_method_figures.py

Writes ``docs/images/which_method_{photo,tissue,punk}.png`` (one row of panels
each, under 300 KB) and prints each panel's mean CIEDE2000 as a markdown table.
The photo and the section follow the any-image benchmark's protocol
(``benchmarks/any_image.py``): reference = the left half in colour, the gray
right half colorized, its colour the truth; hints are 20 true-colour pixels at
random places (seed 0), drawn as dots on the gray panel. Look at the pictures
before committing.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not installed
    sys.path.insert(0, str(ROOT))

from benchmarks import any_image as bench  # noqa: E402

#: Panels are at least this high and wide (pixels), with a caption strip under them.
PANEL_HEIGHT = 192
PANEL_WIDTH = 150
CAPTION = 38
MAX_BYTES = 300_000
#: The test punk shown, and how many train punks make its reference.
PUNK = 3
PUNK_REFERENCES = 200
N_HINTS = 20


def methods(gray, left, right, *, punks_model=False):
    """``[(label, rgb)]``: gray, each method that applies, truth; and the hints used."""
    import napari_colorize

    hints = bench.random_hints(right, N_HINTS, seed=0)
    panels = [
        (f"gray + {N_HINTS} hints", bench.gray_rgb(gray)),
        ("reference", napari_colorize.colorize(gray, reference=left)),
        ("propagate", napari_colorize.colorize(gray, model="propagate", hints=hints)),
    ]
    if punks_model:
        panels.append(("beta-punks", napari_colorize.colorize(gray, model="beta-punks")))
    panels.append(("lookup table", bench.colorize_module(gray, bench.lookup_table(left))))
    panels.append(("truth", right))
    return panels, hints


def punk_inputs():
    """(gray, reference stack, truth) of one test punk; the reference: train punks."""
    from napari_colorize.data.punks import load_punks

    truth = load_punks("test").rgb[PUNK]
    reference = load_punks("train").rgb[:PUNK_REFERENCES]
    return bench.gray_of(truth), reference, truth


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _panel(rgb):
    from PIL import Image

    image = Image.fromarray(rgb)
    height = max(PANEL_HEIGHT, -(-PANEL_WIDTH * rgb.shape[0] // rgb.shape[1]))
    width = round(rgb.shape[1] * height / rgb.shape[0])
    small = rgb.shape[0] < 64  # pixel art keeps its pixels
    return image.resize((width, height), Image.NEAREST if small else Image.LANCZOS)


def _dots(image, hints, truth, scale: float) -> None:
    """Each hint as a dot of its true colour, ringed in white."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    for disc in hints.discs:
        colour = tuple(int(v) for v in truth[round(disc.center[0]), round(disc.center[1])])
        r, c = (disc.center + 0.5) * scale
        radius = 4
        draw.ellipse([c - radius, r - radius, c + radius, r + radius], fill=colour,
                     outline=(255, 255, 255))  # fmt: skip


def figure(panels, truth, hints, path: Path) -> dict[str, float]:
    """One row of captioned panels written to ``path``; returns each panel's error."""
    from PIL import Image, ImageDraw

    errors, images = {}, []
    for label, rgb in panels:
        image = _panel(rgb)
        if label.startswith("gray"):
            _dots(image, hints, truth, image.height / rgb.shape[0])
        errors[label] = bench.score(rgb, truth)
        images.append((label, image))
    gap = 6
    width = sum(im.width for _, im in images) + gap * (len(images) - 1)
    height = images[0][1].height
    sheet = Image.new("RGB", (width, height + CAPTION), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for label, image in images:
        sheet.paste(image, (x, 0))
        note = "" if label == "truth" else f"CIEDE2000 {errors[label]:.1f}"
        draw.text((x + 3, height + 3), label, fill="black", font=_font(13))
        draw.text((x + 3, height + 20), note, fill=(90, 90, 90), font=_font(13))
        x += image.width + gap
    sheet.save(path, optimize=True)
    if path.stat().st_size > MAX_BYTES:  # a palette keeps the file small
        sheet.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    return errors


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    cases = {}
    for key, name in (("photo", "chelsea"), ("tissue", "immunohistochemistry")):
        left, right = bench.halves(bench.load_image(name))
        panels, hints = methods(bench.gray_of(right), left, right)
        cases[key] = (panels, right, hints)
    gray, reference, truth = punk_inputs()
    panels, hints = methods(gray, list(reference), truth, punks_model=True)
    cases["punk"] = (panels, truth, hints)
    for key, (panels, truth, hints) in cases.items():
        path = OUT / f"which_method_{key}.png"
        errors = figure(panels, truth, hints, path)
        print(f"\n{path.relative_to(ROOT)} ({path.stat().st_size // 1000} KB)\n")
        print("| " + " | ".join(errors) + " |")
        print("|" + " ---: |" * len(errors))
        print("| " + " | ".join(f"{e:.2f}" for e in errors.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
