"""The method chosen for an image when the user names none."""

import pytest

from napari_colorize import choice


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))


def test_punks_sized_images_get_the_punks_models(empty_cache):
    assert choice.default_method((24, 24)) == "beta-punks"
    assert choice.default_method((3, 96, 80)) == "beta-punks"  # leading axes ignored
    assert choice.default_method((24, 24), hints=True) == "beta-punks-hints"


def test_a_reference_wins_and_hints_propagate_offline(empty_cache):
    assert choice.default_method((2000, 3000), reference=True) == "reference"
    assert choice.default_method((2000, 3000), hints=True) == "propagate"


def test_a_photo_with_nothing_stops_with_the_options(empty_cache):
    with pytest.raises(choice.NoMethodError) as info:
        choice.default_method((512, 768))
    message = str(info.value)
    for option in ("512x768", "--reference", "--model propagate --hints", "eccv16", "MB"):
        assert option in message
    assert choice.suggest_method((512, 768)) == choice.PHOTO_MODEL  # a menu offers the download


def test_a_downloaded_photo_model_is_used(empty_cache, monkeypatch):
    import napari_colorize.registry as registry

    monkeypatch.setattr(registry, "needs_download", lambda name: name != "eccv16")
    assert choice.default_method((512, 768)) == "eccv16"
    assert choice.default_method((512, 768), hints=True) == "eccv16"  # siggraph17 not here
