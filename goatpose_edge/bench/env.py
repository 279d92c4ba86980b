"""Where a benchmark ran: CPU, GPU, library versions, threads and, on a Jetson, L4T, power mode, clocks and power.

Everything is read without importing torch and without root: files under /proc, /sys and /etc, ``nvpmodel -q``
(which any user may run), package metadata. Whatever cannot be read is recorded as None, never guessed.
"""

import os
import platform
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

#: packages whose versions every result records (distribution names)
PACKAGES = ("goatpose-edge", "numpy", "opencv-python", "onnxruntime", "onnxruntime-gpu", "torch", "tensorrt",
            "pycuda", "onnx")

TEGRA_RELEASE = "/etc/nv_tegra_release"
JETSON_MODEL = "/proc/device-tree/model"
#: the TX2's GPU devfreq folder (L4T R32)
GPU_DEVFREQ_DIR = "/sys/devices/gpu.0/devfreq"
CPU_FREQ_DIR = "/sys/devices/system/cpu/cpu0/cpufreq"
#: TX2 INA3221 power monitors (L4T R32): in_power<N>_input in mW, rail_name_<N>
INA_DIRS = ("/sys/bus/i2c/drivers/ina3221x/0-0040/iio:device0", "/sys/bus/i2c/drivers/ina3221x/0-0041/iio:device1")


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip("\x00 \n")
    except OSError:
        return None


def package_version(dist: str) -> Optional[str]:
    """Installed version of a distribution from its pip metadata; for JetPack's system packages, which have none
    (cv2, tensorrt, pycuda from apt), the module's own ``__version__``. None when absent."""
    try:
        from importlib import metadata  # novm (Python 3.8+; pkg_resources serves 3.6)

        return metadata.version(dist)
    except ImportError:
        try:
            import pkg_resources

            return pkg_resources.get_distribution(dist).version
        except Exception:  # noqa: BLE001 - absent, or pkg_resources itself missing
            pass
    except Exception:  # noqa: BLE001 - metadata.PackageNotFoundError
        pass
    module = {"opencv-python": "cv2", "tensorrt": "tensorrt", "pycuda": "pycuda"}.get(dist)
    if module is None:
        return None
    try:
        imported = __import__(module)
        return getattr(imported, "__version__", None) or getattr(imported, "VERSION_TEXT", None)  # pycuda's name
    except Exception:  # noqa: BLE001 - not installed, or a broken install: no version to record
        return None


