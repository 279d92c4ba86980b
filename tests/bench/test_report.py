"""Records: speedup ratios, the Markdown tables, atomic JSON/MD files and the AP-vs-fps plot."""

import json

import pytest

from goatpose_edge.bench import report


def _model(artefact, model, images_per_s, backend="onnxruntime"):
    return {"artefact": artefact, "path": "export/" + artefact, "model": model, "backend": backend,
            "precision": "fp32", "input_size": [256, 192], "complexity": None,
            "latency": [{"batch": b, "iters": 3, "warmup": 1, "mean_ms": 1e3 * b / ips, "p50_ms": 1e3 * b / ips,
                         "p90_ms": 1.0, "p99_ms": 1.0, "min_ms": 1.0, "images_per_s": ips}
                        for b, ips in images_per_s.items()], "skipped": []}


def _record(models):
    return {"format": report.BENCH_FORMAT, "title": "t", "created": "2026-12-01T00:00:00Z", "command": "goatpose bench",
            "settings": {"warmup": 1, "iters": 3}, "environment": {"cpu": "x", "packages": {}, "warnings": []},
            "models": models, "speedups": report.speedups(models)}


def test_speedups_are_per_backend_against_the_first_hrnet():
    models = [_model("bl.onnx", "goatpose-bl", {1: 30.0, 8: 40.0}), _model("w32.onnx", "hrnet-w32", {1: 20.0, 8: 25.0}),
              _model("bl.engine", "goatpose-bl", {1: 100.0}, backend="tensorrt")]
    rows = report.speedups(models)
    assert rows == [{"backend": "onnxruntime", "batch": 1, "artefact": "bl.onnx", "baseline": "w32.onnx",
                     "throughput_ratio": 1.5},
                    {"backend": "onnxruntime", "batch": 8, "artefact": "bl.onnx", "baseline": "w32.onnx",
                     "throughput_ratio": 1.6}]  # no TensorRT HRNet: no TensorRT ratio
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


def test_ap_fps_plot_made_when_eval_records_match(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "eval_bl.json").write_text(json.dumps({"format": report.EVAL_FORMAT, "artefact": "bl.onnx",
                                                        "stats": {"AP": 0.72}}))
    record = _record([_model("bl.onnx", "goatpose-bl", {1: 30.0}), _model("w32.onnx", "hrnet-w32", {1: 20.0})])
    points = report.ap_fps_points(record["models"], report.load_eval_records(str(tmp_path)))
    assert points == [{"label": "goatpose-bl (onnxruntime fp32)", "fps": 30.0, "ap": 0.72}]
    written = report.write_bench(str(tmp_path / "cpu"), record)
    png = tmp_path / "cpu_ap_fps.png"
    assert str(png) in written and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![AP vs fps](cpu_ap_fps.png)" in (tmp_path / "cpu.md").read_text()


def test_out_replaces_only_its_own_earlier_files(tmp_path):
    """What bench and eval write under --out NAME is recognised as theirs (a rerun replaces it); the same names
    holding anything else are not (``fileio.Kind``: the guard refuses them before any work)."""
    pytest.importorskip("matplotlib")
    from goatpose_edge.bench.coco_eval import EVAL_RESULTS, write_results

    (tmp_path / "eval_bl.json").write_text(json.dumps({"format": report.EVAL_FORMAT, "artefact": "bl.onnx",
                                                        "stats": {"AP": 0.72}}))
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
