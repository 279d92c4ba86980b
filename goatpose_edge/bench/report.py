"""Benchmark records: one JSON (everything, with the environment) and one Markdown table file per run, written
atomically under ``benchmarks/``; speedup ratios between artefacts on the same backend; the AP-vs-fps plot.

Formats: ``goatpose-edge-bench/1`` (``goatpose bench``) and ``goatpose-edge-eval/1`` (``goatpose eval``).
"""

import datetime
import glob
import json
import math
import os
import re
from typing import Dict, List, Optional

from goatpose_edge.fileio import Kind, atomic_output, json_record
from goatpose_edge.video.results import STAGES

BENCH_FORMAT = "goatpose-edge-bench/1"
EVAL_FORMAT = "goatpose-edge-eval/1"
_PLOT_TITLE = "goatpose-edge bench: AP vs fps"  # the PNG's Title, by which a later run knows its own plot
_REPORT_HEAD = re.compile(r"# [^\n]*\n\nMeasured \S+ with `goatpose bench[ `]")  # to_markdown's first lines


def _starts_with(path: str, size: int, test) -> bool:
    try:
        with open(path, "rb") as f:
            return bool(test(f.read(size)))
    except OSError:
        return False


#: what ``--out NAME`` of bench and eval may replace: only their own earlier files of the same name
BENCH_RECORD = json_record("a goatpose bench record", BENCH_FORMAT)
BENCH_REPORT = Kind("a goatpose bench report", lambda path: _starts_with(
    path, 1 << 16, lambda head: _REPORT_HEAD.match(head.decode("utf-8", "replace"))))
AP_FPS_PLOT = Kind("an AP-vs-fps plot of goatpose bench", lambda path: _starts_with(
    path, 4096, lambda head: head.startswith(b"\x89PNG") and _PLOT_TITLE.encode() in head))
EVAL_RECORD = json_record("a goatpose eval record", EVAL_FORMAT)


def utc_now() -> str:
    return datetime.datetime.utcnow().replace(microsecond=0).isoformat() + "Z"


def choose_baseline(models: List[dict], backend: str, name: Optional[str] = None) -> Optional[dict]:
    """The row other artefacts on ``backend`` are compared with: the artefact called ``name`` (file name or model),
    else the first HRNet, else None (no ratios)."""
    same = [m for m in models if m["backend"] == backend]
    if name:
        return next((m for m in same if name in (m["artefact"], m["model"], m["path"])), None)
    return next((m for m in same if m["model"].startswith("hrnet")), None)


def speedups(models: List[dict], baseline_name: Optional[str] = None) -> List[dict]:
    """images/s of each artefact / its backend's baseline, per batch size measured by both."""
    rows = []
    for model in models:
        base = choose_baseline(models, model["backend"], baseline_name)
        if base is None or base is model:
            continue
        for row in model["latency"]:
            ref = next((r for r in base["latency"] if r["batch"] == row["batch"]), None)
            if ref:
                rows.append({"backend": model["backend"], "batch": row["batch"], "artefact": model["artefact"],
                             "baseline": base["artefact"], "throughput_ratio": round(
                                 row["images_per_s"] / ref["images_per_s"], 3)})
    return rows


