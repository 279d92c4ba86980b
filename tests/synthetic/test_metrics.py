"""Harness metrics on hand-made truth and predictions, where every number is known."""

import json

import numpy as np
import pytest

from goatpose_edge.synthetic import (FigureTruth, MatchOptions, SceneError, lag_frames, match_frame, score_jsonl,
                                     score_predictions, trajectories)

_LAYOUT = np.stack([np.linspace(-20, 20, 17), np.linspace(-80, 80, 17)], axis=1)  # [17, 2], a 160 px figure


def _figure(figure_id, centre, visible=17):
    keypoints = np.zeros((17, 3))
    keypoints[:, :2] = _LAYOUT + np.asarray(centre, np.float64)
    keypoints[:visible, 2] = 1.0
    return FigureTruth(figure_id, keypoints, np.array([centre[0] - 30, centre[1] - 90, 60, 180.0]), 160.0)


def _truth(frames=6):
    """Two figures 200 px apart, walking right at 5 px per frame."""
    return [[_figure(0, (100 + 5 * i, 200)), _figure(1, (300 + 5 * i, 200))] for i in range(frames)]


def _person(figure, offset=(0.0, 0.0), ident=None, score=0.9):
    points = figure.keypoints.copy()
    points[:, :2] += offset
    points[:, 2] = score
    person = {"keypoints": points.tolist(), "score": score}
    if ident is not None:
        person["id"] = ident
    return person


def test_perfect_predictions_offset_by_three_pixels():
    truth = _truth()
    predictions = [[_person(f, (3.0, 0.0), ident=f.figure_id) for f in frame] for frame in truth]
    score = score_predictions(predictions, truth)
    assert (score.frames, score.visible_figures, score.matched, score.predictions) == (6, 12, 12, 12)
    assert score.recall == 1.0 and score.precision == 1.0 and score.id_switches == 0
    assert score.rms_px == pytest.approx(3.0) and score.mean_px == pytest.approx(3.0)
    assert score.score_visible == pytest.approx(0.9) and score.score_hidden is None
    assert score.to_dict()["rms_px"] == 3.0


def test_a_deliberate_id_switch_is_counted_once():
    truth = _truth()
    ids = [5, 5, 5, 9, 9, 9]  # figure 0's track changes id once, at frame 3
    predictions = [[_person(frame[0], ident=ids[i]), _person(frame[1], ident=2)] for i, frame in enumerate(truth)]
    assert score_predictions(predictions, truth).id_switches == 1
    back = [5, 9, 5, 5, 5, 5]  # away and back: two switches, as CLEAR-MOT counts them
    predictions = [[_person(frame[0], ident=back[i]), _person(frame[1], ident=2)] for i, frame in enumerate(truth)]
    assert score_predictions(predictions, truth).id_switches == 2


def test_switches_compare_with_the_last_matched_frame():
    truth = _truth()
    predictions = [[_person(frame[0], ident=5)] if i != 2 else [] for i, frame in enumerate(truth)]
    score = score_predictions(predictions, truth)
    assert score.id_switches == 0 and score.matched == 5  # a gap is a miss, not a switch


def test_no_track_ids_no_switch_count():
    truth = _truth()
    assert score_predictions([[_person(f) for f in frame] for frame in truth], truth).id_switches is None


def test_recall_of_a_missing_person_and_precision_of_a_ghost():
    truth = _truth()
    predictions = [[_person(frame[0])] + ([_person(frame[1])] if i not in (2, 3) else []) for i, frame in
                   enumerate(truth)]
    predictions[0].append(_person(_figure(7, (500, 100))))  # nobody there
    score = score_predictions(predictions, truth)
    assert score.visible_figures == 12 and score.matched == 10
    assert score.recall == pytest.approx(10 / 12.0) and score.precision == pytest.approx(10 / 11.0)


def test_far_predictions_do_not_match():
    truth = _truth(1)
    near = _person(truth[0][0], (0.3 * 160 - 1, 0))
    far = _person(truth[0][0], (0.3 * 160 + 1, 0))  # just beyond max_distance x height
    assert [(p, t) for p, t, _ in match_frame([near], truth[0])] == [(0, 0)]
    assert match_frame([far], truth[0]) == []
    assert len(match_frame([far], truth[0], MatchOptions(max_distance=0.5))) == 1


def test_greedy_matching_takes_the_closest_pair_first():
    figure = _truth(1)[0][0]
    persons = [_person(figure, (10.0, 0.0)), _person(figure, (2.0, 0.0))]
    (p, t, distance), = match_frame(persons, [figure])
    assert (p, t) == (1, 0) and distance == pytest.approx(2.0)


def test_figures_with_few_visible_joints_do_not_count():
    truth = [[_figure(0, (100, 200), visible=3)]]
    assert score_predictions([[]], truth).visible_figures == 0  # nothing to find: no miss
    score = score_predictions([[_person(truth[0][0])]], truth)
    assert score.predictions == 0 and score.precision == 1.0  # ... and finding it is no false positive


