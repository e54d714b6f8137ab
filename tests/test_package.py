import subprocess
import sys

import napari_colorize

HEAVY = ("torch", "PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy", "napari", "magicgui")


def test_version_is_a_string():
    assert isinstance(napari_colorize.__version__, str)
    assert napari_colorize.__version__.count(".") >= 2


def test_import_loads_neither_torch_nor_qt():
    code = (
        "import sys, napari_colorize, napari_colorize.color, napari_colorize.errors;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_console_script_help_runs():
    out = subprocess.run(
        [sys.executable, "-m", "napari_colorize.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "napari-colorize" in out.stdout
    assert "models" in out.stdout
