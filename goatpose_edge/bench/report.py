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
from typing import Dict, List, Optional, Tuple

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
                                 row["images_per_s"] / ref["images_per_s"], 3),
                             "spread_pct": [_spread_pct(row), _spread_pct(ref)]})
    return rows


def _spread_pct(row: dict) -> Optional[float]:
    """(max - min) / median of a latency row's images/s over the repeats, in %; None for one run or an old record."""
    spread = row.get("images_per_s_spread") or {}
    return spread.get("pct") if row.get("repeats", 1) > 1 else None


#: when a ratio is not to be trusted; the report states the rule under its table
SPREAD_LIMIT_PCT = 10.0  # (max - min) of the repeats' img/s, in % of their median
LOAD_LIMIT = 0.8  # the 1-minute load average at the start, per core: someone else was busy before the bench began
OTHER_CPUS_LIMIT = 0.25  # CPUs that other processes kept busy during the bench, per core
RELIABILITY_RULE = (
    "a ratio is unreliable when the img/s of either side varied by more than {:.0f} % of its median over the repeats "
    "(max - min), when the 1-minute load average at the start was above {} x the cores, or when other processes kept "
    "more than {} x the cores busy during the bench (the load average at the end counts the bench's own threads, so "
    "it decides nothing)".format(SPREAD_LIMIT_PCT, LOAD_LIMIT, OTHER_CPUS_LIMIT))


def load_warnings(load: Optional[dict]) -> List[str]:
    """Why the machine's load makes every ratio of a run unreliable (``RELIABILITY_RULE``); [] when it does not."""
    if not load:
        return []
    cores = load.get("cores") or 1
    out = []
    before = load.get("load_before")
    if before and before[0] > LOAD_LIMIT * cores:
        out.append("load average {:.2f} at the start, above {:.1f} ({} x {} cores): the machine was busy".format(
            before[0], LOAD_LIMIT * cores, LOAD_LIMIT, cores))
    other = load.get("other_cpus")
    if other is not None and other > OTHER_CPUS_LIMIT * cores:
        out.append("other processes kept {:.2f} CPUs busy during the bench, above {:.2f} ({} x {} cores)".format(
            other, OTHER_CPUS_LIMIT * cores, OTHER_CPUS_LIMIT, cores))
    return out


def _label(models: List[dict], artefact: str, backend: str) -> str:
    model = next((m for m in models if m["artefact"] == artefact and m["backend"] == backend), None)
    return "{} ({})".format(model["model"], artefact) if model else artefact


def _spread_words(spreads) -> str:
    known = [s for s in spreads if s is not None]
    if len(known) < len(spreads):
        return "one run each: spread not measured, use --repeats 3"
    return "spread {:.0f} % and {:.0f} % over the repeats".format(*spreads)


def assess(record: dict) -> Dict[str, object]:
    """What the numbers of a bench record are worth: {"reliability": {"rule", "warnings"}, "ranking": sentences}.

    A warning per latency row whose img/s spread exceeds the limit, per video configuration whose fps spread does,
    and per load reason; a sentence per ratio, saying
    in words which artefact ran faster and by how much, or, where a side's spread or the load makes the ratio
    unreliable, that it is and why, instead of a ranking."""
    models = record["models"]
    load = load_warnings(record.get("load"))
    warnings = list(load)
    for m in models:
        for row in m["latency"]:
            pct = _spread_pct(row)
            if pct is not None and pct > SPREAD_LIMIT_PCT:
                warnings.append("{} batch {}: img/s varied {:.0f} % over {} repeats (limit {:.0f} %)".format(
                    m["artefact"], row["batch"], pct, row["repeats"], SPREAD_LIMIT_PCT))
        for config in (m.get("video") or {}).get("configs", []):
            spread = config.get("fps_spread") or {}
            if config.get("runs", 1) > 1 and spread.get("median") and 100 * (
                    spread["max"] - spread["min"]) / spread["median"] > SPREAD_LIMIT_PCT:
                warnings.append("{} {}: fps varied {:.0f} % over {} runs (limit {:.0f} %)".format(
                    m["artefact"], config["name"], 100 * (spread["max"] - spread["min"]) / spread["median"],
                    config["runs"], SPREAD_LIMIT_PCT))
    ranking = []
    for r in record.get("speedups", []):
        ratio, spreads = r["throughput_ratio"], r.get("spread_pct") or [None, None]
        first, second = _label(models, r["artefact"], r["backend"]), _label(models, r["baseline"], r["backend"])
        noisy = [pct for pct in spreads if pct is not None and pct > SPREAD_LIMIT_PCT]
        where = "at batch {} on {}".format(r["batch"], r["backend"])
        if noisy or load:
            reasons = (["img/s varied up to {:.0f} % over the repeats (limit {:.0f} %)".format(max(noisy),
                                                                                                SPREAD_LIMIT_PCT)]
                       if noisy else []) + (["the machine was busy"] if load else [])
            ranking.append("No ranking of {} and {} {}: the measured {:.2f}x is unreliable ({}).".format(
                first, second, where, ratio, "; ".join(reasons)))
            continue
        if ratio < 1:
            first, second, ratio, spreads = second, first, 1 / ratio, spreads[::-1]
        ranking.append("{} ran {:.2f}x the img/s of {} {} ({}).".format(first, ratio, second, where,
                                                                        _spread_words(spreads)))
    return {"reliability": {"rule": RELIABILITY_RULE, "warnings": warnings}, "ranking": ranking}


