"""Colour hints: points to the hint format, hints sampled from truth, hint-aware training."""

import numpy as np
import pytest
import torch

from napari_colorize import registry
from napari_colorize.checkpoint import read_metadata, save_checkpoint
from napari_colorize.color import lab_to_rgb, rgb_to_lab
from napari_colorize.evaluation import evaluate_hints
from napari_colorize.hint_sampling import hint_counts, sample_hints
from napari_colorize.hints import (
    HintStack,
    PointHints,
    data_to_world_matrix,
    model_takes_hints,
    points_to_hints,
)
from napari_colorize.inference import Colorizer
from napari_colorize.models.hint_format import model_accepts_hints
from napari_colorize.training.hints import TASK, HintColorizationTask
from napari_colorize.training.trainer import TrainConfig, Trainer

RED = (1.0, 0.0, 0.0, 1.0)
BLUE = (0.0, 0.0, 1.0, 1.0)


# tiny convs on a shared 2-core machine: a second thread only adds contention
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def ab_of(rgba):
    return (rgb_to_lab(np.asarray(rgba[:3], dtype=float))[1:] / 128.0).astype(np.float32)


def painted(hints):
    ys, xs = np.nonzero(hints[..., 2])
    return set(zip(ys.tolist(), xs.tolist()))


# ------------------------------------------------------------------ points -> hints


def test_a_point_paints_a_disc_of_its_colour():
    hints = points_to_hints([[10, 12]], [RED], 5, (32, 32))
    assert hints.shape == (32, 32, 3)
    assert hints.dtype == np.float32
    disc = {(y, x) for y in range(32) for x in range(32) if (y - 10) ** 2 + (x - 12) ** 2 <= 6.25}
    assert painted(hints) == disc
    np.testing.assert_allclose(hints[10, 12, :2], ab_of(RED), atol=1e-6)
    assert np.all(hints[..., :2][hints[..., 2] == 0] == 0)
    # the colour's lightness does not matter, only its ab: the image keeps its own L
    light, dark = lab_to_rgb(np.array([[70.0, 30.0, 20.0], [40.0, 30.0, 20.0]]))
    both = [points_to_hints([[10, 12]], [c], 5, (32, 32))[10, 12, :2] for c in (light, dark)]
    np.testing.assert_allclose(both, [[30 / 128, 20 / 128]] * 2, atol=1e-3)


def test_layer_scale_and_translate_map_world_points_onto_pixels():
    scale, translate = (2.0, 0.5), (5.0, -3.0)
    # pixel (10, 12) of the image lies at world (10 * 2 + 5, 12 * 0.5 - 3)
    world = [[25.0, 3.0], [5.0 + 2 * 20, -3.0 + 0.5 * 30]]
    hints = points_to_hints(
        world, [RED, BLUE], [2.0, 0.0], (32, 40), scale=scale, translate=translate
    )
    # a disc of diameter 2 world units: 1/2 pixel tall, 2 pixels wide around (10, 12);
    # a zero-size point still marks the pixel it lies in, (20, 30)
    assert painted(hints) == {(10, x) for x in range(10, 15)} | {(20, 30)}
    np.testing.assert_allclose(hints[10, 11, :2], ab_of(RED), atol=1e-6)
    np.testing.assert_allclose(hints[20, 30, :2], ab_of(BLUE), atol=1e-6)
    # the same transform given as a matrix
    matrix = data_to_world_matrix(2, scale, translate)
    again = points_to_hints(world, [RED, BLUE], [2.0, 0.0], (32, 40), matrix=matrix)
    np.testing.assert_array_equal(again, hints)


def test_points_outside_the_image_are_ignored_and_later_points_win():
    ph = PointHints(
        [[-3, 5], [5, 40], [0, 0], [1, 1]], [RED, RED, RED, BLUE], [3, 3, 3, 3], (16, 16)
    )
    assert (len(ph), ph.n_ignored) == (2, 2)
    hints = ph.plane()
    np.testing.assert_allclose(hints[1, 1, :2], ab_of(BLUE), atol=1e-6)  # on top
    np.testing.assert_allclose(hints[0, 0, :2], ab_of(BLUE), atol=1e-6)
    assert hints[0, 3, 2] == 0  # outside both discs (clipped at the border)
    # extra leading world axes (a 3D viewer over a 2D image) are dropped
    np.testing.assert_array_equal(
        points_to_hints([[7.0, 1, 1]], [BLUE], 3, (16, 16)),
        points_to_hints([[1, 1]], [BLUE], 3, (16, 16)),
    )


