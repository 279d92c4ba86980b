"""goatpose_edge.compare: how two artefacts' heatmaps agree (export parity, engine check, Q/DQ report)."""

import json

import numpy as np
import pytest

from goatpose_edge.compare import (TOLERANCES, HeatmapShapeError, Tolerance, argmax_displacement, compare_heatmaps,
                                   engine_tolerance, nonfinite_outputs, tolerance)


def _maps(n=2, k=3, h=8, w=6):
    """Seeded heatmaps [N, K, h, w] with one clear peak per map at a known (x, y), and a map that is all <= 0."""
    rs = np.random.RandomState(0)
    maps = rs.uniform(0.0, 0.1, (n, k, h, w)).astype(np.float32)
    where = {}
    for i in range(n):
        for j in range(k):
            x, y = (i + 2 * j) % w, (3 * i + j) % h
            maps[i, j, y, x] = 1.0
            where[i, j] = (x, y)
    maps[1, 2] = -rs.uniform(0.1, 1.0, (h, w))  # no positive response: (0, 0), as HRNet decodes it
    where[1, 2] = (0, 0)
    return maps, where


def test_argmax_displacement_is_the_peak_distance():
    reference, where = _maps()
    test = reference.copy()
    x, y = where[0, 1]  # (2, 1)
    test[0, 1, y, x], test[0, 1, 7, 5] = 0.05, 1.0  # that peak moves to (5, 7)
    moved = argmax_displacement(reference, test)
    assert moved.shape == (2, 3) and np.count_nonzero(moved) == 1
    assert moved[0, 1] == pytest.approx(np.hypot(3, 6))


def test_compare_measures_errors_and_keypoints_in_input_pixels():
    reference = np.zeros((1, 2, 8, 8), np.float32)
    reference[0, 0, 1, 1] = reference[0, 1, 5, 5] = 2.0
    test = reference.copy()
    test[0, 0, 1, 1] = 1.9  # max abs 0.1 of max 2.0: max rel 0.05
    test[0, 1, 5, 5], test[0, 1, 7, 5] = 0.0, 1.5  # peak (5, 5) -> (5, 7): 2 heatmap px = 8 input px
    report = compare_heatmaps("crop:a.jpg", reference, test, engine_tolerance("int8"), stride=4)
    assert report.count == 1 and report.ref_max == 2.0
    assert report.max_abs == pytest.approx(2.0) and report.max_rel == pytest.approx(1.0)  # the vanished peak
    assert (report.keypoint_mean_px, report.keypoint_max_px) == (4.0, 8.0)  # (0 + 8) / 2 maps
    assert not report.ok  # max rel 1.0 > 0.15 although the mean displacement 4.0 <= 4.0
    plain = compare_heatmaps("random", reference, test, tolerance("export"))
    assert plain.keypoint_mean_px is None and plain.keypoint_max_px is None


def _two_peaks():
    """Every map peaks at (3, 3) with 0.99 at (4, 4)."""
    maps = np.zeros((1, 2, 8, 8), np.float32)
    maps[:, :, 3, 3], maps[:, :, 4, 4] = 1.0, 0.99
    return maps


@pytest.mark.parametrize("change, ok", [
    ("scale 1.029", True),  # 2.9 % of the peak, no keypoint moved
    ("scale 1.031", False),  # 3.1 % > the FP16 limit of 3 %
    ("swap", False),  # 1 % apart, but every peak moves 1.41 heatmap px = 5.66 input px > 1 px mean
])
def test_engine_fp16_limits_gate_both_figures(change, ok):
    reference = _two_peaks()
    if change == "swap":
        test = reference.copy()
        test[:, :, 3, 3], test[:, :, 4, 4] = 0.99, 1.0
    else:
        test = reference * float(change.split()[1])
    report = compare_heatmaps("verify fp16 engine vs onnxruntime FP32 on 1 crops", reference, test,
                              engine_tolerance("fp16"), stride=4)
    assert report.ok is ok, report.line()
    assert report.line().endswith("  ok" if ok else "  FAIL")
    if change == "swap":
        assert report.max_rel == pytest.approx(0.01) and report.keypoint_mean_px == pytest.approx(4 * 2 ** 0.5)