def _fmt(value, digits=2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "{:.{}f}".format(value, digits)
    return str(value)


def environment_lines(env: dict) -> List[str]:
    """The environment record as report lines (the GPU name of a fake TensorRT carries its mark)."""
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
    env = record["environment"]
    out = ["# {}".format(record.get("title") or "goatpose bench"), "",
           "Measured {} with `{}`.".format(record["created"], record["command"]), ""]
    if env.get("fake_tensorrt"):
        out += ["**{}**".format(env["fake_tensorrt"]), ""]
    if record.get("duration_s") is not None:
        out += ["It took {} ({} estimated before the start).".format(
            _duration(record["duration_s"]), about(record["estimate_s"]) if record.get("estimate_s") is not None
            else "nothing"), ""]
    out += environment_lines(env) + load_lines(record.get("load")) + [""]
    out += _model_section(models, settings, record.get("speedups", []))
    out += _ranking_section(record)
    out += _stream_section([m for m in models if m.get("video")], settings)
    out += _batching_section([m for m in models if m.get("batching")])
    out += _profile_sections(models, settings)
    out += _complexity_section([m["complexity"] for m in models if m.get("complexity")])
    if record.get("plot"):
        out += ["", "![AP vs fps]({})".format(os.path.basename(record["plot"]))]
    if record.get("plot_left_out"):
        out += ["", "Eval records left out of the AP-vs-fps plot: {}.".format("; ".join(record["plot_left_out"]))]
    return "\n".join(out) + "\n"


def about(seconds: float) -> str:
    """A duration as an estimate says it: 'about 40 seconds', 'about 8 minutes'."""
    if seconds < 90:
        return "about {} seconds".format(max(5, 5 * int(round(seconds / 5))))
    return "about {} minutes".format(int(round(seconds / 60)))


def _duration(seconds: float) -> str:
    return "{:.1f} s".format(seconds) if seconds < 90 else "{:.1f} minutes".format(seconds / 60)


def load_lines(load: Optional[dict]) -> List[str]:
    """The machine's load around the run (``env.LoadMeter``) as report lines."""
    if not load:
        return []
    before, after, other = load.get("load_before"), load.get("load_after"), load.get("other_cpus")
    return ["- load: load average {} at the start and {} at the end (1 minute; the end counts the bench's own "
            "threads); other processes kept {} of the {} CPUs busy during the run".format(
                _fmt(before[0]) if before else "unknown", _fmt(after[0]) if after else "unknown",
                _fmt(other) if other is not None else "an unknown share", load.get("cores"))]


def _model_section(models: List[dict], settings: dict, speedups: List[dict]) -> List[str]:
    repeats = max([row.get("repeats", 1) for m in models for row in m["latency"]] or [1])
    out = ["## Model only", "",
           "Random input, {} warm-up and {} timed calls per batch size{}; each call ends with the runner's device "
           "synchronisation.".format(settings["warmup"], settings["iters"], ", in each of {} rounds over every "
                                     "artefact in turn".format(repeats) if repeats > 1 else ""), "",
           "| artefact | model | backend | precision | GFLOPs | batch | p50 ms | p90 ms | p99 ms | mean ms | img/s "
           "| img/s min..max | spread | vs baseline |",
           "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    ratios = {(r["artefact"], r["backend"], r["batch"]): r for r in speedups}
    for m in models:
        gflops = (m.get("complexity") or {}).get("gflops")
        for row in m["latency"]:
            ratio = ratios.get((m["artefact"], m["backend"], row["batch"]))
            spread = row.get("images_per_s_spread")
            out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                m["artefact"], m["model"], m["backend"], m["precision"], _fmt(gflops), row["batch"],
                _fmt(row["p50_ms"]), _fmt(row["p90_ms"]), _fmt(row["p99_ms"]), _fmt(row["mean_ms"]),
                _fmt(row["images_per_s"]), "{}..{}".format(_fmt(spread["min"]), _fmt(spread["max"])) if spread
                else "–", "{:.0f} %".format(spread["pct"]) if spread and spread.get("pct") is not None and
                row.get("repeats", 1) > 1 else "–",
                "{:.2f}x vs {}".format(ratio["throughput_ratio"], ratio["baseline"]) if ratio else "–"))
        for skip in m.get("skipped", []):
            out.append("| {} | {} | {} | {} | {} | {} | skipped: {} | | | | | | | |".format(
                m["artefact"], m["model"], m["backend"], m["precision"], _fmt(gflops), skip["batch"], skip["reason"]))
    return out + [
        "",
        "- GFLOPs: the network's convolution multiply-adds / 2^30 (as `goatpose info`)",
        "- p50 / p90 / p99 ms: the latency one call took at most in 50 / 90 / 99 % of the timed calls; mean ms: the "
        "average call{}".format(" (the median round's)" if repeats > 1 else ""),
        "- img/s: images per second, batch / mean call time{}".format(
            ", the median of the {} rounds".format(repeats) if repeats > 1 else ""),
        "- img/s min..max: the slowest and the fastest round; spread: (max - min) / median",
        "- vs baseline: img/s as a multiple of the baseline's at the same batch on the same backend (the first "
        "HRNet, or --baseline)"]


