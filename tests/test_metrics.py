import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from napari_colorize import metrics

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation
# notes, supplementary test data, and mathematical observations", Table 1 (pairs 1-4,
# 7, 9, 11, 15, 17-20, 25, 29, 32, 34).
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0009), 7.1792),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0011), 7.2195),
    ((50.0, -0.0010, 2.4900), (50.0, 0.0011, -2.4900), 4.7461),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def _rgb(n=4, h=12, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(("lab1", "lab2", "expected"), SHARMA)
def test_ciede2000_sharma(lab1, lab2, expected):
    assert metrics.ciede2000(np.array(lab1), np.array(lab2)) == pytest.approx(expected, abs=1e-4)
    # symmetric
    assert metrics.ciede2000(np.array(lab2), np.array(lab1)) == pytest.approx(expected, abs=1e-4)


def test_ciede2000_batch_mean_and_mask():
    lab1 = np.array([p[0] for p in SHARMA]).reshape(2, 8, 3)
    lab2 = np.array([p[1] for p in SHARMA]).reshape(2, 8, 3)
    expected = np.array([p[2] for p in SHARMA]).reshape(2, 8)
    assert metrics.ciede2000(lab1, lab2) == pytest.approx(expected.mean(), abs=1e-4)
    mask = np.zeros((2, 8), bool)
    mask[0, :3] = True
    assert metrics.ciede2000(lab1, lab2, mask) == pytest.approx(expected[0, :3].mean(), abs=1e-4)
    assert math.isnan(metrics.ciede2000(lab1, lab2, np.zeros((2, 8), bool)))
    with pytest.raises(ValueError, match="pixel shape"):
        metrics.ciede2000(lab1, lab2, mask[0])


def test_identical_images_are_perfect():
    rgb = _rgb()
    r = metrics.report(rgb, rgb)
    assert r["ciede2000"] == 0.0
    assert r["ciede2000_fg"] == 0.0
    assert r["psnr"] == metrics.PSNR_MAX  # capped, not inf
    assert r["ssim"] == pytest.approx(1.0)
    assert r["auc"] == pytest.approx(1.0)
    assert r["colorfulness"] == pytest.approx(r["colorfulness_true"])


def test_report_keys_exactly_seven():
    rgb = _rgb()
    assert tuple(metrics.report(rgb, _rgb(seed=1))) == metrics.REPORT_KEYS
    assert set(metrics.REPORT_KEYS) == {
        "ciede2000",
        "ciede2000_fg",
        "psnr",
        "ssim",
        "colorfulness",
        "colorfulness_true",
        "auc",
    }


def test_dtypes_and_single_image_agree():
    a, b = _rgb(n=2), _rgb(n=2, seed=1)
    r8 = metrics.report(a, b)
    rf = metrics.report(a / 255.0, b.astype(np.float32) / 255)
    r16 = metrics.report(a.astype(np.uint16) * 257, b.astype(np.uint16) * 257)
    for key in metrics.REPORT_KEYS:
        assert rf[key] == pytest.approx(r8[key], rel=1e-5, abs=1e-6)
        assert r16[key] == pytest.approx(r8[key], rel=1e-9)
    single = metrics.report(a[0], b[0])
    assert single["psnr"] == pytest.approx(metrics.psnr(a[:1], b[:1]))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        metrics.report(a[..., :2], b[..., :2])
    with pytest.raises(ValueError, match="same shape"):
        metrics.report(a, b[:1])
    with pytest.raises(ValueError, match="dtype"):
        metrics.psnr(a.astype(np.int32), b.astype(np.int32))


def test_psnr_known_value_per_image_mean():
    t = np.zeros((2, 8, 8, 3))
    p = t.copy()
    p[0] += 0.1  # mse 0.01 -> 20 dB
    p[1] += 0.01  # mse 1e-4 -> 40 dB
    assert metrics.psnr(p, t) == pytest.approx(30.0)


def test_ssim_matches_skimage_including_small_images():
    rng = np.random.default_rng(3)
    for shape in [(24, 24), (9, 13), (5, 6), (3, 4)]:
        a, b = rng.random((2, *shape, 3)), rng.random((2, *shape, 3))
        win = min(7, *shape)
        win -= 1 - win % 2
        expected = np.mean(
            [
                structural_similarity(a[i], b[i], channel_axis=-1, data_range=1.0, win_size=win)
                for i in range(2)
            ]
        )
        assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="at least 3x3"):
        metrics.ssim(np.zeros((1, 2, 5, 3)), np.zeros((1, 2, 5, 3)))