def cpu_name() -> str:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Processor"):
        match = re.search(r"^{}\s*:\s*(.+)$".format(key), text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or platform.machine()


def parse_tegra_release(text: str) -> Optional[str]:
    """'# R32 (release), REVISION: 7.1, GCID: ...' -> 'R32.7.1'."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text or "")
    return "R{}.{}".format(match.group(1), match.group(2)) if match else None


def parse_nvpmodel(text: str) -> Optional[Dict[str, object]]:
    """``nvpmodel -q`` output ('NV Power Mode: MAXN\\n0') -> {"name": "MAXN", "id": 0}."""
    name = re.search(r"NV Power Mode:\s*(\S+)", text or "")
    if not name:
        return None
    ident = re.search(r"^\s*(\d+)\s*$", text, re.MULTILINE)
    return {"name": name.group(1), "id": int(ident.group(1)) if ident else None}


def clocks_locked(min_freq: Optional[str], max_freq: Optional[str]) -> Optional[bool]:
    """jetson_clocks pins each clock's minimum to its maximum; None when the files are unreadable."""
    if not min_freq or not max_freq or not min_freq.isdigit() or not max_freq.isdigit():
        return None
    return int(min_freq) == int(max_freq)


def _gpu_devfreq() -> Optional[str]:
    """The GPU's devfreq node, e.g. /sys/devices/gpu.0/devfreq/17000000.gp10b on a TX2."""
    if os.path.isdir(GPU_DEVFREQ_DIR):
        for entry in sorted(os.listdir(GPU_DEVFREQ_DIR)):
            return os.path.join(GPU_DEVFREQ_DIR, entry)
    return None


def jetson_record() -> Optional[Dict[str, object]]:
    """L4T release, model, nvpmodel mode, whether clocks are pinned, power per rail; None off a Jetson."""
    release = parse_tegra_release(_read(TEGRA_RELEASE) or "")
    if release is None:
        return None
    record = {"l4t": release, "model": _read(JETSON_MODEL)}  # type: Dict[str, object]
    try:
        out = subprocess.run(["nvpmodel", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10,
                             universal_newlines=True).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    record["nvpmodel"] = parse_nvpmodel(out)
    cpu = CPU_FREQ_DIR + "/"
    gpu = _gpu_devfreq()
    record["cpu_clock_locked"] = clocks_locked(_read(cpu + "scaling_min_freq"), _read(cpu + "scaling_max_freq"))
    record["gpu_clock_locked"] = clocks_locked(_read(gpu + "/min_freq"), _read(gpu + "/max_freq")) if gpu else None
    record["jetson_clocks"] = (record["cpu_clock_locked"] and record["gpu_clock_locked"]) if None not in (
        record["cpu_clock_locked"], record["gpu_clock_locked"]) else None
    record["power_mw"] = read_power_rails(INA_DIRS)
    return record


def read_power_rails(directories) -> Optional[Dict[str, int]]:
    """{rail name: mW} from INA3221 iio directories (``rail_name_N``, ``in_power N _input``), None if unreadable."""
    rails = {}
    for directory in directories:
        for index in range(3):
            name, power = _read("{}/rail_name_{}".format(directory, index)), _read(
                "{}/in_power{}_input".format(directory, index))
            if name and power and power.lstrip("-").isdigit():
                rails[name] = int(power)
    return rails or None


def jetson_warnings(jetson: Optional[Dict[str, object]]) -> List[str]:
    """What makes a Jetson benchmark slower than the device can be: not MAXN (mode 0), clocks not pinned."""
    if not jetson:
        return []
    warnings = []
    mode = jetson.get("nvpmodel") or {}
    # the name decides: MAXN is mode 0 on the TX2, Nano and AGX Xavier but has other numbers on other modules
    if mode and not str(mode.get("name", "")).upper().startswith("MAXN"):
        warnings.append("nvpmodel is in mode {} ({}), not MAXN: run `sudo nvpmodel -m 0` (MAXN on a TX2) for the "
                        "device's best numbers".format(mode.get("id"), mode.get("name")))
    if jetson.get("nvpmodel") is None:
        warnings.append("could not read the power mode (nvpmodel -q): make sure it is MAXN (`sudo nvpmodel -m 0`)")
    if jetson.get("jetson_clocks") is False:
        warnings.append("clocks are not pinned: run `sudo jetson_clocks` before benchmarking")
    return warnings


#: what a record says when this process ran on trtfake's strict fakes of tensorrt / pycuda (../shared/tools/trtfake)
FAKE_TENSORRT = "FAKE TensorRT (trtfake): API conformance only, timings are modelled"


def fake_tensorrt() -> Optional[str]:
    """``FAKE_TENSORRT`` and the faked modules when this process imported trtfake's ``tensorrt`` or ``pycuda`` (each
    fake module sets ``__trtfake__ = True``; real ones have no such attribute), else None. Only modules already
    imported are looked at: nothing is imported to find out."""
    faked = []
    for name in ("tensorrt", "pycuda"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__trtfake__", False) is True:
            version = getattr(module, "__version__", None) if name == "tensorrt" else None
            faked.append("{} {}".format(name, version) if version else name)
    return "{} ({} faked)".format(FAKE_TENSORRT, ", ".join(faked)) if faked else None


def gpu_record() -> Optional[Dict[str, object]]:
    """GPU 0's name and compute capability through pycuda (None without pycuda or a GPU)."""
    try:
        from goatpose_edge.runtime.cuda import CudaContext

        context = CudaContext(0)
        version = getattr(context.cuda, "get_version", lambda: None)()  # the CUDA pycuda was built against
        return {"name": context.gpu_name, "compute_capability": list(context.compute_capability),
                "cuda": ".".join(str(v) for v in version) if version else None,
                "cuda_driver": getattr(context.cuda, "get_driver_version", lambda: None)()}
    except Exception:  # noqa: BLE001 - no pycuda, no driver, no GPU: all mean "no GPU record"
        return None


def environment(threads: Optional[int] = None, gpu: bool = True) -> Dict[str, object]:
    """The environment record stored with every result."""
    import numpy as np

    record = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "packages": {name: package_version(name) for name in PACKAGES},
        "numpy": np.__version__,
        "gpu": gpu_record() if gpu else None,
        "jetson": jetson_record(),
    }  # type: Dict[str, object]
    record["fake_tensorrt"] = fake_tensorrt()  # after gpu_record and the packages, which import pycuda / tensorrt
    if record["fake_tensorrt"] and record["gpu"]:  # the fake's GPU name (NVIDIA Tegra X2, ...) is never unmarked
        record["gpu"]["name"] = "{} [FAKE: trtfake]".format(record["gpu"]["name"])
    try:
        import cv2

        record["opencv_threads"] = cv2.getNumThreads()
    except ImportError:
        record["opencv_threads"] = None
    record["warnings"] = jetson_warnings(record["jetson"])
    return record


def tensorrt_record() -> Dict[str, object]:
    """TensorRT version, GPU and fast FP16/INT8 as the builder sees them, or {"error": why not}."""
    from goatpose_edge.errors import GoatPoseError

    try:
        from goatpose_edge.engines.builder import platform_caps

        caps = platform_caps()
    except (GoatPoseError, ImportError, OSError) as exc:
        return {"error": str(exc)}
    return {"tensorrt": caps.tensorrt_version, "gpu": caps.gpu_name,
            "compute_capability": list(caps.compute_capability), "fast_fp16": caps.fast_fp16,
            "fast_int8": caps.fast_int8, "dla_cores": caps.dla_cores, "fake": fake_tensorrt()}


def describe(record: Dict[str, object], trt: Dict[str, object]) -> List[str]:
    """Human-readable lines of an environment record and a ``tensorrt_record``."""
    lines = ["machine: {} ({} cores), {}, Python {}".format(record["cpu"], record["cpu_count"], record["machine"],
                                                            record["python"])]
    jetson = record.get("jetson")
    if jetson:
        mode = jetson.get("nvpmodel") or {}
        lines += ["jetson: {} L4T {}".format(jetson.get("model"), jetson.get("l4t")),
                  "power mode: {} (nvpmodel {})".format(mode.get("name", "unknown"), mode.get("id", "?")),
                  "clocks pinned (jetson_clocks): {} (CPU {}, GPU {})".format(
                      jetson.get("jetson_clocks"), jetson.get("cpu_clock_locked"), jetson.get("gpu_clock_locked")),
                  "power (mW): {}".format(jetson.get("power_mw") or "not readable")]
    else:
        lines.append("jetson: no (/etc/nv_tegra_release not found)")
    if trt.get("fake"):
        lines.append(trt["fake"])
    if "error" in trt:
        lines.append("tensorrt: unavailable: {}".format(trt["error"]))
    else:
        lines.append("tensorrt: {} on {} (compute {}), fast FP16: {}, fast INT8: {}, DLA cores: {}".format(
            trt["tensorrt"], trt["gpu"], ".".join(map(str, trt["compute_capability"])),
            "yes" if trt["fast_fp16"] else "no", "yes" if trt["fast_int8"] else "no", trt["dla_cores"]))
    packages = record.get("packages", {})
    lines.append("packages: " + ", ".join("{} {}".format(k, v) for k, v in sorted(packages.items()) if v))
    lines += ["WARNING: " + w for w in record.get("warnings", [])]
    return lines


def _cpu_seconds() -> Optional[Tuple[float, float]]:
    """(seconds all CPUs were busy since boot, from /proc/stat; seconds this process and its children used), or
    None where /proc/stat cannot be read (not Linux)."""
    text = _read("/proc/stat")
    fields = text.splitlines()[0].split() if text else []
    if len(fields) < 8 or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    own = os.times()
    return ((user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"),
            own.user + own.system + own.children_user + own.children_system)


def load_average() -> Optional[List[float]]:
    """The 1, 5 and 15-minute load averages, or None where the system has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


class LoadMeter:
    """How busy the machine was around a measurement: the load averages at the start and at the end, and the CPUs
    that *other* processes kept busy meanwhile (all CPUs' busy time minus this process's, over the wall time).

    The load average at the end counts this process's own threads (a bench that used every core ends near the core
    count), so only the one at the start and the other processes' CPUs say whether someone else was busy."""

    def __init__(self):
        self.before = load_average()
        self._cpu = _cpu_seconds()
        self._start = time.monotonic()

    def record(self) -> Dict[str, object]:
        """{"cores", "load_before", "load_after" ([1, 5, 15 min]), "other_cpus" (None where unreadable),
        "seconds"}."""
        wall = time.monotonic() - self._start
        cpu = _cpu_seconds()
        other = None
        if cpu is not None and self._cpu is not None and wall > 0:
            other = round(max(0.0, ((cpu[0] - self._cpu[0]) - (cpu[1] - self._cpu[1])) / wall), 2)
        return {"cores": os.cpu_count(), "load_before": self.before, "load_after": load_average(),
                "other_cpus": other, "seconds": round(wall, 1)}
