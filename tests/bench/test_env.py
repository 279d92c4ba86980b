"""Environment record: the Jetson parsers on real file formats, warnings, and the record on this machine."""

import os
import sys

import pytest

from goatpose_edge.bench import env
from tests.helpers import SHARED_DATA

TRTFAKE_SHIM = os.path.join(os.path.dirname(SHARED_DATA), "tools", "trtfake", "shim")


def test_tegra_release_and_power_mode_parsers():
    text = "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref, EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022"
    assert env.parse_tegra_release(text) == "R32.7.1"
    assert env.parse_tegra_release("no release here") is None
    assert env.parse_nvpmodel("NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    assert env.parse_nvpmodel("NV Power Mode: MAXP_CORE_ARM\n3\n") == {"name": "MAXP_CORE_ARM", "id": 3}
    assert env.parse_nvpmodel("nvpmodel: command not found") is None


def test_clock_lock_and_warnings():
    assert env.clocks_locked("2035200", "2035200") is True
    assert env.clocks_locked("345600", "2035200") is False
    assert env.clocks_locked(None, "2035200") is None
    good = {"nvpmodel": {"name": "MAXN", "id": 0}, "jetson_clocks": True}
    assert env.jetson_warnings(good) == []
    assert env.jetson_warnings(None) == []
    slow = {"nvpmodel": {"name": "MAXP_CORE_ARM", "id": 3}, "jetson_clocks": False}
    warnings = env.jetson_warnings(slow)
    assert len(warnings) == 2 and "sudo nvpmodel -m 0" in warnings[0] and "sudo jetson_clocks" in warnings[1]
    assert "nvpmodel" in env.jetson_warnings({"nvpmodel": None, "jetson_clocks": None})[0]


def test_power_rails_read_from_ina3221_files(tmp_path):
    folder = tmp_path / "iio:device0"
    folder.mkdir()
    for index, (name, mw) in enumerate([("VDD_SYS_GPU", "1234"), ("VDD_SYS_SOC", "987"), ("VDD_4V0_WIFI", "12")]):
        (folder / "rail_name_{}".format(index)).write_text(name + "\n")
        (folder / "in_power{}_input".format(index)).write_text(mw + "\n")
    assert env.read_power_rails([str(folder), str(tmp_path / "missing")]) == {
        "VDD_SYS_GPU": 1234, "VDD_SYS_SOC": 987, "VDD_4V0_WIFI": 12}
    assert env.read_power_rails([str(tmp_path / "missing")]) is None


def test_environment_record_here():
    record = env.environment(threads=2)
    assert record["threads"] == 2 and record["cpu_count"] >= 1 and record["cpu"]
    assert record["packages"]["numpy"] and record["packages"]["onnxruntime"]
    assert record["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    if not os.path.exists(env.TEGRA_RELEASE):  # not a Jetson: no Jetson record, no Jetson warnings
        assert record["jetson"] is None and record["warnings"] == []
    gpu = record["gpu"]
    assert gpu is None or (gpu["name"] and len(gpu["compute_capability"]) == 2)  # None on a CPU-only host


def test_load_meter_counts_the_cpu_other_processes_use():
    import subprocess
    import time

    meter = env.LoadMeter()
    # a spinner that is not this process's child once its shell exits (reparented): its CPU time is someone else's
    subprocess.run(["sh", "-c", "{} -c 'import time\nend = time.time() + 0.6\nwhile time.time() < end: pass' &".format(
        sys.executable)], check=True)
    time.sleep(0.8)
    record = meter.record()
    assert record["cores"] >= 1 and len(record["load_before"]) == 3 and len(record["load_after"]) == 3
    assert record["other_cpus"] >= 0.5  # the spinner's 0.6 s of CPU in about 0.8 s of wall time (or more: a busy box)
    assert 0.8 <= record["seconds"] < 5


@pytest.mark.skipif(not os.path.isdir(TRTFAKE_SHIM), reason="../shared/tools/trtfake is not beside the checkout")
def test_a_fake_tensorrt_is_marked_in_the_environment_record():
    import json
    import subprocess

    shim = TRTFAKE_SHIM
    code = ("import json, tensorrt\nfrom goatpose_edge.bench.env import environment\nrecord = environment()\n"
            "print(json.dumps([record['fake_tensorrt'], record['gpu']['name']]))")
    run = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=dict(os.environ, PYTHONPATH=shim, TRTFAKE_VERSION="8.2.1",
                                                           TRTFAKE_PLATFORM="tx2", TRTFAKE_QUIET="1"))
    assert run.returncode == 0, run.stderr
    fake, gpu = json.loads(run.stdout.splitlines()[-1])
    assert fake == "FAKE TensorRT (trtfake): API conformance only, timings are modelled (tensorrt 8.2.1.8, pycuda " \
                   "faked)"
    assert gpu == "NVIDIA Tegra X2 [FAKE: trtfake]"
    assert env.fake_tensorrt() is None  # this process imported no fake
