import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from napari_colorize import registry, user_models
from napari_colorize.checkpoint import save_checkpoint
from napari_colorize.cli import main


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setattr(user_models, "_user_models", None)
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NAPARI_COLORIZE_DATA", str(tmp_path / "data"))


@pytest.fixture
def cli_model(tmp_path):
    path = save_checkpoint(
        tmp_path / "cli-test.safetensors",
        {"w": torch.ones(3, 3)},
        arch="tiny-cli",
        data={"spec": "punks:train"},
        metrics={"ciede2000": 4.5, "psnr": float("nan")},
    )
    registry.register_model("cli-test", path, description="for the CLI test", persist=True)
    return path


def test_models_json_lists_the_test_model(cli_model, capsys):
    assert main(["models", "--json"]) == 0
    rows = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    row = rows["cli-test"]
    assert row["arch"] == "tiny-cli"
    assert row["source"] == "path"
    assert row["size"] == cli_model.stat().st_size
    assert row["data"] == {"spec": "punks:train"}
    assert row["metrics"] == {"ciede2000": 4.5, "psnr": None}  # strict JSON, no NaN
    assert row["available"] is True
    assert rows["eccv16"]["available"] is False


def test_models_shows_cards(cli_model, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("cli-test"))
    assert "tiny-cli" in lines[start]
    assert "path" in lines[start]
    card = "\n".join(lines[start : start + 8])
    assert "for:          CryptoPunks 24x24 pixel art only" in card
    assert "input:        24x24 images" in card
    assert "ciede2000 4.5" in card
    eccv = "\n".join(lines[next(i for i, x in enumerate(lines) if x.startswith("eccv16 ")) :])
    assert "natural photographs" in eccv
    assert "download:     129.0 MB" in eccv
    assert "downloaded on first use" in out.err


def test_models_by_name_and_json_cards(cli_model, capsys):
    assert main(["models", "beta-punks", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    card = row["card"]
    assert card["purpose"] == "CryptoPunks 24x24 pixel art only"
    assert card["image_size"] == 24
    assert card["working_size"] == "24 px for images up to 96 px, else 256 px"
    assert card["figures"]["ciede2000_fg"] > 0
    assert card["download_size"] == row["size"]
    assert main(["models", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_models_lists_training_free_methods(cli_model, capsys, monkeypatch):
    from napari_colorize import cards

    monkeypatch.setattr(cards, "_METHOD_CARDS", {})
    cards.register_method_card("propagate", purpose="any image", needs="colour hints")
    assert main(["models", "propagate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("propagate  (training-free method)")
    assert "no weights, nothing to download" in out


def test_console_script_models_json(cli_model, tmp_path):
    script = Path(sys.executable).with_name("napari-colorize")
    assert script.is_file(), "install the package into the venv (pip install -e .)"
    out = subprocess.run(
        [str(script), "models", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
        timeout=120,
    )
    rows = {m["name"]: m for m in json.loads(out.stdout)}
    assert rows["cli-test"]["path"] == str(cli_model.resolve())
    assert "eccv16" in rows


def test_models_does_not_import_torch(cli_model):
    code = (
        "import sys; from napari_colorize.cli import main; main(['models', '--json']);"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "cli-test" in out.stdout
    assert out.stderr.strip().endswith("False")
