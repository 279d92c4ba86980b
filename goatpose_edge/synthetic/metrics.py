"""Scoring pipeline output against a synthetic scene's ground truth: detection, keypoint error, identity, lag.

    score = score_jsonl("run.jsonl", "walk.truth.jsonl")       # a `goatpose video --jsonl` file vs write_scene's
    score.recall, score.rms_px, score.id_switches, score.lag_frames
    score = score_predictions(per_frame_persons, read_truth("walk.truth.jsonl"))

Predictions, per frame: a list of persons, each a dict like the JSONL's ({"keypoints": [[x, y, s] * 17], "id": ...})
or an object with ``keypoints`` [17, 3] (``pipeline.Person``) and optionally ``id`` / ``track_id``; keypoints in
frame pixels. A sequence is indexed by frame; a dict maps frame numbers to persons (frames it lacks are not scored
and are counted as ``missing_frames``).

Per frame, persons are matched to truth figures greedily, closest pair first, on the mean distance over the figure's
visible joints, up to ``max_distance`` x the figure's height. A figure counts (for recall) when at least
``min_visible`` joints are visible; a person matched to a figure that does not count is neither a hit nor a false
positive. Identity switches count, per figure, the matched frames whose track id differs from the id at the figure's
previous matched frame (CLEAR-MOT's IDSW). The lag (``lag_frames``) is the time shift that best aligns a predicted
trajectory with the true one; the score's ``lag_frames`` is the median over figures matched in at least
``min_track_frames`` frames of the lag of their visible joints.

Pure numpy; device side, Python 3.6.
"""

import json
import math
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from goatpose_edge.synthetic.scene import FigureTruth, SceneError, read_truth

__all__ = ["HarnessScore", "MatchOptions", "lag_frames", "match_frame", "read_predictions", "score_jsonl",
           "score_predictions", "trajectories"]


@dataclass
class MatchOptions:
    max_distance: float = 0.3  # largest mean visible-joint distance of a match, in figure heights
    min_visible: int = 5  # visible joints a figure needs to count for recall
    min_score: float = 0.0  # persons whose "score" is below this are ignored (those without a score are kept)
    min_track_frames: int = 10  # matched frames a figure needs for its lag to enter HarnessScore.lag_frames
    max_lag: float = 3.0  # lag search range, +- frames
    lag_step: float = 0.05  # lag search step, frames

    def __post_init__(self):
        if not (self.max_distance > 0 and self.min_visible >= 1 and self.max_lag > 0 and self.lag_step > 0):
            raise SceneError("MatchOptions need max_distance > 0, min_visible >= 1, max_lag > 0 and lag_step > 0, "
                             "got {}".format(self))


@dataclass
class HarnessScore:
    frames: int  # frames scored
    missing_frames: int  # truth frames without predictions (dropped by the run)
    visible_figures: int  # figure-frames that count (>= min_visible visible joints)
    predictions: int  # persons scored (those matched to figures that do not count are left out)
    matched: int  # persons matched to figures that count
    recall: float  # matched / visible_figures (1.0 when there is nothing to find)
    precision: float  # matched / predictions (1.0 when nothing was predicted)
    rms_px: Optional[float]  # RMS keypoint error over the visible joints of matched persons, frame pixels
    mean_px: Optional[float]  # mean keypoint error over the same joints
    id_switches: Optional[int]  # None when the predictions carry no track ids
    score_visible: Optional[float]  # mean keypoint score of matched persons at visible joints
    score_hidden: Optional[float]  # ... at hidden ones (occluded or outside the frame)
    lag_frames: Optional[float]  # median lag of the well-tracked figures' joints, frames; positive: predictions lag

    def to_dict(self) -> dict:
        return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in asdict(self).items()}


def _person(person) -> Tuple[np.ndarray, Optional[int], Optional[float]]:
    """(keypoints [K, 3] float64, track id or None, score or None) of a dict or an object."""
    if isinstance(person, dict):
        keypoints, ident, score = person.get("keypoints"), person.get("id"), person.get("score")
    else:
        keypoints = getattr(person, "keypoints", None)
        ident = getattr(person, "id", getattr(person, "track_id", None))
        score = getattr(person, "score", None)
    points = np.asarray(keypoints, np.float64)
    if points.ndim != 2 or points.shape[1] < 2:
        raise SceneError("a person's keypoints must be [K, 3] (x, y, score), got shape {}".format(points.shape))
    if points.shape[1] == 2:
        points = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    return points, (None if ident is None else int(ident)), (None if score is None else float(score))


