"""Scribbled hints: shapes and labels on an image's pixel grid, and spread by propagate."""

import numpy as np
import pytest

import napari_colorize
from napari_colorize.color import AB_SCALE, lab_to_rgb, rgb_to_lab
from napari_colorize.hints import HintSource, PointHints
from napari_colorize.inference import Colorizer
from napari_colorize.scribbles import LabelHints, ShapeHints

RED_AB = (60.0, 40.0)
BLUE_AB = (10.0, -50.0)
RED, BLUE = lab_to_rgb(np.array([[50.0, *RED_AB], [50.0, *BLUE_AB]]))
WHITE = (1.0, 1.0, 1.0)
CLEAR = (0.0, 0.0, 0.0, 0.0)


def _two_levels(h=40, w=60):
    """Gray in [0, 1]: dark left half, bright right half."""
    gray = np.full((h, w), 0.3, np.float32)
    gray[:, w // 2 :] = 0.7
    return gray


def painted(hints):
    ys, xs = np.nonzero(hints[..., 2])
    return set(zip(ys.tolist(), xs.tolist()))


def _ab(rgb):
    return rgb_to_lab(np.asarray(rgb, float)[:3])[1:] / AB_SCALE


def _assert_red_and_blue_halves(rgb, w=60):
    ab = rgb_to_lab(rgb)[..., 1:]
    assert ab[:, : w // 2 - 5, 0].mean() > 30.0  # red: a > 0
    assert ab[:, w // 2 + 5 :, 1].mean() < -25.0  # blue: b < 0


# ------------------------------------------------------------------ shapes


def test_a_stroke_and_a_filled_polygon_colour_the_two_halves():
    gray = _two_levels()
    stroke = [[5, 5], [35, 10], [20, 20]]  # a red path in the dark half
    polygon = [[10, 40], [10, 55], [30, 50]]  # a blue triangle in the bright one
    hints = ShapeHints(
        [stroke, polygon], ["path", "polygon"], [RED, WHITE], [WHITE, BLUE], 2, gray.shape
    )
    assert isinstance(hints, HintSource)
    assert len(hints) == 2
    assert hints.n_ignored == 0
    maps = hints.plane()
    np.testing.assert_allclose(maps[20, 8, :2], _ab(RED), atol=1e-5)  # on the stroke
    np.testing.assert_allclose(maps[15, 48, :2], _ab(BLUE), atol=1e-5)  # inside the triangle
    assert maps[5, 30, 2] == 0  # elsewhere: no hint
    out = napari_colorize.colorize(gray, model="propagate", hints=hints, value_range=(0, 1))
    _assert_red_and_blue_halves(out)
    # RGB and RGBA rows mixed, a transparent face: the same hints
    mixed = ShapeHints(
        [stroke, polygon], ["path", "polygon"], [RED, CLEAR], [CLEAR, BLUE], 2, gray.shape
    )
    np.testing.assert_array_equal(mixed.plane(), maps)


def test_stroke_width_is_in_world_units_on_non_square_pixels():
    # pixels 2 world units tall, 1 wide: a horizontal stroke 6 wide covers 3 rows
    hints = ShapeHints(
        [[[20, 4], [20, 16]]], "line", RED, WHITE, 6, (20, 30), scale=(2, 1), translate=(0, 0)
    )
    rows = {y for y, _ in painted(hints.plane())}
    assert rows == {9, 10, 11}
    # a vertical stroke 6 wide covers 7 columns (round ends reach 1.5 rows beyond)
    hints = ShapeHints([[[10, 10], [30, 10]]], "line", RED, WHITE, 6, (20, 30), scale=(2, 1))
    cols = {x for _, x in painted(hints.plane())}
    rows = {y for y, _ in painted(hints.plane())}
    assert cols == set(range(7, 14))
    assert rows == set(range(4, 17))


def test_shapes_follow_the_image_translate_and_stay_inside_it():
    square = [[10, 10], [10, 13], [13, 13], [13, 10]]
    plain = painted(ShapeHints([square], "rectangle", WHITE, RED, 1, (20, 20)).plane())
    moved = ShapeHints([square], "rectangle", WHITE, RED, 1, (20, 20), translate=(5, -2))
    assert painted(moved.plane()) == {(y - 5, x + 2) for y, x in plain}
    assert plain == {(y, x) for y in range(10, 14) for x in range(10, 14)}
    # two rows: opposite corners, as napari's add_rectangles takes them
    two = ShapeHints([[[10, 10], [13, 13]]], "rectangle", WHITE, RED, 1, (20, 20))
    assert painted(two.plane()) == plain
    # a shape outside the image hints nothing and is counted
    far = ShapeHints([square, [[100, 100], [120, 130]]], "path", RED, WHITE, 1, (20, 20))
    assert len(far) == 1
    assert far.n_ignored == 1


def test_an_ellipse_fills_its_inscribed_ellipse():
    corners = [[7, 15], [13, 15], [13, 25], [7, 25]]  # napari's data: centre (10, 20), radii 3, 5
    hints = ShapeHints([corners], "ellipse", WHITE, BLUE, 1, (30, 40))
    yy, xx = np.mgrid[0:30, 0:40]
    inside = ((yy - 10) / 3.0) ** 2 + ((xx - 20) / 5.0) ** 2 <= 1.0
    assert painted(hints.plane()) == set(zip(*map(np.ndarray.tolist, np.nonzero(inside))))
    # centre and radii, as add_ellipses takes them
    same = ShapeHints([[[10, 20], [3, 5]]], "ellipse", WHITE, BLUE, 1, (30, 40))
    np.testing.assert_array_equal(same.plane(), hints.plane())
    # the image's scale squeezes it into pixels: 3 x 5 world units on 2 x 1 pixels
    squeezed = ShapeHints([corners], "ellipse", WHITE, BLUE, 1, (15, 40), scale=(2, 1))
    rows = {y for y, _ in painted(squeezed.plane())}
    assert rows == {4, 5, 6}


def test_transparent_faces_give_outlines_and_thin_strokes_a_connected_line():
    square = [[5, 5], [5, 15], [15, 15], [15, 5]]
    outline = ShapeHints([square], "polygon", RED, CLEAR, 0, (20, 20)).plane()
    cells = painted(outline)
    assert (5, 10) in cells
    assert (10, 5) in cells
    assert (10, 10) not in cells
    np.testing.assert_allclose(outline[5, 10, :2], _ab(RED), atol=1e-5)
    invisible = ShapeHints([square], "polygon", CLEAR, CLEAR, 1, (20, 20))
    assert len(invisible) == 0
    assert invisible.n_ignored == 1
    # a diagonal of width 0: one pixel per row, each touching the next
    diagonal = painted(ShapeHints([[[0, 0], [19, 9.5]]], "line", RED, WHITE, 0, (20, 20)).plane())
    by_row = {}
    for y, x in diagonal:
        by_row.setdefault(y, []).append(x)
    assert sorted(by_row) == list(range(20))
    for y in range(19):
        assert min(abs(a - b) for a in by_row[y] for b in by_row[y + 1]) <= 1


def test_shapes_in_a_stack_hint_their_planes():
    gray = np.stack([_two_levels(), _two_levels()[:, ::-1]])
    # 3D vertices: the stroke on plane 1 only, the polygon on both planes
    stroke = [[1, 5, 5], [1, 35, 10]]
    polygon = [[0, 10, 5], [1, 10, 25], [1, 30, 20]]
    hints = ShapeHints([stroke, polygon], ["path", "polygon"], RED, BLUE, 2, gray.shape)
    assert hints.planes == {(0,), (1,)}
    assert (20, 8) in painted(hints.plane((1,)))
    assert (20, 8) not in painted(hints.plane((0,)))
    stack = hints.stack()
    assert stack.shape == (2, 40, 60, 3)
    np.testing.assert_array_equal(np.asarray(stack)[1], hints.plane((1,)))
    colorizer = Colorizer("propagate", hints=hints, chroma_size=None)
    out = colorizer.colorize(gray, value_range=(0, 1))
    assert out.shape == (2, 40, 60, 3)
    with pytest.raises(ValueError, match="index value"):
        hints.plane((2,))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape_types": "circle"}, "unknown shape type"),
        ({"shapes": [[[1, 1], [2, 2], [3, 3]]], "shape_types": "line"}, "line with 3 vertices"),
        ({"shapes": [[[1, 1], [2, 2]]], "shape_types": "polygon"}, "3 or more"),
        ({"shapes": [[1, 1, 2, 2]]}, r"\(V, D\) world coordinates"),
        ({"edge_colors": [[1, 0]]}, "edge colours must be RGB"),
        ({"face_colors": [[np.nan, 0, 0]]}, "NaN"),
        ({"edge_colors": "red"}, "edge colours must be RGB"),
        ({"edge_widths": -1}, "edge widths"),
        ({"shape_types": ["path", "path"]}, "one per shape"),
        ({"image_shape": (5,)}, "image shape"),
        ({"matrix": np.zeros((3, 3))}, "cannot be inverted"),
    ],
)
def test_bad_shapes_say_what_is_wrong(kwargs, message):
    args = {
        "shapes": [[[1, 1], [5, 5]]], "shape_types": "path", "edge_colors": RED,
        "face_colors": WHITE, "edge_widths": 1, "image_shape": (10, 10),
    }  # fmt: skip
    args.update(kwargs)
    matrix = args.pop("matrix", None)
    with pytest.raises(ValueError, match=message):
        ShapeHints(**args, matrix=matrix)


# ------------------------------------------------------------------ labels


def _two_labels(shape=(40, 60)):
    labels = np.zeros(shape, np.uint16)
    labels[15:25, 5:20] = 1
    labels[15:25, 40:55] = 2
    return labels


def test_two_labels_colour_the_two_halves():
    gray = _two_levels()
    labels = _two_labels()
    for colors in ({1: RED, 2: BLUE}, np.array([CLEAR[:3], RED, BLUE])):
        hints = LabelHints(labels, colors, gray.shape)
        maps = hints.plane()
        assert painted(maps) == set(zip(*map(np.ndarray.tolist, np.nonzero(labels))))
        np.testing.assert_allclose(maps[20, 10, :2], _ab(RED), atol=1e-5)
        np.testing.assert_allclose(maps[20, 50, :2], _ab(BLUE), atol=1e-5)
    out = napari_colorize.colorize(gray, model="propagate", hints=hints, value_range=(0, 1))
    _assert_red_and_blue_halves(out)


def test_label_colours_from_a_function_and_transparent_labels():
    labels = _two_labels()

    def colormap(values):  # as napari's layer.colormap.map: RGBA rows, 2 transparent
        rgba = np.zeros((len(values), 4))
        rgba[values == 1] = [*RED, 1.0]
        rgba[values == 2] = [*BLUE, 0.0]
        return rgba

    hints = LabelHints(labels, colormap, labels.shape).plane()
    assert painted(hints) == set(zip(*map(np.ndarray.tolist, np.nonzero(labels == 1))))
    # labels beyond the dense table take the other path to the same result
    large = labels.astype(np.int64) * 10_000_000
    big = LabelHints(large, {10_000_000: RED, 20_000_000: BLUE}, labels.shape).plane()
    assert painted(big) == set(zip(*map(np.ndarray.tolist, np.nonzero(labels))))


def test_labels_on_their_own_grid_are_resampled_by_nearest_neighbour():
    labels = np.zeros((10, 10), np.int32)
    labels[2, 3] = 1  # world (2 * 2 + 1, 3 * 2 - 4) = (5, 2) with the labels' transform
    # the image's pixel (r, c) is world (r + 0.5, c * 0.5): pixels 4 and 5 are nearest to 5
    hints = LabelHints(
        labels, {1: RED}, (20, 20), translate=(0.5, 0), scale=(1, 0.5),
        labels_scale=(2, 2), labels_translate=(1, -4),
    )  # fmt: skip
    on_grid = hints.labels_on_grid()
    # label pixel (2, 3) covers world rows [4, 6) and columns [1, 3)
    expected = {
        (y, x) for y in range(20) for x in range(20) if 4 <= y + 0.5 < 6 and 1 <= x * 0.5 < 3
    }
    assert set(zip(*map(np.ndarray.tolist, np.nonzero(on_grid)))) == expected
    assert painted(hints.plane()) == expected
    # the same grid reads the labels directly
    same = LabelHints(labels, {1: RED}, (10, 10), scale=(2, 2), labels_scale=(2, 2))
    assert same._same_grid
    assert painted(same.plane()) == {(2, 3)}


def test_label_stacks_are_read_plane_by_plane():
    gray = np.stack([_two_levels(), _two_levels()])
    labels = np.stack([_two_labels(), np.zeros((40, 60), np.uint16)])
    hints = LabelHints(labels, {1: RED, 2: BLUE}, gray.shape)
    assert hints.planes == {(0,), (1,)}
    assert not hints.plane((1,))[..., 2].any()
    out = Colorizer("propagate", hints=hints, chroma_size=None).colorize(gray, value_range=(0, 1))
    _assert_red_and_blue_halves(out[0])
    assert np.abs(rgb_to_lab(out[1])[..., 1:]).max() < 2.0  # no hints: gray
    # a 2D labels array placed on plane 1 of the stack by its translate
    one = LabelHints(
        _two_labels()[None], {1: RED, 2: BLUE}, gray.shape, labels_translate=(1, 0, 0)
    )
    assert not one.plane((0,))[..., 2].any()
    assert one.plane((1,))[..., 2].any()


@pytest.mark.parametrize(
    ("labels", "colors", "message"),
    [
        (np.ones((10, 10), float), {1: RED}, "must be integers"),
        (np.ones((2, 10, 10), int), {1: RED}, "one axis per image axis"),
        (np.ones((10, 10), int), {2: RED}, r"label\(s\) \[1\] have no colour"),
        (np.full((10, 10), 5), np.array([RED, BLUE]), "no row in the 2 label colours"),
        (np.ones((10, 10), int), np.array(RED), "a mapping"),
        (np.ones((10, 10), int), {1: [1, 0]}, "RGB or RGBA"),
    ],
)
def test_bad_labels_say_what_is_wrong(labels, colors, message):
    with pytest.raises(ValueError, match=message):
        LabelHints(labels, colors, (10, 10)).plane()


def test_point_hints_are_a_hint_source_too():
    gray = _two_levels()
    points = PointHints([[20, 5], [20, 55]], [RED, BLUE], 1.0, gray.shape)
    assert isinstance(points, HintSource)
    assert not isinstance(np.zeros((40, 60, 3)), HintSource)
    out = napari_colorize.colorize(gray, model="propagate", hints=points, value_range=(0, 1))
    _assert_red_and_blue_halves(out)
