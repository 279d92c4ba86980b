"""Records: speedup ratios, the Markdown tables, atomic JSON/MD files and the AP-vs-fps plot."""

import json

import pytest

from goatpose_edge.bench import report, runs


def _rows(images_per_s):
    return [{"batch": b, "iters": 3, "warmup": 1, "mean_ms": 1e3 * b / ips, "p50_ms": 1e3 * b / ips, "p90_ms": 1.0,
             "p99_ms": 1.0, "min_ms": 1.0, "images_per_s": ips} for b, ips in images_per_s.items()]


def _model(artefact, model, images_per_s, backend="onnxruntime"):
    """A bench record's model entry; images/s given as a list per batch are rounds, and the rows are then the median
    round's, as ``runs.model_rounds`` makes them."""
    entry = {"artefact": artefact, "path": "export/" + artefact, "sha256": artefact * 2, "model": model,
             "backend": backend, "precision": "fp32", "input_size": [256, 192], "complexity": None, "skipped": []}
    if all(isinstance(v, list) for v in images_per_s.values()):
        count = len(next(iter(images_per_s.values())))
        entry.update(runs.model_rounds([{"latency": _rows({b: v[i] for b, v in images_per_s.items()}),
                                         "skipped": []} for i in range(count)]))
    else:
        entry["latency"] = _rows(images_per_s)
    return entry


def _record(models, load=None):
    record = {"format": report.BENCH_FORMAT, "title": "t", "created": "2026-12-01T00:00:00Z",
              "command": "goatpose bench", "settings": {"warmup": 1, "iters": 3},
              "environment": {"cpu": "x", "packages": {}, "warnings": []}, "models": models,
              "speedups": report.speedups(models), "load": load}
    record.update(report.assess(record))
    return record


QUIET = {"cores": 2, "load_before": [0.3, 0.2, 0.1], "load_after": [1.9, 0.9, 0.4], "other_cpus": 0.1}


def test_rounds_keep_the_median_round_and_its_spread():
    bl = _model("bl.onnx", "goatpose-bl", {1: [31.0, 33.0, 30.0]})
    (row,) = bl["latency"]
    assert row["images_per_s"] == 31.0 and row["repeats"] == 3  # the median round's row, its latencies with it
    assert row["images_per_s_spread"] == {"median": 31.0, "min": 30.0, "max": 33.0, "pct": 9.7}  # 3 / 31


def test_ranking_says_who_was_faster_by_how_much():
    bl = _model("bl.onnx", "goatpose-bl", {1: [33.0, 33.5, 33.2]})
    w32 = _model("w32.onnx", "hrnet-w32", {1: [20.0, 20.2, 20.1]})
    record = _record([w32, bl], QUIET)
    assert record["ranking"] == ["goatpose-bl (bl.onnx) ran 1.65x the img/s of hrnet-w32 (w32.onnx) at batch 1 on "
                                 "onnxruntime (spread 2 % and 1 % over the repeats)."]  # 33.2 / 20.1
    assert record["reliability"]["warnings"] == []
    slower = _record([_model("w32.onnx", "hrnet-w32", {1: 30.0}), _model("bl.onnx", "goatpose-bl", {1: 12.0})], QUIET)
    assert slower["ranking"] == ["hrnet-w32 (w32.onnx) ran 2.50x the img/s of goatpose-bl (bl.onnx) at batch 1 on "
                                 "onnxruntime (one run each: spread not measured, use --repeats 3)."]


