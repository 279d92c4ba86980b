"""The synthetic scene: dots where the truth says, jitter, occlusion, borders, files."""

import itertools
import json
import os

import numpy as np
import pytest

from goatpose_edge.synthetic import (JOINT_COLOURS, LIMB_COLOUR, FigurePath, SceneError, SceneOptions, crossing,
                                     read_truth, render_scene, single, walkers, write_scene)
from goatpose_edge.synthetic.figure import BACKGROUND_LEVEL
from tests.synthetic.conftest import read_video

COLOURS = np.asarray(JOINT_COLOURS, np.float64)  # [17, 3] BGR


def _centroid(frame, xy, k, radius):
    """Colour-weighted centroid (x, y) of joint k's dot near ``xy`` (frame pixels)."""
    x0, y0 = int(xy[0] - radius - 3), int(xy[1] - radius - 3)
    x0c, y0c = max(x0, 0), max(y0, 0)
    patch = frame[y0c:y0 + int(2 * radius + 7), x0c:x0 + int(2 * radius + 7)].astype(np.float64)
    weight = np.exp(-((patch - COLOURS[k]) ** 2).sum(axis=2) / (2 * 40.0 ** 2))
    ys, xs = np.mgrid[0:patch.shape[0], 0:patch.shape[1]]
    return np.array([(weight * xs).sum() / weight.sum() + x0c, (weight * ys).sum() / weight.sum() + y0c])


def test_palette_is_well_separated():
    assert len(set(JOINT_COLOURS)) == 17
    pairwise = min(np.linalg.norm(a - b) for a, b in itertools.combinations(COLOURS, 2))
    assert pairwise >= 127
    assert COLOURS.max(axis=1).min() == 255  # rims blended toward darker pixels never look like another joint
    assert np.linalg.norm(COLOURS - BACKGROUND_LEVEL, axis=1).min() > 200
    assert np.linalg.norm(COLOURS - np.asarray(LIMB_COLOUR), axis=1).min() > 150


def test_dots_sit_at_the_truth(walkers_scene):
    options, frames = walkers_scene
    exact, errors, visible = 0, [], 0
    for frame, truth in frames[::4]:
        for figure in truth:
            radius = options.radius(options.figures[figure.figure_id])
            for k in np.nonzero(figure.visible)[0]:
                x, y = figure.keypoints[k, :2]
                visible += 1
                exact += int(np.array_equal(frame[int(round(y)), int(round(x))], COLOURS[k]))
                errors.append(np.linalg.norm(_centroid(frame, (x, y), k, radius) - (x, y)))
    assert visible > 250
    assert exact == visible  # the pixel under every visible joint has exactly its colour
    errors = np.asarray(errors)
    assert np.sqrt(np.mean(errors ** 2)) < 0.15  # measured 0.12 px
    assert np.percentile(errors, 90) < 0.2 and errors.max() < 1.2  # 0.11; 1.0 for a dot a quarter cut by the border


def test_truth_is_smooth_and_starts_where_the_path_says():
    path = FigurePath((100.0, 150.0), (2.0, 0.5), height=150.0)
    options = SceneOptions(width=320, height=240, frames=12, figures=[path])
    truth = [t[0] for _, t in render_scene(options)]
    pelvis = np.array([t.keypoints[11:13, :2].mean(axis=0) for t in truth])  # [T, 2] midpoint of the hips
    np.testing.assert_allclose(pelvis[:, 0], 100.0 + 2.0 * np.arange(12), atol=1e-9)
    assert np.abs(pelvis[:, 1] - (150.0 + 0.5 * np.arange(12))).max() <= 0.01 * 150.0 + 1e-9  # only the bob
    ankles = np.array([t.keypoints[15, :2] for t in truth])
    assert np.abs(np.diff(ankles, 2, axis=0)).max() < 3.0  # swinging limbs move smoothly
    assert np.ptp(ankles[:, 0] - pelvis[:, 0]) > 10.0  # ... but they do swing


