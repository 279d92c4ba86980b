"""Environment record: the Jetson parsers on real file formats, warnings, and the record on this machine."""

import sys

from goatpose_edge.bench import env


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
    import os

    record = env.environment(threads=2)
    assert record["threads"] == 2 and record["cpu_count"] >= 1 and record["cpu"]
    assert record["packages"]["numpy"] and record["packages"]["onnxruntime"]
    assert record["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    if not os.path.exists(env.TEGRA_RELEASE):  # not a Jetson: no Jetson record, no Jetson warnings
        assert record["jetson"] is None and record["warnings"] == []
    gpu = record["gpu"]
    assert gpu is None or (gpu["name"] and len(gpu["compute_capability"]) == 2)  # None on a CPU-only host