def test_hidden_joints_are_not_scored_but_their_scores_are_reported():
    truth = [[_figure(0, (100, 200), visible=12)]]
    person = _person(truth[0][0])
    points = np.asarray(person["keypoints"])
    points[12:, :2] += 50.0  # wrong, but at hidden joints
    points[12:, 2] = 0.05
    person["keypoints"] = points.tolist()
    score = score_predictions([[person]], truth)
    assert score.rms_px == pytest.approx(0.0) and score.score_hidden == pytest.approx(0.05)


def test_min_score_drops_persons():
    truth = _truth(1)
    predictions = [[_person(truth[0][0], score=0.2), _person(truth[0][1], score=0.8)]]
    assert score_predictions(predictions, truth, MatchOptions(min_score=0.5)).matched == 1


def _smooth(t):
    return np.stack([100 + 4.0 * t + 10 * np.sin(t / 3.0), 200 + 6 * np.cos(t / 4.0)], axis=-1)


@pytest.mark.parametrize("shift", [1.0, -0.5, 2.25, 0.0])
def test_lag_of_a_shifted_trajectory(shift):
    t = np.arange(40, dtype=np.float64)
    truth = _smooth(t)
    predicted = _smooth(t - shift)  # the prediction shows where the truth was `shift` frames ago
    assert lag_frames(predicted, truth) == pytest.approx(shift, abs=0.051)


def test_lag_ignores_missing_samples_and_noise():
    t = np.arange(60, dtype=np.float64)
    predicted = _smooth(t - 1.0) + np.random.RandomState(0).randn(60, 2) * 0.5
    predicted[[5, 17, 18, 40]] = np.nan
    assert lag_frames(predicted, _smooth(t)) == pytest.approx(1.0, abs=0.15)


def test_lag_needs_enough_frames():
    with pytest.raises(SceneError, match="at least 3 frames"):
        lag_frames(np.zeros((7, 2)), np.zeros((7, 2)))
    with pytest.raises(SceneError, match="differ in shape"):
        lag_frames(np.zeros((10, 2)), np.zeros((11, 2)))


def test_score_reports_the_lag_of_the_tracks():
    truth = _truth(30)
    predictions = [[_person(frame[k], (-5.0, 0.0) if i else (0.0, 0.0), ident=k) for k in (0, 1)]
                   for i, frame in enumerate(truth)]  # one frame (5 px) behind, from frame 1 on
    score = score_predictions(predictions, truth)
    assert score.lag_frames == pytest.approx(1.0, abs=0.051)
    tracks = trajectories(predictions, truth)
    predicted, true = tracks[0]
    assert predicted.shape == (30, 17, 2) and np.allclose(predicted[1:, :, 0], true[1:, :, 0] - 5.0)


def test_hidden_joints_stay_out_of_the_lag():
    truth = [[_figure(0, (100 + 5 * i, 200), visible=12)] for i in range(30)]
    predictions = []
    for i, frame in enumerate(truth):
        person = _person(frame[0], (-5.0, 0.0))  # one frame behind at the visible joints ...
        points = np.asarray(person["keypoints"])
        points[12:, :2] = 0.0  # ... and garbage (a clamped corner) at the hidden ones
        person["keypoints"] = points.tolist()
        predictions.append([person])
    predicted, _ = trajectories(predictions, truth)[0]
    assert np.isnan(predicted[:, 12:]).all() and np.isfinite(predicted[:, :12]).all()
    assert score_predictions(predictions, truth).lag_frames == pytest.approx(1.0, abs=0.051)


def test_score_jsonl_reads_the_video_command_format(tmp_path):
    truth = _truth(4)
    truth_path = tmp_path / "scene.truth.jsonl"
    with open(str(truth_path), "w") as f:
        for i, frame in enumerate(truth):
            f.write(json.dumps({"frame": i, "time": i / 25.0, "figures": [t.to_dict() for t in frame]}) + "\n")
    run_path = tmp_path / "run.jsonl"
    with open(str(run_path), "w") as f:
        for i, frame in enumerate(truth):
            if i == 2:
                continue  # a dropped frame
            persons = [dict(_person(t, (0.0, 4.0), ident=t.figure_id), box=[0, 0, 1, 1], box_score=1.0)
                       for t in frame]
            f.write(json.dumps({"frame": i, "time": i / 25.0, "persons": persons}) + "\n")
    score = score_jsonl(str(run_path), str(truth_path))
    assert score.frames == 3 and score.missing_frames == 1 and score.matched == 6
    assert score.rms_px == pytest.approx(4.0) and score.id_switches == 0
    run_path.write_text('{"frame": 0}\n')
    with pytest.raises(SceneError, match="line 1 is not a pose JSONL record"):
        score_jsonl(str(run_path), str(truth_path))


def test_person_objects_work_like_dicts():
    class Person:
        def __init__(self, keypoints, track_id):
            self.keypoints, self.track_id = keypoints, track_id

    truth = _truth(2)
    predictions = [[Person(frame[0].keypoints.copy(), 3)] for frame in truth]
    score = score_predictions(predictions, truth)
    assert score.matched == 2 and score.id_switches == 0 and score.rms_px == 0.0
