"""The One-Euro filter: the first sample passes, a constant converges, noise shrinks, a ramp lags by the low-pass
time constant, speed raises the cutoff (less lag), tracks start fresh and are forgotten, odd timestamps are safe."""

import math

import numpy as np
import pytest

from goatpose_edge.video.smoothing import KeypointSmoother, OneEuroFilter, OneEuroOptions, smoothing_factor

FPS = 25.0


def _run(filt, values, fps=FPS):
    return np.array([filt(np.array([v]), i / fps)[0] for i, v in enumerate(values)])


def test_first_sample_passes_and_a_constant_stays():
    filt = OneEuroFilter(OneEuroOptions())
    out = _run(filt, [5.0] * 10)
    assert out.tolist() == [5.0] * 10


def test_still_noise_is_reduced_by_the_min_cutoff_low_pass():
    noise = np.random.default_rng(0).normal(0, 2.0, 500)
    out = _run(OneEuroFilter(OneEuroOptions(min_cutoff=1.0, beta=0.0)), noise)
    alpha = smoothing_factor(1.0, 1 / FPS)  # a first-order low-pass keeps alpha / (2 - alpha) of white noise power
    assert np.std(out[50:]) == pytest.approx(2.0 * math.sqrt(alpha / (2 - alpha)), rel=0.25)
    assert np.std(out[50:]) < 0.5 * np.std(noise)


def test_a_ramp_lags_by_the_time_constant_and_beta_shortens_it():
    """On a ramp a first-order low-pass lags by tau = 1 / (2 pi cutoff) in steady state. The speed the filter sees
    is (x - previous output) / dt = v (1 + lag) (Casiez et al.'s filter differentiates against its own output), so
    with beta the cutoff is 1 + beta v (1 + lag): a fixed point."""
    ramp = np.arange(200) * 3.0  # 3 px per frame, 75 px/s
    lags = {}
    for beta in (0.0, 0.05):
        out = _run(OneEuroFilter(OneEuroOptions(min_cutoff=1.0, beta=beta, d_cutoff=1.0)), ramp)
        lags[beta] = (ramp[150:] - out[150:]).mean() / 3.0
        expected = 0.0
        for _ in range(100):
            expected = FPS / (2 * math.pi * (1.0 + beta * 75 * (1 + expected)))
        assert lags[beta] == pytest.approx(expected, rel=0.02), beta
    assert lags[0.0] == pytest.approx(FPS / (2 * math.pi), rel=0.02) and lags[0.05] < 0.6


def test_non_advancing_timestamps_use_one_nominal_frame():
    filt = OneEuroFilter(OneEuroOptions(fallback_fps=25.0))
    filt(np.array([0.0]), 1.0)
    out = filt(np.array([10.0]), 1.0)  # same timestamp: no division by zero, one 25 fps frame assumed
    assert np.isfinite(out).all() and 0 < out[0] < 10


@pytest.mark.parametrize("field, value", [("min_cutoff", 0.0), ("d_cutoff", -1.0), ("beta", -0.1),
                                          ("min_cutoff", float("nan"))])
def test_bad_options(field, value):
    with pytest.raises(ValueError, match=field):
        OneEuroOptions(**{field: value}).check()


def test_keypoint_smoother_per_track_with_resets():
    smoother = KeypointSmoother(OneEuroOptions(min_cutoff=1.0, beta=0.0))
    points = np.zeros((17, 3))
    points[:, 1], points[:, 2] = np.linspace(0, 100, 17), 0.9  # a person 100 px tall
    first = smoother.update([7], [points], 0.0)[0]
    moved = points.copy()
    moved[:, :2] += 10.0
    second = smoother.update([7], [moved], 0.04)[0]
    assert (first == points).all()
    assert (points[:, :2] < second[:, :2]).all() and (second[:, :2] < moved[:, :2]).all()
    assert (second[:, 2] == 0.9).all()  # scores pass through
    new = smoother.update([7, 8], [moved, moved], 0.08)
    assert (new[1] == moved).all()  # a new track starts at its first observation
    smoother.update([8], [moved], 0.12)  # track 7 missed a frame: forgotten
    back = smoother.update([7], [points], 0.16)[0]
    assert (back == points).all()


def test_a_track_taken_over_by_another_person_starts_fresh():
    """A jump of more than reset_jump x the person's height in one frame is another person on the track (two
    persons in one box, an identity switch): blending the two would put the joints between them."""
    smoother = KeypointSmoother(OneEuroOptions())
    person = np.zeros((17, 3))
    person[:, 1], person[:, 2] = np.linspace(0, 100, 17), 0.9  # 100 px tall
    smoother.update([1], [person], 0.0)
    near = person.copy()
    near[:, 0] += 20  # a fast step: smoothed, not reset
    assert smoother.update([1], [near], 0.04)[0][0, 0] < 20
    far = person.copy()
    far[:, 0] += 80  # 0.8 of its height from the last frame: someone else
    assert smoother.update([1], [far], 0.08)[0][0, 0] == pytest.approx(80)