def test_a_noisy_side_or_a_busy_machine_gives_no_ranking():
    bl = _model("bl.onnx", "goatpose-bl", {1: [40.0, 28.0, 33.0]})  # 12 / 33 = 36 %
    w32 = _model("w32.onnx", "hrnet-w32", {1: [20.0, 20.2, 20.1]})
    noisy = _record([w32, bl], QUIET)
    assert noisy["ranking"] == ["No ranking of goatpose-bl (bl.onnx) and hrnet-w32 (w32.onnx) at batch 1 on "
                                "onnxruntime: the measured 1.64x is unreliable (img/s varied up to 36 % over the "
                                "repeats (limit 10 %))."]
    assert noisy["reliability"]["warnings"] == ["bl.onnx batch 1: img/s varied 36 % over 3 repeats (limit 10 %)"]
    steady = _model("bl.onnx", "goatpose-bl", {1: [33.0, 33.5, 33.2]})
    streamed = dict(steady, video={"configs": [
        {"name": "pipelined sync detect, auto workers, 1 stream", "runs": 3,
         "fps_spread": {"median": 10.0, "min": 9.5, "max": 11.2}},  # 17 %
        {"name": "sequential sync detect, 1 worker, 1 stream", "runs": 3,
         "fps_spread": {"median": 8.0, "min": 7.8, "max": 8.2}}]})  # 5 %
    assert _record([w32, streamed], QUIET)["reliability"]["warnings"] == [
        "bl.onnx pipelined sync detect, auto workers, 1 stream: fps varied 17 % over 3 runs (limit 10 %)"]
    busy = _record([w32, steady], dict(QUIET, load_before=[2.5, 2.0, 1.0], other_cpus=0.9))
    assert busy["reliability"]["warnings"] == [
        "load average 2.50 at the start, above 1.6 (0.8 x 2 cores): the machine was busy",
        "other processes kept 0.90 CPUs busy during the bench, above 0.50 (0.25 x 2 cores)"]
    assert busy["ranking"] == ["No ranking of goatpose-bl (bl.onnx) and hrnet-w32 (w32.onnx) at batch 1 on onnxruntime: "
                               "the measured 1.65x is unreliable (the machine was busy)."]
    assert report.load_warnings(dict(QUIET, load_before=[1.6, 1.0, 1.0], other_cpus=0.5)) == []  # at the limits
    assert report.load_warnings(dict(QUIET, load_before=None, other_cpus=None)) == []  # unknown is no reason


def test_markdown_defines_its_columns_and_says_the_rule():
    bl = _model("bl.onnx", "goatpose-bl", {1: [33.0, 33.5, 33.2]})
    w32 = _model("w32.onnx", "hrnet-w32", {1: [20.0, 20.2, 20.1]})
    markdown = report.to_markdown(dict(_record([bl, w32], QUIET), duration_s=212.0, estimate_s=240.0))
    assert "\n\nIt took 3.5 minutes (about 4 minutes estimated before the start).\n\n" in markdown
    assert "| bl.onnx | goatpose-bl | onnxruntime | fp32 | – | 1 | 30.12 | 1.00 | 1.00 | 30.12 | 33.20 | " \
           "33.00..33.50 | 2 % | 1.65x vs w32.onnx |" in markdown
    for column in ("- img/s min..max:", "- vs baseline:", "- p50 / p90 / p99 ms:"):
        assert column in markdown
    assert "## Which was faster\n\n- goatpose-bl (bl.onnx) ran 1.65x the img/s of hrnet-w32" in markdown
    assert "Rule: a ratio is unreliable when the img/s of either side varied by more than 10 %" in markdown
    assert "- load: load average 0.30 at the start and 1.90 at the end" in markdown
    assert "FAKE" not in markdown


def test_speedups_are_per_backend_against_the_first_hrnet():
    models = [_model("bl.onnx", "goatpose-bl", {1: 30.0, 8: 40.0}), _model("w32.onnx", "hrnet-w32", {1: 20.0, 8: 25.0}),
              _model("bl.engine", "goatpose-bl", {1: 100.0}, backend="tensorrt")]
    rows = report.speedups(models)
    assert rows == [{"backend": "onnxruntime", "batch": 1, "artefact": "bl.onnx", "baseline": "w32.onnx",
                     "throughput_ratio": 1.5, "spread_pct": [None, None]},
                    {"backend": "onnxruntime", "batch": 8, "artefact": "bl.onnx", "baseline": "w32.onnx",
                     "throughput_ratio": 1.6, "spread_pct": [None, None]}]  # no TensorRT HRNet: no TensorRT ratio
    assert report.speedups(models, baseline_name="goatpose-bl")[0]["throughput_ratio"] == pytest.approx(20 / 30, abs=1e-3)


def test_bench_files_are_written_and_parse(tmp_path):
    record = _record([_model("bl.onnx", "goatpose-bl", {1: 30.0}), _model("w32.onnx", "hrnet-w32", {1: 20.0})])
    out = str(tmp_path / "cpu")
    written = report.write_bench(out, record)
    assert written == [out + ".json", out + ".md"]  # no eval records beside it: no plot
    assert json.load(open(out + ".json"))["models"][0]["latency"][0]["images_per_s"] == 30.0
    markdown = open(out + ".md").read()
    assert "| bl.onnx | goatpose-bl | onnxruntime | fp32 | – | 1 | 33.33 |" in markdown
    assert "1.50x vs w32.onnx" in markdown


def _eval(tmp_path, name, **fields):
    (tmp_path / name).write_text(json.dumps(dict({"format": report.EVAL_FORMAT, "stats": {"AP": 0.72}}, **fields)))