def test_stack_points_carry_their_plane():
    pts = [[0, 4, 4], [2.2, 8, 8], [1.6, 2, 2], [3, 1, 1]]  # the last: beyond the stack
    stack = points_to_hints(pts, [RED, BLUE, RED, RED], 1, (3, 16, 16))
    assert isinstance(stack, HintStack)
    assert stack.shape == (3, 16, 16, 3)
    assert painted(stack[0]) == {(4, 4)}
    assert painted(stack[(2,)]) == {(8, 8), (2, 2)}  # 1.6 rounds to plane 2
    assert painted(stack[1]) == set()
    assert np.asarray(stack)[..., 2].sum() == 3
    one = points_to_hints(pts, [RED, BLUE, RED, RED], 1, (3, 16, 16), plane=(2,))
    np.testing.assert_array_equal(one, stack[2])


def test_bad_point_input_is_explained():
    with pytest.raises(ValueError, match="one row per point"):
        points_to_hints([[1, 1]], [[1, 0]], 3, (8, 8))
    with pytest.raises(ValueError, match="D >= 3"):
        points_to_hints([[1, 1]], [RED], 3, (2, 8, 8))
    with pytest.raises(ValueError, match="one number or one per point"):
        points_to_hints([[1, 1]], [RED], [3, 4], (8, 8))
    with pytest.raises(ValueError, match="scale of 0"):
        points_to_hints([[1, 1]], [RED], 3, (8, 8), scale=(0, 1))
    assert points_to_hints(np.zeros((0, 2)), np.zeros((0, 4)), [], (8, 8)).sum() == 0


# ------------------------------------------------------------------ hints from truth


def test_sampled_hints_reveal_patch_means_reproducibly():
    rng = np.random.default_rng(0)
    ab = torch.from_numpy(rng.uniform(-0.5, 0.5, (4, 2, 12, 12)).astype(np.float32))
    hints = sample_hints(ab, [0, 1, 3, 10], 7, radius=0)
    assert hints.shape == (4, 3, 12, 12)
    counts = [int(hints[i, 2].sum()) for i in range(4)]
    assert counts[:2] == [0, 1]
    assert 1 <= counts[2] <= 3
    assert 3 <= counts[3] <= 10
    mask = hints[:, 2:3] > 0
    torch.testing.assert_close(hints[:, :2] * mask, ab * mask)  # 1-pixel patches: the truth
    torch.testing.assert_close(sample_hints(ab, [0, 1, 3, 10], 7, radius=0), hints)
    assert not torch.equal(sample_hints(ab, [0, 1, 3, 10], 8, radius=0), hints)
    # a 3x3 patch reveals the mean of its 9 true pixels over all 9
    flat = torch.zeros(1, 2, 9, 9)
    flat[0, 0, 3:6, 3:6] = torch.arange(9.0).reshape(3, 3) / 10
    one = sample_hints(flat, 1, torch.Generator().manual_seed(0), radius=1)
    ys, xs = torch.nonzero(one[0, 2], as_tuple=True)
    assert len(ys) in (4, 6, 9)  # clipped at the border or not
    cy, cx = int(ys.float().mean().round()), int(xs.float().mean().round())
    if len(ys) == 9:
        expected = flat[0, 0, cy - 1 : cy + 2, cx - 1 : cx + 2].mean()
        torch.testing.assert_close(one[0, 0, ys, xs], expected.expand(9))
    # numpy in, numpy out
    out = sample_hints(ab.numpy(), 2, 0, radius=(0, 2))
    assert isinstance(out, np.ndarray)
    assert out.shape == (4, 3, 12, 12)


def test_hint_positions_follow_weights():
    ab = torch.rand(2, 2, 6, 6) - 0.5
    weights = torch.zeros(2, 6, 6)
    weights[0, 1, 2] = 1.0  # image 0: only pixel (1, 2); image 1: all zero -> uniform
    hints = sample_hints(ab, [5, 30], 0, radius=0, weights=weights)
    assert torch.nonzero(hints[0, 2]).tolist() == [[1, 2]]
    assert int(hints[1, 2].sum()) > 10
    with pytest.raises(ValueError, match="weights"):
        sample_hints(ab, 1, 0, weights=-weights - 1)