def _ranking_section(record: dict) -> List[str]:
    ranking = record.get("ranking") or []
    reliability = record.get("reliability") or {}
    if not ranking and not reliability.get("warnings"):
        return []
    out = ["", "## Which was faster", ""] + ["- " + sentence for sentence in ranking]
    if reliability.get("warnings"):
        out += ["", "**Warning, numbers unreliable**: {}.".format("; ".join(reliability["warnings"]))]
    return out + ["", "Rule: {}.".format(reliability.get("rule", RELIABILITY_RULE))]


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
           "| artefact | configuration | frames | wall s | fps | vs sequential | persons/s | pose model alone, "
           "persons/s | end-to-end share of the model alone | detector runs/s | busiest stage | busy s: {} |".format(
               " / ".join(STAGES)),
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    out_notes = [
        "",
        "- fps: frames per second end to end over all streams, the median run (min..max over the runs)",
        "- vs sequential: fps as a multiple of the sequential schedule's (one stream)",
        "- persons/s: persons posed per second end to end (the median run)",
        "- pose model alone, persons/s: what the pose model did on its own with the same workers and batch (random "
        "crops, no video, no detector)",
        "- end-to-end share of the model alone: persons/s end to end as a share of the pose model alone's; under "
        "100 % the rest of the pipeline (decoding, detection, crops, drawing) costs pose throughput; above 100 % the "
        "model alone was measured slower than it ran in the pipeline (a busier moment, another batch): a few % "
        "either way is noise",
        "- detector runs/s: detector calls per second (every frame, or every --detect-every frames)",
        "- busiest stage: the stage with the highest utilisation (busy time / wall time x its threads); the pipeline "
        "runs at that share of the rate its slowest stage allows",
        "- busy s: seconds each stage worked, summed over its threads (stages overlap, so they add up to more than "
        "the wall time in the pipelined schedule)"]
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
    return out + out_notes


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
    skipped = [m["artefact"] for m in models if m.get("profile_skipped")]
    out = ["", "--profile-ops applies to .onnx only (onnxruntime's profiler): {} not profiled.".format(
        ", ".join(skipped))] if skipped else []
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
    """``out``.json and ``out``.md (and ``out``_ap_fps.png when eval records of these artefacts exist beside it; the
    records left out, and why, go into the record as ``plot_left_out``)."""
    json_path, md_path, plot_path = bench_outputs(out)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    points, left_out = ap_fps_points(record["models"], load_eval_records(folder))
    written = []
    if left_out:
        record["plot_left_out"] = left_out
    if points and ap_fps_plot(points, plot_path):
        record["plot"] = plot_path
        written.append(plot_path)
    write_text(json_path, json.dumps(record, indent=2, sort_keys=False) + "\n")
    write_text(md_path, to_markdown(record))
    return [json_path, md_path] + written


def load_eval_records(folder: str) -> List[Tuple[str, dict]]:
    """(file name, record) of every ``goatpose eval`` record in ``folder``."""
    records = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("format") == EVAL_FORMAT:
            records.append((os.path.basename(path), data))
    return records


def ap_fps_points(models: List[dict], evals: List[Tuple[str, dict]]) -> Tuple[List[dict], List[str]]:
    """(label, batch-1 images/s, AP) for each eval record of a benched artefact: the same file, known by its sha256
    (``goatpose eval`` records ``artefact_sha256``), with a finite AP; and "NAME.json (why)" for each record left
    out."""
    points, left_out = [], []
    for name, ev in evals:
        artefact, sha = ev.get("artefact"), ev.get("artefact_sha256")
        model = next((m for m in models if sha and m.get("sha256") == sha), None)
        stats = ev.get("stats")
        ap = stats.get("AP") if isinstance(stats, dict) else None
        row = next((r for r in model["latency"] if r["batch"] == 1), None) if model else None
        if model is None:
            same_name = any(m["artefact"] == artefact for m in models)
            why = ("no artefact_sha256 (written by an older goatpose eval): cannot tell it is the same file"
                   if not sha else "{} here is another file (its sha256 differs)".format(artefact) if same_name
                   else "{} was not benchmarked here".format(artefact))
        elif row is None:
            why = "{} has no batch-1 measurement".format(model["artefact"])
        elif not (isinstance(ap, (int, float)) and not isinstance(ap, bool) and math.isfinite(ap)):
            why = "no finite AP in it"
        else:
            points.append({"label": "{} ({} {})".format(model["model"], model["backend"], model["precision"]),
                           "fps": row["images_per_s"], "ap": ap})
            continue
        left_out.append("{} ({})".format(name, why))
    return points, left_out


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