def _fmt(value, digits=2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "{:.{}f}".format(value, digits)
    return str(value)


def environment_lines(env: dict) -> List[str]:
    packages = ", ".join("{} {}".format(k, v) for k, v in sorted(env.get("packages", {}).items()) if v)
    gpu = env.get("gpu")
    lines = ["- CPU: {} ({} logical cores), {}; Python {}".format(env.get("cpu"), env.get("cpu_count"),
                                                                  env.get("machine"), env.get("python")),
             "- threads: {} (OMP_NUM_THREADS={}, OpenCV {})".format(env.get("threads") or "library default",
                                                                     env.get("omp_num_threads"),
                                                                     env.get("opencv_threads")),
             "- GPU: {}".format("{} (compute {}, CUDA {}, driver {})".format(
                 gpu["name"], ".".join(map(str, gpu["compute_capability"])), gpu.get("cuda"), gpu.get("cuda_driver"))
                 if gpu else "none used / none found"),
             "- packages: {}".format(packages)]
    jetson = env.get("jetson")
    if jetson:
        lines.append("- Jetson: {} L4T {}, nvpmodel {}, jetson_clocks {}, power {}".format(
            jetson.get("model"), jetson.get("l4t"), jetson.get("nvpmodel"), jetson.get("jetson_clocks"),
            jetson.get("power_mw")))
    lines += ["- **warning**: " + w for w in env.get("warnings", [])]
    return lines


def to_markdown(record: dict) -> str:
    """The Markdown report of a bench record: header and environment, then one section per measurement present."""
    models, settings = record["models"], record["settings"]
    out = ["# {}".format(record.get("title") or "goatpose bench"), "",
           "Measured {} with `{}`.".format(record["created"], record["command"]), ""]
    out += environment_lines(record["environment"]) + [""]
    out += _model_section(models, settings, record.get("speedups", []))
    out += _stream_section([m for m in models if m.get("video")], settings)
    out += _batching_section([m for m in models if m.get("batching")])
    out += _profile_sections(models, settings)
    out += _complexity_section([m["complexity"] for m in models if m.get("complexity")])
    if record.get("plot"):
        out += ["", "![AP vs fps]({})".format(os.path.basename(record["plot"]))]
    return "\n".join(out) + "\n"


def _model_section(models: List[dict], settings: dict, speedups: List[dict]) -> List[str]:
    out = ["## Model only", "",
           "Random input, {} warm-up and {} timed calls per batch size; each call ends with the runner's device "
           "synchronisation. Ratio: throughput vs the baseline on the same backend.".format(
               settings["warmup"], settings["iters"]), "",
           "| artefact | model | backend | precision | GFLOPs | batch | p50 ms | p90 ms | p99 ms | mean ms | img/s "
           "| ratio |", "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    ratios = {(r["artefact"], r["backend"], r["batch"]): r for r in speedups}
    for m in models:
        gflops = (m.get("complexity") or {}).get("gflops")
        for row in m["latency"]:
            ratio = ratios.get((m["artefact"], m["backend"], row["batch"]))
            out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                m["artefact"], m["model"], m["backend"], m["precision"], _fmt(gflops), row["batch"],
                _fmt(row["p50_ms"]), _fmt(row["p90_ms"]), _fmt(row["p99_ms"]), _fmt(row["mean_ms"]),
                _fmt(row["images_per_s"]), "{:.2f}x vs {}".format(ratio["throughput_ratio"], ratio["baseline"])
                if ratio else "–"))
        for skip in m.get("skipped", []):
            out.append("| {} | {} | {} | {} | {} | {} | skipped: {} | | | | | |".format(
                m["artefact"], m["model"], m["backend"], m["precision"], _fmt(gflops), skip["batch"], skip["reason"]))
    return out