def test_hint_counts_are_geometric():
    counts = hint_counts(20_000, 0.125, 0)
    assert abs(float(counts.float().mean()) - 7.0) < 0.3
    assert abs(float((counts == 0).float().mean()) - 0.125) < 0.01
    assert int(hint_counts(100, 0.5, 0, max_hints=2).max()) <= 2
    assert int(hint_counts(10, 1.0, 0).sum()) == 0
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        hint_counts(3, 0.0)


# ------------------------------------------------------------------ hint-aware models


def test_own_architectures_take_hints_through_their_configs():
    x = torch.zeros(2, 1, 16, 16)
    hints = sample_hints(torch.rand(2, 2, 16, 16) - 0.5, 3, 0)
    beta = registry.build_model("beta", {"widths": [4, 8], "in_channels": 4})
    full = registry.build_model(
        "full", {"beta": {"widths": [4, 8], "in_channels": 4}, "classifier_source": None}
    )
    assert model_accepts_hints(beta)
    assert model_accepts_hints(full)
    assert not model_accepts_hints(registry.build_model("beta", {"widths": [4, 8]}))
    beta.eval()
    assert beta(x, hints).shape == (2, 2, 16, 16)
    assert not torch.equal(beta(x, hints), beta(x))  # the hints reach the network
    # ab where the mask is 0 is no hint
    noisy = hints.clone()
    noisy[:, :2] += (noisy[:, 2:3] == 0) * 0.7
    torch.testing.assert_close(beta(x, noisy), beta(x, hints))
    with pytest.raises(ValueError, match="mask"):
        beta(x, hints * 2)


def test_local_hints_change_colours_only_near_a_hint_and_by_its_disagreement():
    with pytest.raises(ValueError, match="local_hints"):
        registry.build_model("beta", {"widths": [4, 8], "local_hints": True})
    torch.manual_seed(0)
    model = registry.build_model(
        "beta", {"widths": [4, 8], "in_channels": 4, "local_hints": True}
    ).eval()
    x = torch.rand(1, 1, 48, 48) * 2 - 1
    with torch.no_grad():
        alone = model(x)
        hints = torch.zeros(1, 3, 48, 48)
        hints[0, :2, 2, 3] = alone[0, :, 2, 3]  # a hint that agrees with the prediction
        hints[0, 2, 2, 3] = 1.0
        torch.testing.assert_close(model(x, hints), alone)
        hints[0, :2, 2, 3] = torch.tensor([0.4, -0.2])
        hinted = model(x, hints)  # the hinted pixel takes the hint's colour
        torch.testing.assert_close(hinted[0, :, 2, 3], torch.tensor([0.4, -0.2]))
        bias = torch.zeros(9)
        bias[3] = 9.0  # all weight on the plain 15-pixel spread
        model.hint_branch.out.bias.copy_(bias)
        hinted = model(x, hints)
        torch.testing.assert_close(model(x), alone)  # no hints: the prediction from L
    changed = (hinted - alone).abs().sum(1)[0] > 1e-6
    reach = model.hint_branch.reach
    assert changed[2, 3]
    assert changed[2 + reach, 3 + reach]
    assert not changed[2 + reach + 1 :].any()
    assert not changed[:, 3 + reach + 1 :].any()
    gap = torch.tensor([0.4, -0.2]) - alone[0, :, 2, 3]
    assert float((hinted - alone).abs().amax()) <= float(gap.abs().max()) + 1e-5


def test_bilateral_spreads_follow_the_hinted_lightness():
    torch.manual_seed(0)
    model = registry.build_model(
        "beta", {"widths": [4, 8], "in_channels": 4, "local_hints": True}
    ).eval()
    x = torch.full((1, 1, 16, 16), -0.5)
    x[..., 8:] = 0.7  # a lighter region on the right
    hints = torch.zeros(1, 3, 16, 16)
    hints[0, :2, 8, 6] = torch.tensor([0.5, 0.5])
    hints[0, 2, 8, 6] = 1.0
    bias = torch.zeros(9)
    bias[4 + 3] = 9.0  # all weight on the bilateral 15-pixel spread
    with torch.no_grad():
        model.hint_branch.out.bias.copy_(bias)
        alone, hinted = model(x), model(x, hints)
    changed = (hinted - alone).abs().sum(1)[0] > 1e-3
    assert changed[8, :8].all()  # the hint's own region, as far as the spread reaches
    assert not changed[:, 8:].any()  # nothing across the lightness edge