def test_ap_fps_plot_made_when_eval_records_match(tmp_path):
    pytest.importorskip("matplotlib")
    _eval(tmp_path, "eval_bl.json", artefact="bl.onnx", artefact_sha256="bl.onnxbl.onnx")
    record = _record([_model("bl.onnx", "goatpose-bl", {1: 30.0}), _model("w32.onnx", "hrnet-w32", {1: 20.0})])
    points, left_out = report.ap_fps_points(record["models"], report.load_eval_records(str(tmp_path)))
    assert points == [{"label": "goatpose-bl (onnxruntime fp32)", "fps": 30.0, "ap": 0.72}] and left_out == []
    written = report.write_bench(str(tmp_path / "cpu"), record)
    png = tmp_path / "cpu_ap_fps.png"
    assert str(png) in written and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![AP vs fps](cpu_ap_fps.png)" in (tmp_path / "cpu.md").read_text()


def test_eval_records_of_other_files_are_left_out_with_the_reason(tmp_path):
    _eval(tmp_path, "a_old.json", artefact="bl.onnx")
    _eval(tmp_path, "b_other.json", artefact="bl.onnx", artefact_sha256="0" * 64)
    _eval(tmp_path, "c_elsewhere.json", artefact="x.onnx", artefact_sha256="1" * 64)
    _eval(tmp_path, "d_nan.json", artefact="bl.onnx", artefact_sha256="bl.onnxbl.onnx", stats={"AP": float("nan")})
    _eval(tmp_path, "e_w32.json", artefact="w32.onnx", artefact_sha256="w32.onnxw32.onnx", stats={"AP": 0.0})
    record = _record([_model("bl.onnx", "goatpose-bl", {1: 30.0}), _model("w32.onnx", "hrnet-w32", {1: 20.0})])
    points, left_out = report.ap_fps_points(record["models"], report.load_eval_records(str(tmp_path)))
    assert points == [{"label": "hrnet-w32 (onnxruntime fp32)", "fps": 20.0, "ap": 0.0}]  # its own file: drawn
    assert left_out == [
        "a_old.json (no artefact_sha256 (written by an older goatpose eval): cannot tell it is the same file)",
        "b_other.json (bl.onnx here is another file (its sha256 differs))",
        "c_elsewhere.json (x.onnx was not benchmarked here)", "d_nan.json (no finite AP in it)"]
    report.write_bench(str(tmp_path / "cpu"), record)
    assert "Eval records left out of the AP-vs-fps plot: a_old.json (no artefact_sha256" in (
        tmp_path / "cpu.md").read_text()


def test_out_replaces_only_its_own_earlier_files(tmp_path):
    """What bench and eval write under --out NAME is recognised as theirs (a rerun replaces it); the same names
    holding anything else are not (``fileio.Kind``: the guard refuses them before any work)."""
    pytest.importorskip("matplotlib")
    from goatpose_edge.bench.coco_eval import EVAL_RESULTS, write_results

    _eval(tmp_path, "eval_bl.json", artefact="bl.onnx", artefact_sha256="bl.onnxbl.onnx")
    record = _record([_model("bl.onnx", "goatpose-bl", {1: 30.0})])
    written = report.write_bench(str(tmp_path / "cpu"), record)
    write_results(str(tmp_path / "mine_results.json"), [{"image_id": 1, "category_id": 1, "keypoints": [0] * 51,
                                                          "score": 0.9}])
    assert [kind.recognise(path) for kind, path in zip(report.BENCH_KINDS, written)] == [True, True, True]
    assert EVAL_RESULTS.recognise(str(tmp_path / "mine_results.json"))
    assert report.EVAL_RECORD.recognise(str(tmp_path / "eval_bl.json"))
    foreign = {"notes.md": b"# my notes\n\nMeasured twice, cut once.\n", "plot.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
               "list.json": b"[1, 2, 3]\n", "record.json": json.dumps({"format": "other/1"}).encode()}
    for name, data in foreign.items():
        (tmp_path / name).write_bytes(data)
    kinds = (report.BENCH_RECORD, report.BENCH_REPORT, report.AP_FPS_PLOT, report.EVAL_RECORD, EVAL_RESULTS)
    assert [[kind.recognise(str(tmp_path / name)) for name in sorted(foreign)] for kind in kinds] == [
        [False] * 4] * 5
    assert not report.BENCH_RECORD.recognise(str(tmp_path / "eval_bl.json"))  # an eval record is not bench's
