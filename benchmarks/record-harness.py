"""Record the streaming engine's quality on the synthetic ground truth (benchmarks/harness.md + .json).

    .venv/bin/python benchmarks/record-harness.py [--frames 80] [--out benchmarks/harness]

Scenes (goatpose_edge.synthetic): `walkers` (4 figures, 1.4 px/frame, entering and leaving), one fast walker
(4 px/frame) and `crossing` (2 figures whose paths cross), each without and with 2 px of jitter per joint and axis;
the dot-finding ONNX pose model through onnxruntime and the real codec; the figure detector (with a delay to stand in
for a detector slower than the pose model). Everything runs through StreamEngine as `goatpose video` does.
"""

import argparse
import json
import os
import sys
import tempfile
import time

from goatpose_edge.synthetic import build_dot_pose_onnx, crossing, read_truth, score_predictions, single, walkers
from goatpose_edge.synthetic import write_scene
from goatpose_edge.video.engine import StreamEngine, StreamOptions


def run(onnx, video, **options):
    options.setdefault("post_process", "dark")
    options.setdefault("detector", "figures")
    predictions = {}
    with StreamEngine([video], StreamOptions(onnx, **options)) as engine:
        for result in engine:
            predictions[result.index] = [{"keypoints": p.keypoints.tolist(), "id": i}
                                         for p, i in zip(result.persons, result.ids)]
        stats = engine.streams[0].stats
    return predictions, stats, engine.stats.wall_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--out", default="benchmarks/harness")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="goatpose-harness-")
    onnx = build_dot_pose_onnx(os.path.join(folder, "dotpose.onnx"))
    scenes = {}
    for name, make in (("walkers", lambda j: walkers(frames=args.frames, jitter_px=j, seed=1)),
                       ("fast", lambda j: single(frames=args.frames, velocity_xy=(4.0, 0.0), jitter_px=j, seed=2)),
                       ("crossing", lambda j: crossing(frames=args.frames, jitter_px=j, seed=3))):
        for jitter in (0.0, 2.0):
            video = os.path.join(folder, "{}{:g}.avi".format(name, jitter))
            write_scene(video, video + ".truth.jsonl", make(jitter))
            scenes[name, jitter] = (video, read_truth(video + ".truth.jsonl"))
    rows = []

    def measure(scene, label, **options):
        video, truth = scenes[scene]
        predictions, stats, wall = run(onnx, video, **options)
        score = score_predictions(predictions, truth).to_dict()
        row = {"scene": scene[0], "jitter_px": scene[1], "config": label, "frames": stats.frames,
               "detector_runs": stats.detector_runs, "wall_s": round(wall, 3), "fps": round(stats.frames / wall, 2)}
        row.update(score)
        rows.append(row)
        print(label, scene, {k: row[k] for k in ("recall", "rms_px", "id_switches", "lag_frames", "fps")},
              file=sys.stderr)
        return row

    for scene in ("walkers", "fast", "crossing"):
        for jitter in (0.0, 2.0):
            measure((scene, jitter), "sync, raw")
            measure((scene, jitter), "sync, --smooth", smooth=True)
    measure(("walkers", 0.0), "sync, quarter offset", post_process="quarter")
    measure(("walkers", 0.0), "sync, argmax (none)", post_process=None)
    for delay in (60, 120):
        measure(("walkers", 0.0), "sync, detector {} ms".format(delay), detector="figures:{}".format(delay))
        measure(("walkers", 0.0), "async, detector {} ms".format(delay), detector="figures:{}".format(delay),
                detect="async")
    smoothing = []
    for scene in ("walkers", "fast", "crossing"):
        get = {(r["jitter_px"], r["config"]): r for r in rows if r["scene"] == scene}
        clean, raw, smooth = get[0.0, "sync, raw"], get[2.0, "sync, raw"], get[2.0, "sync, --smooth"]
        added = raw["rms_px"] - clean["rms_px"]
        smoothing.append({"scene": scene, "clean_rms_px": clean["rms_px"], "jitter_rms_px": raw["rms_px"],
                          "smoothed_rms_px": smooth["rms_px"], "clean_smoothed_rms_px": get[0.0, "sync, --smooth"][
                              "rms_px"], "removed": round((raw["rms_px"] - smooth["rms_px"]) / added, 3),
                          "lag_frames": smooth["lag_frames"]})
    record = {"command": "python benchmarks/record-harness.py --frames {} --out {}".format(args.frames, args.out),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows, "smoothing": smoothing}
    with open(args.out + ".json", "w") as f:
        json.dump(record, f, indent=2)
    lines = ["# The streaming engine on synthetic ground truth", "", "`{}` ({}); {} frames per scene at 25 fps, "
             "640x360, the dot-finding ONNX pose model (onnxruntime CPU), the figure detector, DARK decoding unless "
             "stated.".format(record["command"], record["created"], args.frames), "",
             "## Smoothing (One-Euro on the person's centre + keypoint offsets, default parameters)", "",
             "removed = (RMS with jitter - RMS smoothed) / (RMS with jitter - RMS without jitter): the share of the "
             "error that 2 px of jitter adds which the filter takes away.", "",
             "| scene | RMS px, no jitter | RMS px, 2 px jitter | smoothed | removed | lag (frames) | smoothed, no jitter |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in smoothing:
        lines.append("| {scene} | {clean_rms_px:.2f} | {jitter_rms_px:.2f} | {smoothed_rms_px:.2f} | {removed:.0%} | "
                     "{lag_frames} | {clean_smoothed_rms_px:.2f} |".format(**s))
    lines += ["", "## Every run", "", "| scene | jitter px | configuration | recall | precision | RMS px | id switches "
              "| lag | detector runs | fps |", "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append("| {scene} | {jitter_px:g} | {config} | {recall:.3f} | {precision:.3f} | {rms_px:.2f} | "
                     "{id_switches} | {lag_frames} | {detector_runs} | {fps} |".format(**r))
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote {0}.md and {0}.json".format(args.out))


if __name__ == "__main__":
    main()
