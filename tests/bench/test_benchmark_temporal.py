"""The temporal benchmark's truth (camera paths, true motion, flicker) and a tiny run of it."""

import numpy as np
import pytest
from benchmarks import temporal as suite
from benchmarks.any_image import load_image
from benchmarks.sequences import flicker, make_sequence

from napari_colorize.temporal import warp


@pytest.fixture(scope="module")
def sequence():
    photos = [load_image("astronaut"), load_image("coffee")]
    return make_sequence(photos, ["astronaut", "coffee"], 6, (48, 64))


def test_the_true_motion_maps_each_frame_onto_the_next(sequence):
    for t in range(1, len(sequence.rgb)):
        truth = sequence.true_flow(t)
        if sequence.photo_of[t] != sequence.photo_of[t - 1]:
            assert truth is None  # no motion across the cut
            continue
        flow, valid = truth
        moved = warp(sequence.gray[t - 1].astype(np.float32), flow)
        still = sequence.gray[t - 1].astype(np.float32)
        error = np.abs(moved - sequence.gray[t] / 0.97)[valid]  # allow the exposure change
        assert np.median(np.abs(moved - sequence.gray[t])[valid]) < np.median(
            np.abs(still - sequence.gray[t])
        )
        assert np.median(error) < 12


def test_flicker_is_zero_for_a_steady_colour_and_grows_with_jumps(sequence):
    steady = np.zeros_like(sequence.rgb)
    steady[...] = (120, 60, 30)
    assert flicker(steady, sequence) == pytest.approx(0.0, abs=1e-3)
    jumping = steady.copy()
    jumping[1::2] = (30, 60, 120)
    assert flicker(jumping, sequence) > 20


def test_a_tiny_run_reports_rows_and_floors():
    settings = suite.Settings(4, (40, 56), (("astronaut", "coffee"),), ("chelsea",), None, 10)
    results = suite.measure(settings)
    methods = [row["method"] for row in results["rows"]]
    assert methods == ["gray", "reference"]
    text = suite.format_report(results, settings, "test", 0.1)
    assert "| reference | astronaut+coffee |" in text
    assert text.count("PASS") + text.count("FAIL") == 2