def match_frame(persons: Sequence, truth: Sequence[FigureTruth],
                options: Optional[MatchOptions] = None) -> List[Tuple[int, int, float]]:
    """Greedy matches of one frame: [(person index, truth index, mean visible-joint distance px)], closest first.

    Only figures with a visible joint take part; a pair further apart than ``max_distance`` x height never matches.
    """
    options = options or MatchOptions()
    pairs = []
    for p, person in enumerate(persons):
        points = _person(person)[0]
        for t, figure in enumerate(truth):
            visible = figure.visible
            if not visible.any():
                continue
            distance = float(np.linalg.norm(points[visible, :2] - figure.keypoints[visible, :2], axis=1).mean())
            if distance <= options.max_distance * figure.height:
                pairs.append((distance, p, t))
    pairs.sort()
    used_p, used_t, matches = set(), set(), []
    for distance, p, t in pairs:
        if p not in used_p and t not in used_t:
            used_p.add(p)
            used_t.add(t)
            matches.append((p, t, distance))
    return matches


def _frames(predictions, count: int):
    """(frame index, persons or None when missing) for each truth frame."""
    for index in range(count):
        if isinstance(predictions, dict):
            yield index, predictions.get(index)
        else:
            yield index, predictions[index] if index < len(predictions) else None


def trajectories(predictions, truth: Sequence[Sequence[FigureTruth]],
                 options: Optional[MatchOptions] = None) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    """figure id -> (predicted joints [T, K, 2], true joints [T, K, 2]) in frame pixels, T = truth frames.

    The truth is NaN where the figure is absent; the prediction is NaN where the figure is unmatched and at the
    joints the truth marks hidden (where a pose model's position means nothing, and the JSONL clamps it)."""
    options = options or MatchOptions()
    tracks = {}  # type: Dict[int, Tuple[np.ndarray, np.ndarray]]
    for index, persons in _frames(predictions, len(truth)):
        kept = _kept(persons, options)
        for figure in truth[index]:
            if figure.figure_id not in tracks:
                shape = (len(truth),) + figure.keypoints[:, :2].shape
                tracks[figure.figure_id] = (np.full(shape, np.nan), np.full(shape, np.nan))
            tracks[figure.figure_id][1][index] = figure.keypoints[:, :2]
        for p, t, _ in match_frame(kept, truth[index], options):
            figure = truth[index][t]
            points = _person(kept[p])[0][:, :2]
            tracks[figure.figure_id][0][index] = np.where(figure.visible[:, None], points, np.nan)
    return tracks


def _kept(persons, options: MatchOptions) -> list:
    if not persons:
        return []
    return [p for p in persons if (_person(p)[2] is None or _person(p)[2] >= options.min_score)]


def score_predictions(predictions, truth: Sequence[Sequence[FigureTruth]],
                      options: Optional[MatchOptions] = None) -> HarnessScore:
    """Score per-frame persons (see the module docstring) against ``read_truth`` output."""
    options = options or MatchOptions()
    frames = missing = visible_figures = scored = matched = 0
    errors, scores_visible, scores_hidden = [], [], []
    last_id = {}  # type: Dict[int, int]
    switches, has_ids = 0, True
    for index, persons in _frames(predictions, len(truth)):
        if persons is None:
            missing += 1
            continue
        frames += 1
        figures = truth[index]
        counts = [int(f.visible.sum()) >= options.min_visible for f in figures]
        visible_figures += sum(counts)
        kept = _kept(persons, options)
        matches = match_frame(kept, figures, options)
        ignored = sum(1 for _, t, _ in matches if not counts[t])
        scored += len(kept) - ignored
        for p, t, _ in matches:
            if not counts[t]:
                continue
            matched += 1
            points, ident, _ = _person(kept[p])
            figure = figures[t]
            visible = figure.visible
            errors.extend(np.linalg.norm(points[visible, :2] - figure.keypoints[visible, :2], axis=1))
            scores_visible.extend(points[visible, 2])
            scores_hidden.extend(points[~visible, 2])
            if ident is None:
                has_ids = False
            else:
                previous = last_id.get(figure.figure_id)
                switches += int(previous is not None and previous != ident)
                last_id[figure.figure_id] = ident
    errors = np.asarray(errors, np.float64)
    lags = []
    for predicted, true in trajectories(predictions, truth, options).values():
        if np.isfinite(predicted.reshape(len(predicted), -1)).any(axis=1).sum() >= options.min_track_frames:
            try:
                lags.append(lag_frames(predicted, true, options.max_lag, options.lag_step))
            except ValueError:  # too few aligned samples
                pass
    return HarnessScore(
        frames=frames, missing_frames=missing, visible_figures=visible_figures, predictions=scored, matched=matched,
        recall=matched / visible_figures if visible_figures else 1.0,
        precision=matched / scored if scored else 1.0,
        rms_px=float(np.sqrt(np.mean(errors ** 2))) if len(errors) else None,
        mean_px=float(errors.mean()) if len(errors) else None,
        id_switches=switches if has_ids and matched else None,
        score_visible=float(np.mean(scores_visible)) if scores_visible else None,
        score_hidden=float(np.mean(scores_hidden)) if scores_hidden else None,
        lag_frames=float(np.median(lags)) if lags else None)


