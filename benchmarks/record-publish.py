"""Records benchmarks/publish.md: the pipeline's fps without --publish, publishing to a live Mosquitto, and
publishing to a stalled one (SIGSTOP), interleaved rounds on one synthetic scene (run from the repository root after
`make venv`, with Debian's mosquitto installed; ~3 min on 2 cores).

The scene is the harness's (walking figures, the dot pose model, the figure detector): a fast pipeline, so any cost
of the publisher shows as a larger share of the frame time than with a real model.

    .venv/bin/python benchmarks/record-publish.py [--rounds 3] [--frames 150]
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from goatpose_edge.bench.env import cpu_name  # noqa: E402
from goatpose_edge.mqtt.publisher import MqttPublisher, PublishOptions  # noqa: E402
from goatpose_edge.synthetic import build_dot_pose_onnx, walkers, write_scene  # noqa: E402
from goatpose_edge.video.app import VideoOptions, run_video  # noqa: E402
from goatpose_edge.video.engine import StreamOptions  # noqa: E402
from tests.mqtt.broker import Mosquitto  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--out", default="benchmarks/publish.md")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="goatpose-publish-bench-")
    video = os.path.join(folder, "walkers.avi")
    write_scene(video, video + ".truth.jsonl", walkers(frames=args.frames, width=640, height=360, seed=1))
    onnx = build_dot_pose_onnx(os.path.join(folder, "dotpose.onnx"))
    live = Mosquitto(os.path.join(folder, "live")).start()
    stalled = Mosquitto(os.path.join(folder, "stalled")).start()
    stalled.kill(signal.SIGSTOP)
    fps = {"no --publish": [], "--publish, broker up": [], "--publish, broker stalled (SIGSTOP)": []}
    try:
        for round_index in range(args.rounds):
            for name in fps:
                sinks = []
                if name != "no --publish":
                    broker = live if "up" in name else stalled
                    sinks = [MqttPublisher(PublishOptions(broker.url, device_id="bench", close_grace_s=1.0,
                                                          spool=os.path.join(folder, "spool-{}-{}".format(
                                                              round_index, len(fps[name])))))]
                summary = run_video(VideoOptions([video], StreamOptions(onnx, detector="figures"),
                                                 jsonl=os.path.join(folder, "run.jsonl"), progress=False), sinks=sinks)
                fps[name].append(summary.fps)
                print("round {} {}: {:.2f} fps".format(round_index + 1, name, summary.fps), flush=True)
    finally:
        stalled.stop()
        live.stop()
    base = statistics.median(fps["no --publish"])
    lines = ["# --publish: the pipeline's fps with and without a broker", "",
             "Command: `.venv/bin/python benchmarks/record-publish.py --rounds {} --frames {}` (Mosquitto {} on "
             "loopback; {}, {} frames of a 640x360 synthetic scene with 4 figures, the dot pose model and the figure "
             "detector, JSONL written in every configuration; {} interleaved rounds, median and min..max)."
             .format(args.rounds, args.frames, "2.0 (Debian)", cpu_name(), args.frames, args.rounds),
             "", "| configuration | fps median | min..max | vs no --publish |", "| --- | ---: | ---: | ---: |"]
    for name, values in fps.items():
        lines.append("| {} | {:.2f} | {:.2f}..{:.2f} | {:.1%} |".format(name, statistics.median(values), min(values),
                                                                        max(values), statistics.median(values) / base))
    lines += ["", "Goal: fps with a stalled broker >= 95 % of fps without --publish."]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