def test_jitter_moves_the_dots_not_the_truth():
    clean = list(render_scene(single(frames=8, jitter_px=0.0)))
    noisy = list(render_scene(single(frames=8, jitter_px=2.0)))
    again = list(render_scene(single(frames=8, jitter_px=2.0)))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(noisy, again))  # seeded
    shifts = []
    options = single(frames=8)
    radius = options.radius(options.figures[0])
    for (_, truth_clean), (frame, truth_noisy) in zip(clean, noisy):
        np.testing.assert_array_equal(truth_clean[0].keypoints[:, :2], truth_noisy[0].keypoints[:, :2])
        for k in range(17):
            xy = truth_noisy[0].keypoints[k, :2]
            shifts.append(_centroid(frame, xy, k, radius + 6) - xy)
    shifts = np.asarray(shifts)  # [8 * 17, 2]
    rms = np.sqrt(np.mean(shifts ** 2))  # per axis: sigma = 2
    assert 1.6 < rms < 2.4
    assert abs(shifts.mean()) < 0.5


def _own_colour_fraction(frame, xy, k, radius):
    """Fraction of the pixels within radius - 1 of ``xy`` that have exactly joint k's colour."""
    ys, xs = np.mgrid[0:frame.shape[0], 0:frame.shape[1]]
    core = (xs - xy[0]) ** 2 + (ys - xy[1]) ** 2 <= (radius - 1) ** 2
    return np.all(frame[core] == COLOURS[k], axis=1).mean()


def test_figures_apart_show_every_joint_but_crossing_knees():
    frames = list(render_scene(crossing(frames=40)))
    for _, truth in (frames[0], frames[39]):
        assert [figure.visible.sum() >= 16 for figure in truth] == [True, True]


def test_a_nearer_figure_hides_the_farther_ones_dots():
    options = crossing(frames=40)
    radius = [options.radius(path) for path in options.figures]
    hidden, shown = [], []
    for frame, truth in render_scene(options):
        near, far = truth  # figure 0 is taller with lower feet: nearer
        for k in range(17):
            xy = far.keypoints[k, :2]
            if np.linalg.norm(near.keypoints[k, :2] - xy) < radius[0] + radius[1] + 1:
                continue  # the nearer figure's dot of the same joint (same colour) covers it
            if not (radius[1] <= xy[0] <= options.width - 1 - radius[1]):
                continue
            fraction = _own_colour_fraction(frame, xy, k, radius[1])
            (shown if far.visible[k] else hidden).append(fraction)
    # a hidden dot has lost at least a quarter of its pixels; a visible one at most a quarter
    assert len(hidden) >= 20 and max(hidden) < 0.9  # measured 47, max 0.69
    assert len(shown) > 500 and np.percentile(shown, 5) > 0.95
    meeting = list(render_scene(crossing(frames=40)))[19][1]
    assert meeting[0].visible.sum() >= 15 and meeting[1].visible.sum() <= 8  # measured 16 and 6


def test_joints_outside_the_frame_are_not_visible(walkers_scene):
    options, frames = walkers_scene
    entering = frames[0][1][0]  # figure 0 starts at the left border
    x = entering.keypoints[:, 0]
    assert (x < 0).any() and (x >= 0).any()
    assert not entering.visible[x < 0].any()
    for _, truth in frames:
        for figure in truth:
            points = figure.keypoints[figure.visible]
            assert (points[:, 0] >= 0).all() and (points[:, 0] <= options.width - 1).all()
            assert (points[:, 1] >= 0).all() and (points[:, 1] <= options.height - 1).all()


def test_truth_boxes_cover_the_visible_joints(walkers_scene):
    _, frames = walkers_scene
    for figure in frames[10][1]:
        x, y, w, h = figure.box
        points = figure.keypoints[figure.visible, :2]
        assert (points[:, 0] > x).all() and (points[:, 0] < x + w).all()
        assert (points[:, 1] > y).all() and (points[:, 1] < y + h).all()
        assert h > 0.9 * figure.height  # nose to ankles plus padding