def test_colorfulness():
    gray = np.repeat(_rgb(n=3)[..., :1], 3, axis=-1)
    assert metrics.colorfulness(gray) == pytest.approx(0.0)
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5, no spread
    assert metrics.colorfulness(red) == pytest.approx(0.3 * math.hypot(255, 127.5))
    half = np.zeros((1, 2, 2, 3))
    half[0, 0, :, 0] = 1.0  # two red pixels, two black: rg in {255, 0}, yb in {127.5, 0}
    expected = math.hypot(127.5, 63.75) + 0.3 * math.hypot(127.5, 63.75)
    assert metrics.colorfulness(half) == pytest.approx(expected)


def test_ab_auc():
    ab = np.zeros((2, 5, 5, 2))
    assert metrics.ab_auc(ab, ab) == pytest.approx(1.0)
    off = ab.copy()
    off[..., 0] = 75.0  # every error is 75: the CDF steps from 0 to 1 between 74 and 75
    assert metrics.ab_auc(off, ab) == pytest.approx(75.5 / 150)
    far = ab + 200.0
    assert metrics.ab_auc(far, ab) == 0.0
    mask = np.zeros((2, 5, 5), bool)
    mask[0, 0, 0] = True
    both = np.where(mask[..., None], far, ab)
    assert metrics.ab_auc(both, ab, mask=~mask) == pytest.approx(1.0)
    assert metrics.ab_auc(both, ab, mask=mask) == 0.0
    with pytest.raises(ValueError, match="increasing"):
        metrics.ab_auc(ab, ab, thresholds=[3, 1])


def test_alpha_restricts_ciede2000_fg():
    truth = _rgb(n=2)
    pred = truth.copy()
    alpha = np.zeros(truth.shape[:3], np.uint8)
    alpha[:, :4] = 255
    pred[:, 4:] = 255 - pred[:, 4:]  # wrong only in the background
    r = metrics.report(pred, truth, alpha)
    assert r["ciede2000_fg"] == 0.0
    assert r["ciede2000"] > 1.0
    assert metrics.report(pred, truth)["ciede2000_fg"] == r["ciede2000"]
    assert math.isnan(metrics.report(pred, truth, np.zeros_like(alpha))["ciede2000_fg"])


def test_scores_concat_subset_and_breakdown():
    a, b = _rgb(n=6), _rgb(n=6, seed=2)
    alpha = np.random.default_rng(4).integers(0, 2, a.shape[:3])
    whole = metrics.report(a, b, alpha)
    parts = [metrics.score_images(a[i : i + 2], b[i : i + 2], alpha[i : i + 2]) for i in (0, 2, 4)]
    scores = metrics.ImageScores.concat(parts)
    assert len(scores) == 6
    for key in metrics.REPORT_KEYS:
        assert scores.summary()[key] == pytest.approx(whole[key], rel=1e-12)

    labels = np.array(["x", "y", "x", "y", "y", "z"])
    groups = metrics.breakdown(scores, labels)
    assert list(groups) == ["x", "y", "z"]
    assert groups["y"]["n_images"] == 3
    sel = labels == "y"
    sub = metrics.report(a[sel], b[sel], alpha[sel])
    for key in metrics.REPORT_KEYS:
        assert groups["y"][key] == pytest.approx(sub[key], rel=1e-12)

    member = np.stack([labels == "x", labels != "z", np.zeros(6, bool)], axis=1)
    by_col = metrics.breakdown(scores, member, ["x", "not z", "none"])
    assert list(by_col) == ["x", "not z"]  # empty groups are left out
    assert by_col["x"] == groups["x"]
    with pytest.raises(ValueError, match="membership"):
        metrics.breakdown(scores, labels[:3])
