"""`napari-colorize demo --screenshot`: napari opens, the widget colorizes, a screenshot."""

import numpy as np
import pytest

from napari_colorize import demo


def test_viewer_demo_colorizes_and_saves_a_screenshot(monkeypatch, tiny_checkpoint, tmp_path):
    import imageio.v3 as iio

    from napari_colorize.sample_data import rgb_to_gray
    from napari_colorize.widgets import demo as viewer_demo

    rgb = np.random.default_rng(0).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    sample = demo.DemoSample("punks", rgb_to_gray(rgb), rgb)
    monkeypatch.setattr(viewer_demo, "load_demo_sample", lambda n=64: sample)
    lines = []
    path = tmp_path / "demo.png"
    code = viewer_demo.run_viewer_demo(
        model=str(tiny_checkpoint), device="cpu", screenshot=path, log=lines.append
    )
    assert code == 0, lines
    assert "done: punks colorized" in lines
    shot = iio.imread(path)
    assert shot.shape[0] > 300
    assert shot.shape[1] > 600
    if shot.std() == 0:
        pytest.fail("the screenshot is blank")