def test_figures_appear_and_leave_on_their_frames():
    late = FigurePath((160.0, 120.0), (0.0, 0.0), height=100.0, first_frame=3, last_frame=6)
    truth = [t for _, t in render_scene(SceneOptions(width=320, height=240, frames=8, figures=[late]))]
    assert [len(t) for t in truth] == [0, 0, 0, 1, 1, 1, 0, 0]


@pytest.mark.parametrize("ext", [".avi", ".mp4"])
def test_write_read_round_trip(tmp_path, ext):
    options = single(frames=6, width=320, height=240)
    video, truth_path = str(tmp_path / ("s" + ext)), str(tmp_path / "s.truth.jsonl")
    assert write_scene(video, truth_path, options) == 6
    frames = read_video(video)
    assert len(frames) == 6 and frames[0].shape == (240, 320, 3)
    truth = read_truth(truth_path)
    rendered = [t for _, t in render_scene(options)]
    assert len(truth) == 6
    for back, original in zip(truth, rendered):
        np.testing.assert_allclose(back[0].keypoints, original[0].keypoints, atol=1e-3)
        np.testing.assert_allclose(back[0].box, original[0].box, atol=1e-3)
        assert back[0].figure_id == 0 and back[0].height == original[0].height
    with open(truth_path) as f:
        lines = [json.loads(line) for line in f]
    assert [line["frame"] for line in lines] == list(range(6))
    assert lines[5]["time"] == pytest.approx(5 / 25.0)
    assert sorted(lines[0]["figures"][0]) == ["box", "height", "id", "keypoints"]
    assert sorted(os.listdir(str(tmp_path))) == sorted(["s" + ext, "s.truth.jsonl"])  # no temporary files left


@pytest.mark.parametrize("ext", [".avi", ".mp4"])
def test_compression_keeps_the_dot_colours(walkers_scene, walkers_decoded, ext):
    _, frames = walkers_scene
    errors = []
    for (_, truth), decoded in zip(frames, walkers_decoded[ext]):
        for figure in truth:
            for k in np.nonzero(figure.visible)[0]:
                x, y = figure.keypoints[k, :2]
                errors.append(np.linalg.norm(decoded[int(round(y)), int(round(x))] - COLOURS[k]))
    errors = np.asarray(errors)
    assert len(errors) > 1000
    assert errors.mean() < 12 and errors.max() < 60  # measured mean 7-8, max 25 (MJPG and mp4v)


def test_write_refuses_bad_paths(tmp_path):
    options = single(frames=2, width=320, height=240)
    same = str(tmp_path / "a.avi")
    with pytest.raises(SceneError, match="both be written"):
        write_scene(same, same, options)
    with pytest.raises(SceneError, match=r"\.avi or \.mp4"):
        write_scene(str(tmp_path / "a.mkv"), str(tmp_path / "a.jsonl"), options)
    with pytest.raises(SceneError, match="jsonl"):
        write_scene(same, str(tmp_path / "a.avi.txt"), options)
    assert os.listdir(str(tmp_path)) == []


def test_read_truth_rejects_other_files(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text('{"frame": 0, "time": 0, "persons": []}\n')
    with pytest.raises(SceneError, match="line 1 is not a scene truth record"):
        read_truth(str(path))
    with pytest.raises(SceneError, match="cannot read"):
        read_truth(str(tmp_path / "missing.jsonl"))


def test_bad_options_say_what_to_fix():
    with pytest.raises(SceneError, match="at least 1 frame"):
        SceneOptions(frames=0)
    with pytest.raises(SceneError, match="height must be a positive"):
        FigurePath((0, 0), height=-5)
    with pytest.raises(SceneError, match="hidden_fraction"):
        SceneOptions(hidden_fraction=0.0)


def test_presets_fit_their_frame():
    for preset in (walkers, crossing, single):
        options = preset(frames=20, width=320, height=240)
        assert options.width == 320 and options.height == 240 and options.frames == 20
        frame, truth = next(iter(render_scene(options)))
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
        assert sum(int(t.visible.sum()) for t in truth) >= 17