def lag_frames(predicted_xy, truth_xy, max_lag: float = 3.0, step: float = 0.05) -> float:
    """The shift L (frames, a multiple of ``step`` in [-max_lag, max_lag]) minimising the RMS between predicted[t]
    and truth[t - L] (truth linearly interpolated); positive L: the prediction lags the truth.

    ``predicted_xy`` and ``truth_xy`` are [T, ...] (e.g. [T, 2] positions, [T, K, 2] joints); NaN marks missing
    values, each left out on its own. Every shift is scored on the same frames t (those with t - L inside the truth
    for all L), so that a shift is never preferred for dropping samples. Raises SceneError (a ValueError) with fewer
    than 3 usable frames.
    """
    predicted = np.asarray(predicted_xy, np.float64)
    true = np.asarray(truth_xy, np.float64)
    predicted = predicted.reshape(len(predicted), -1)
    true = true.reshape(len(true), -1)
    if predicted.shape != true.shape:
        raise SceneError("predicted {} and truth {} trajectories differ in shape".format(predicted.shape,
                                                                                        true.shape))
    count = len(true)
    margin = int(math.ceil(max_lag))
    t = np.arange(margin, count - margin)
    best, best_rms = 0.0, None
    for lag in np.arange(-round(max_lag / step), round(max_lag / step) + 1) * step:
        source = t - lag  # fractional truth index, within [0, count - 1] by the margin
        low = np.clip(np.floor(source).astype(np.int64), 0, count - 1)
        high = np.minimum(low + 1, count - 1)
        weight = (source - low)[:, None]
        shifted = true[low] * (1 - weight) + true[high] * weight
        residual = predicted[t] - shifted  # [frames, D]
        ok = np.isfinite(residual)
        if ok.any(axis=1).sum() < 3:
            continue
        rms = float(np.sqrt(np.mean(residual[ok] ** 2)))
        if best_rms is None or rms < best_rms - 1e-12:
            best, best_rms = float(lag), rms
    if best_rms is None:
        raise SceneError("lag_frames needs at least 3 frames with both trajectories beyond +-{} frames of the "
                         "ends; got {} frames".format(margin, count))
    return round(best, 6)


def read_predictions(jsonl_path: str) -> Dict[int, List[dict]]:
    """A ``goatpose video --jsonl`` file -> {frame: [person dicts]} ({"frame", "time", "persons": [...]})."""
    out = {}  # type: Dict[int, List[dict]]
    try:
        with open(jsonl_path) as f:
            for line_number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if "format" in record and "frame" not in record:  # the header line
                        continue
                    out[int(record["frame"])] = list(record["persons"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise SceneError("{} line {} is not a pose JSONL record ({}): expected {{\"frame\", \"time\", "
                                     "\"persons\"}} as `goatpose video --jsonl` writes".format(
                                         jsonl_path, line_number, exc)) from exc
    except (OSError, IOError) as exc:
        raise SceneError("cannot read predictions {}: {}".format(jsonl_path, exc.strerror or exc)) from exc
    return out


def score_jsonl(jsonl_path: str, truth_path: str, options: Optional[MatchOptions] = None) -> HarnessScore:
    """``score_predictions`` of a pose JSONL file against a ``write_scene`` truth file."""
    predictions = read_predictions(jsonl_path)
    truth = read_truth(truth_path)
    return score_predictions(predictions, truth, options)