def test_qdq_report_is_not_gated_but_nonfinite_fails():
    reference, _ = _maps()
    far = compare_heatmaps("Q/DQ INT8 vs FP32 (onnxruntime, CPU)", reference, reference * 3, tolerance("qdq"),
                           stride=4)
    assert far.ok and far.max_rel == pytest.approx(2.0)
    assert "tolerance" not in far.line() and not far.line().endswith(("ok", "FAIL"))
    bad = reference.copy()
    bad[0, 0, 0, 0] = np.nan
    report = compare_heatmaps("Q/DQ INT8 vs FP32 (onnxruntime, CPU)", reference, bad, tolerance("qdq"),
                              ("FP32 a.onnx", "Q/DQ INT8 b.onnx"), stride=4)
    assert not report.ok
    assert report.line() == ("Q/DQ INT8 vs FP32 (onnxruntime, CPU): non-finite output (NaN/Inf) in Q/DQ INT8 b.onnx "
                             "(1 NaN, 0 Inf of 288 values)  FAIL")


def test_lines_of_each_comparison():
    reference = np.zeros((1, 1, 4, 4), np.float32)
    reference[0, 0, 1, 2] = 2.0
    test = reference.copy()
    test[0, 0, 1, 2] = 1.999
    parity = compare_heatmaps("random", reference, test, tolerance("export"))
    assert parity.line() == ("random:                       max abs 1.000e-03  max rel 5.000e-04 (of max|ref| "
                             "2.000e+00)  tolerance 1e-04  FAIL")
    engine = compare_heatmaps("verify fp32 engine vs onnxruntime FP32 on 1 crops", reference, test,
                              engine_tolerance("fp32"), stride=4)
    assert engine.line() == ("verify fp32 engine vs onnxruntime FP32 on 1 crops: max abs 1.000e-03  max rel 5.000e-04 "
                             "(of max|ref| 2.000e+00)  keypoint error mean 0.00 px, max 0.00 px  tolerance 1e-02 "
                             "and 0.5 px mean  ok")


def test_to_dict_is_strict_json():
    reference, _ = _maps()
    report = compare_heatmaps("random", reference, reference, engine_tolerance("fp16"), stride=4)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data == {"label": "random", "count": 2, "max_abs": 0.0, "max_rel": 0.0, "ref_max": 1.0,
                    "keypoint_mean_px": 0.0, "keypoint_max_px": 0.0, "nonfinite": "", "ok": True,
                    "tolerance": {"max_rel": 0.03, "mean_px": 1.0}}
    bad = reference.copy()
    bad[1, 1, 1, 1] = np.inf
    data = compare_heatmaps("random", reference, bad, engine_tolerance("fp16"), stride=4).to_dict()
    json.dumps(data, allow_nan=False)
    assert data["max_abs"] is None and data["keypoint_mean_px"] is None and data["ok"] is False
    assert data["nonfinite"] == "non-finite output (NaN/Inf) in test (0 NaN, 1 Inf of 288 values)"


def test_both_sides_nan_fails_although_their_difference_is_zero():
    reference = np.full((1, 1, 2, 2), np.nan, np.float32)
    report = compare_heatmaps("random", reference, reference.copy(), tolerance("export"))
    assert not report.ok and report.nonfinite.count("(4 NaN, 0 Inf of 4 values)") == 2


def test_shapes_must_match():
    with pytest.raises(HeatmapShapeError,
                       match=r"random: output shapes differ, \[1, 17, 64, 48\] vs \[1, 17, 32, 24\]"):
        compare_heatmaps("random", np.zeros((1, 17, 64, 48)), np.zeros((1, 17, 32, 24)), tolerance("export"))


def test_tolerance_table():
    assert {kind: (t.max_rel, t.mean_px) for kind, t in TOLERANCES.items()} == {
        "export": (1e-4, None), "flip": (1e-5, None), "engine-fp32": (1e-2, 0.5), "engine-fp16": (3e-2, 1.0),
        "engine-int8": (1.5e-1, 4.0), "qdq": (None, None)}
    assert all(t.source.startswith("README, ") for t in TOLERANCES.values())
    assert engine_tolerance("int8") is TOLERANCES["engine-int8"]
    with pytest.raises(ValueError, match="unknown comparison kind 'engine-int4'; known: engine-fp16, "):
        engine_tolerance("int4")


@pytest.mark.parametrize("limit, text", [
    (Tolerance(1e-4), "1e-04"), (Tolerance(2.5e-4), "2.5e-04"), (Tolerance(1.5e-1, 4.0), "1.5e-01 and 4.0 px mean"),
    (Tolerance(None, 1.0), "1.0 px mean"), (Tolerance(None), ""),
])
def test_tolerance_text_keeps_the_digits(limit, text):
    assert limit.text() == text


def test_nonfinite_outputs_skips_integer_outputs():
    assert nonfinite_outputs([("ids", np.array([1, 2])), ("maps", np.array([np.inf]))]) == \
        "non-finite output (NaN/Inf) in maps (0 NaN, 1 Inf of 1 values)"