def _stream_section(videos: List[dict], settings: dict) -> List[str]:
    if not videos:
        return []
    first = videos[0]["video"]
    out = ["", "## Streaming engine on {} ({} detector{}, {} frames per stream, median of {} interleaved "
           "run{})".format(first["video"], settings.get("detector"),
                           ", every {} frames".format(settings["detect_every"])
                           if settings.get("detect_every", 1) > 1 else "",
                           first["frames_per_stream"] or "all", first["repeats"], "s" if first["repeats"] > 1 else ""),
           "",
           "fps and persons/s end to end (min..max over the runs); model = the pose model's own persons/s with "
           "the same workers and batch; busy = seconds each stage worked, summed over its threads (stages "
           "overlap, so they add up to more than the wall time in the pipelined schedule).", "",
           "busiest stage = the stage with the highest utilisation (busy time / wall time x its threads): the "
           "pipeline runs at that share of the rate its slowest stage allows.", "",
           "| artefact | configuration | frames | wall s | fps | vs sequential | persons/s | model persons/s | "
           "end-to-end / model | detector runs/s | busiest stage | busy s: {} |".format(" / ".join(STAGES)),
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for m in videos:
        for c in m["video"]["configs"]:
            spread, busy = c["fps_spread"], c["busy_s"]
            busiest = c.get("busiest") or {}
            out.append("| {} | {} | {} | {} | {} ({}..{}) | {} | {} | {} | {} | {} | {} | {} |".format(
                m["artefact"], c["name"], c["frames"], _fmt(c["wall_s"]), _fmt(c["fps"]), _fmt(spread["min"]),
                _fmt(spread["max"]), "{:.2f}x".format(c["fps_vs_sequential"]) if c.get("fps_vs_sequential")
                else "–", _fmt(c["persons_per_s"]), _fmt(c["model_persons_per_s"]),
                "{:.0%}".format(c["end_to_end_vs_model"]) if c.get("end_to_end_vs_model") else "–",
                _fmt(c["detector_per_s"]), "{} {:.0%}".format(busiest["stage"], busiest["utilisation"])
                if busiest.get("stage") else "–", " / ".join(_fmt(busy.get(s, 0.0)) for s in STAGES)))
    return out


def _batching_section(batching: List[dict]) -> List[str]:
    if not batching:
        return []
    out = ["", "## Person batching", "",
           "The same frames and detector boxes through the batched pipeline and through a per-crop loop "
           "(batch 1 per person); detection not timed.", "",
           "| artefact | frames | persons | per-crop persons/s | batched persons/s | speedup |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for m in batching:
        b = m["batching"]
        out.append("| {} | {} | {} | {} | {} | {:.2f}x |".format(
            m["artefact"], b["frames"], b["persons"], _fmt(b["per_crop"]["persons_per_s"]),
            _fmt(b["batched"]["persons_per_s"]), b["speedup"]))
    return out


def _profile_sections(models: List[dict], settings: dict) -> List[str]:
    out = []
    for m in models:
        if m.get("profile"):
            out += ["", "## onnxruntime op profile: {} (batch {}, CPU provider)".format(
                m["artefact"], settings.get("profile_batch", 1)), "",
                "| op type (after ORT fusion) | ms per run | % | kernels |", "| --- | ---: | ---: | ---: |"]
            out += ["| {} | {} | {} | {} |".format(r["op_type"], _fmt(r["ms_per_run"], 3), _fmt(r["pct"], 1),
                                                   r["kernels"]) for r in m["profile"]]
    return out


def _complexity_section(complexity: List[dict]) -> List[str]:
    if not complexity:
        return []
    seen, rows = set(), []
    for c in complexity:
        if c["model"] not in seen:
            seen.add(c["model"])
            rows.append(c)
    out = ["", "## Complexity (goatpose info)", "", "| model | params | GFLOPs (conv MACs/2^30) | paper params M "
           "| paper GFLOPs |", "| --- | ---: | ---: | ---: | ---: |"]
    return out + ["| {} | {:,} | {:.2f} | {} | {} |".format(c["model"], c["params"], c["gflops"], c["paper_params_m"],
                                                            c["paper_gflops"]) for c in rows]


def write_text(path: str, text: str) -> None:
    with atomic_output(path) as tmp_path:
        with open(tmp_path, "w") as f:
            f.write(text)


def bench_outputs(out: str) -> List[str]:
    """The files ``write_bench(out, ...)`` may write: ``out``.json, ``out``.md and ``out``_ap_fps.png (their kinds:
    ``BENCH_KINDS``)."""
    return [out + ".json", out + ".md", out + "_ap_fps.png"]


BENCH_KINDS = (BENCH_RECORD, BENCH_REPORT, AP_FPS_PLOT)


def write_bench(out: str, record: dict) -> List[str]:
    """``out``.json and ``out``.md (and ``out``_ap_fps.png when AP results for these artefacts exist beside it)."""
    json_path, md_path, plot_path = bench_outputs(out)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    points = ap_fps_points(record["models"], load_eval_records(folder))
    written = []
    if points and ap_fps_plot(points, plot_path):
        record["plot"] = plot_path
        written.append(plot_path)
    write_text(json_path, json.dumps(record, indent=2, sort_keys=False) + "\n")
    write_text(md_path, to_markdown(record))
    return [json_path, md_path] + written


def load_eval_records(folder: str) -> List[dict]:
    records = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("format") == EVAL_FORMAT:
            records.append(data)
    return records


def ap_fps_points(models: List[dict], evals: List[dict]) -> List[Dict[str, object]]:
    """(label, batch-1 images/s, AP) for each benched artefact that has an eval record (matched by file name) with a
    finite AP; damaged records are left out of the plot."""
    points = []
    for m in models:
        ev = next((e for e in evals if e.get("artefact") == m["artefact"]), None)
        row = next((r for r in m["latency"] if r["batch"] == 1), None)
        stats = ev.get("stats") if ev else None
        ap = stats.get("AP") if isinstance(stats, dict) else None
        if row and isinstance(ap, (int, float)) and not isinstance(ap, bool) and math.isfinite(ap):
            points.append({"label": "{} ({} {})".format(m["model"], m["backend"], m["precision"]),
                           "fps": row["images_per_s"], "ap": ap})
    return points


def ap_fps_plot(points: List[Dict[str, object]], path: str) -> bool:
    """Scatter of AP vs model fps (the paper's Fig. 1); False (nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(6, 4))
    for point in points:
        axes.scatter(point["fps"], 100 * point["ap"])
        axes.annotate(point["label"], (point["fps"], 100 * point["ap"]), textcoords="offset points", xytext=(4, 4),
                      fontsize=8)
    axes.set_xlabel("model fps (batch 1)")
    axes.set_ylabel("COCO keypoint AP (%)")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    with atomic_output(path) as tmp_path:
        figure.savefig(tmp_path, format="png", dpi=120, metadata={"Title": _PLOT_TITLE})
    plt.close(figure)
    return True