def test_a_beta_model_is_the_prior_of_a_local_hints_model(tmp_path):
    from napari_colorize.training.hints import load_prior

    torch.manual_seed(0)
    plain = registry.build_model("beta", {"widths": [4, 8]}).eval()
    path = tmp_path / "plain.safetensors"
    save_checkpoint(path, plain.state_dict(), arch="beta", config=plain.config.to_dict())
    hinted = registry.build_model(
        "beta", {"widths": [4, 8], "in_channels": 4, "local_hints": True}
    ).eval()
    load_prior(hinted, path)
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(hinted(x), plain(x))
    wider = registry.build_model(
        "beta", {"widths": [4, 16], "in_channels": 4, "local_hints": True}
    )
    with pytest.raises(ValueError, match="does not fit"):
        load_prior(wider, path)


def test_hint_checkpoints_say_so_in_their_metadata(tmp_path):
    model = registry.build_model("beta", {"widths": [4, 8], "in_channels": 4})
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model.state_dict(), arch="beta", config=model.config,
                    extra={"hints": True})  # fmt: skip
    assert model_takes_hints(path)
    plain = tmp_path / "p.safetensors"
    save_checkpoint(plain, model.state_dict(), arch="beta", config=model.config)
    assert not model_takes_hints(plain)
    assert model_takes_hints("siggraph17")  # from its registry entry, nothing fetched
    assert not model_takes_hints("no-such-model")


