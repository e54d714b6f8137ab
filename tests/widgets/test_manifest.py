"""The npe2 manifest: valid, importable, and light (no torch until a run starts)."""

import json
import subprocess
import sys

import numpy as np

PLUGIN = "napari-colorize"


def test_manifest_validates_and_lists_the_contributions():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    manifest.validate_imports()
    widgets = {w.display_name for w in manifest.contributions.widgets}
    assert {"Colorize", "Lab channels"} <= widgets
    samples = {s.key for s in manifest.contributions.sample_data}
    assert {"photo", "punks", "gray16"} <= samples


_NO_TORCH = """
import json, sys
from qtpy.QtWidgets import QApplication
app = QApplication([])
from npe2 import PluginManifest
from napari.components import ViewerModel
manifest = PluginManifest.from_distribution("napari-colorize")
from napari_colorize.widgets.colorize import ColorizeWidget
from napari_colorize.widgets.lab import LabWidget
from napari_colorize import sample_data
viewer = ViewerModel()
ColorizeWidget(viewer, probe=False)
LabWidget(viewer)
for data, kwargs, kind in sample_data.gray_photo() + sample_data.gray16_stack():
    viewer.add_image(data, **kwargs)
print(json.dumps(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))))
"""


def test_manifest_widgets_and_samples_do_not_import_torch():
    result = subprocess.run(
        [sys.executable, "-c", _NO_TORCH], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_samples_open_from_the_viewer_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "gray16")
    layer = viewer.layers["nuclei 16-bit"]
    assert layer.data.dtype == np.uint16
    np.testing.assert_allclose(layer.scale, (0.29, 0.26, 0.26))
