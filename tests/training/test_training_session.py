"""TrainingSession: previews of a whole image, registration with listeners, release, resume."""

import numpy as np
import pytest

pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_session_previews_registers_releases_and_resumes(user_dirs):
    from napari_colorize.data.layer_datasets import LayerSource, layer_datasets
    from napari_colorize.registry import list_models
    from napari_colorize.training import PreviewEvent, StepEvent, TrainConfig, TrainResult
    from napari_colorize.training.session import (
        ModelRegisteredEvent,
        TrainingSession,
        add_models_listener,
        remove_models_listener,
    )

    rgb = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    data = layer_datasets([LayerSource("photo", rgb)], 8)
    out = user_dirs / "session-model.safetensors"
    config = TrainConfig(arch="alpha", model_config={"width": 2}, max_steps=4, batch_size=4,
                         device="cpu", amp=False, out=str(out))  # fmt: skip
    heard = []
    add_models_listener(heard.append)
    try:
        session = TrainingSession(config, data.train, data.val, preview_l=data.preview_l,
                                  preview_every=2, register=True)  # fmt: skip
        events = list(session.run())
    finally:
        remove_models_listener(heard.append)
    previews = [e for e in events if isinstance(e, PreviewEvent)]
    assert [e.step for e in previews] == [0, 2, 4]
    assert previews[0].rgb.shape == (24, 8, 3)  # the held-out strip, whole
    assert isinstance(events[-1], TrainResult)
    registered = next(e for e in events if isinstance(e, ModelRegisteredEvent))
    assert registered.name == "session-model"
    assert heard == ["session-model"]
    assert "session-model" in [m["name"] for m in list_models()]
    assert session.trainer is None

    longer = TrainConfig(arch="alpha", max_steps=6, batch_size=4, device="cpu", out=str(out))
    resumed = TrainingSession(longer, data.train, data.val, resume=True)
    steps = [e.step for e in resumed.run() if isinstance(e, StepEvent)]
    assert steps == [5, 6]


def test_session_refuses_bad_names_and_missing_resume(user_dirs):
    from napari_colorize.training import TrainConfig
    from napari_colorize.training.session import TrainingSession

    config = TrainConfig(arch="alpha", max_steps=1, out=str(user_dirs / "x.safetensors"))
    with pytest.raises(ValueError, match="built-in model"):
        TrainingSession(config, None, register=True, model_name="beta-punks")
    with pytest.raises(ValueError, match="invalid model name"):
        TrainingSession(config, None, register=True, model_name="a b")
    with pytest.raises(ValueError, match="nothing to resume"):
        TrainingSession(config, None, resume=True)