def flat_colour_images(n, size, seed):
    """Each image one random vivid colour over a random lightness ramp: L says nothing of ab."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((n, size, size, 3))
    lab[..., 0] = rng.uniform(50, 65, (n, 1, 1)) + np.linspace(-5, 5, size)[None, None, :]
    angle = rng.uniform(0, 2 * np.pi, n)
    lab[..., 1] = (30 * np.cos(angle))[:, None, None]  # chroma 30 at L 45-70: within sRGB
    lab[..., 2] = (30 * np.sin(angle))[:, None, None]
    rgb = lab_to_rgb(lab)
    return (np.round(rgb * 255)).astype(np.uint8)


@pytest.fixture(scope="module")
def hint_trained(tmp_path_factory):
    """A tiny beta trained a few hundred steps with sampled hints on flat-colour images."""
    out = tmp_path_factory.mktemp("hints") / "tiny-hints.safetensors"
    config = TrainConfig(
        arch="beta", model_config={"widths": [8, 16], "in_channels": 4}, task=TASK,
        task_config={"hint_p": 0.2, "hint_radius": [0, 1]}, max_steps=250, batch_size=16,
        lr=1e-2, loss="l1", out=str(out), seed=0, device="cpu", amp=False,
    )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one
    try:
        trainer = Trainer(config, flat_colour_images(256, 16, 0))
        result = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    assert isinstance(trainer.task, HintColorizationTask)
    return out, result


def test_a_hint_aware_model_takes_the_hint_colour_near_the_hint(hint_trained):
    path, _ = hint_trained
    assert read_metadata(path).extra["hints"] is True
    rgb = flat_colour_images(8, 16, 123)  # colours never seen in training
    lab = rgb_to_lab(rgb)
    colorizer = Colorizer(str(path), device="cpu")
    near_with, near_without = [], []
    for i in range(len(rgb)):
        gray = lab[i, ..., 0]
        point_colour = rgb[i, 8, 8] / 255.0
        hints = points_to_hints([[8, 8]], [point_colour], 3, gray.shape)
        colorizer.hints = {"hints": hints}
        ab = colorizer.predict_ab(gray, value_range=(0, 100))
        colorizer.hints = {}
        ab_alone = colorizer.predict_ab(gray, value_range=(0, 100))
        true_ab = lab[i, 8, 8, 1:]
        near = (slice(6, 11), slice(6, 11))  # the hint and a pixel around it
        near_with.append(np.linalg.norm(ab[near] - true_ab, axis=-1).mean())
        near_without.append(np.linalg.norm(ab_alone[near] - true_ab, axis=-1).mean())
    # chroma 30: without the hint the model is ~30 off (it cannot know the hue)
    assert np.mean(near_with) < 12, (near_with, near_without)
    assert np.mean(near_with) < 0.5 * np.mean(near_without)


def test_a_local_hints_model_learns_to_take_the_hint_colour(tmp_path):
    out = tmp_path / "local.safetensors"
    config = TrainConfig(
        arch="beta", model_config={"widths": [8, 16], "in_channels": 4, "local_hints": True},
        task=TASK, task_config={"hint_p": 0.2, "hint_radius": [0, 1]}, max_steps=250,
        batch_size=16, lr=1e-2, loss="mse", out=str(out), seed=0, device="cpu", amp=False,
    )  # fmt: skip
    Trainer(config, flat_colour_images(256, 16, 0)).fit()
    rgb = flat_colour_images(8, 16, 123)
    lab = rgb_to_lab(rgb)
    colorizer = Colorizer(str(out), device="cpu")
    with_hint, without = [], []
    for i in range(len(rgb)):
        gray = lab[i, ..., 0]
        colorizer.hints = {
            "hints": points_to_hints([[8, 8]], [rgb[i, 8, 8] / 255.0], 3, gray.shape)
        }
        ab = colorizer.predict_ab(gray, value_range=(0, 100))
        colorizer.hints = {}
        ab_alone = colorizer.predict_ab(gray, value_range=(0, 100))
        near = (slice(6, 11), slice(6, 11))
        with_hint.append(np.linalg.norm(ab[near] - lab[i, 8, 8, 1:], axis=-1).mean())
        without.append(np.linalg.norm(ab_alone[near] - lab[i, 8, 8, 1:], axis=-1).mean())
    assert np.mean(with_hint) < 0.5 * np.mean(without), (with_hint, without)


def test_evaluate_hints_falls_as_hints_grow(hint_trained, tmp_path):
    path, _ = hint_trained
    from skimage.io import imsave

    for i, img in enumerate(flat_colour_images(6, 16, 7)):
        imsave(tmp_path / f"{i}.png", img, check_contrast=False)
    errors = [
        evaluate_hints(path, n, str(tmp_path), seed=0, radius=0)["ciede2000"] for n in (0, 1, 8)
    ]
    assert errors[0] > errors[1] > errors[2], errors
    plain = registry.build_model("beta", {"widths": [4, 8]})
    with pytest.raises(ValueError, match="takes no hints"):
        evaluate_hints(plain, 1, str(tmp_path))


def test_recolouring_changes_one_colour_and_hints_it():
    from napari_colorize.training.hints import HintSampler, recolor

    ab = torch.zeros(6, 2, 8, 8)
    ab[:, 0, :4] = 0.3  # two colours: reddish top, gray bottom
    target, (images, ys, xs) = recolor(ab, 1.0, torch.Generator().manual_seed(0))
    assert images.tolist() == list(range(6))
    for i, y, x in zip(images.tolist(), ys.tolist(), xs.tolist()):
        rows = slice(0, 4) if y < 4 else slice(4, 8)
        others = slice(4, 8) if y < 4 else slice(0, 4)
        assert torch.equal(target[i, :, others], ab[i, :, others])  # the other colour kept
        new = target[i, :, y, x]
        assert torch.all(target[i, :, rows] == new[:, None, None])  # the whole colour changed
        assert float(torch.linalg.vector_norm(new - ab[i, :, y, x])) > 10 / 128
    sampler = HintSampler(hint_p=1.0, recolor=1.0)  # no random hints: only the forced one
    hints, target = sampler(ab, torch.Generator().manual_seed(1))
    assert torch.equal(hints[:, 2].sum((1, 2)), torch.ones(6))
    mask = hints[:, 2:3] > 0
    torch.testing.assert_close(hints[:, :2] * mask, target * mask)
    assert not torch.equal(target, ab)


def test_training_with_hints_needs_a_hint_aware_model_and_known_options():
    with pytest.raises(ValueError, match="in_channels': 4"):
        HintColorizationTask(registry.build_model("beta", {"widths": [4, 8]}), TrainConfig())
    from napari_colorize.training.hints import hint_task

    model = registry.build_model("beta", {"widths": [4, 8], "in_channels": 4})
    with pytest.raises(ValueError, match="unknown task_config"):
        hint_task(model, TrainConfig(task_config={"hint_q": 1}))


def test_beta_punks_hints_preset():
    from napari_colorize.training.presets import get_preset

    config = get_preset("beta-punks-hints").config()
    assert get_preset("beta-punks-hints").config() == config
    assert config.model_config == {"in_channels": 4, "local_hints": True}
    assert config.task_config["prior"] == "beta-punks"
    assert config.task_config["freeze_prior"]
    assert config.task == TASK
    base = get_preset("beta-punks").config()
    assert (config.batch_size, config.lr) == (base.batch_size, base.lr)
