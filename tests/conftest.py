"""Shared test fixtures: paths to the real test data beside the checkout (../shared/data)."""

import os

import pytest

from tests.helpers import REPO_ROOT, SHARED_DATA, Exports  # noqa: F401 - REPO_ROOT re-exported for fixtures


#: The longest test files (15-75 s each on 2 cores), longest first. ``make test`` runs a file in one xdist worker
#: (--dist loadfile); these start first, so that no long file starts last and holds the whole run up while the other
#: worker is idle (the rest of the suite is many short files). Only the order changes; a file missing here just runs
#: in its turn.
SLOW_FILES = ("tests/train/test_trainer.py", "tests/export/test_export.py", "tests/engines/test_trtfake.py",
              "tests/video/test_harness.py", "tests/video/test_engine_faults.py", "tests/video/test_engine_matrix.py",
              "tests/bench/test_bench_command.py", "tests/mqtt/test_dashboard.py", "tests/train/test_train_inputs.py",
              "tests/engines/test_trt_failures.py", "tests/video/test_live_view.py", "tests/mqtt/test_publish.py",
              "tests/models/test_checkpoint.py", "tests/export/test_cli_export.py", "tests/video/test_video_app.py")


def pytest_configure(config):
    # pytest-xdist 3 hands out the files with the most tests first (--loadscope-reorder, its default): by count, the
    # longest file of the suite (6 tests) came last. In collection order instead, which starts with SLOW_FILES.
    if getattr(config.option, "loadscopereorder", None):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    rank = {path: index for index, path in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """``Exports``: the session's seeded checkpoints and ONNX exports (``exports.checkpoint(name)``,
    ``exports.onnx(name, fliptest=..., batch=..., images=...)``), each made once, in pytest's temporary folder.

    Under pytest-xdist (``make test``) one folder for all the workers, beside their own temporary folders in the run's:
    an export one worker made is not made again by another."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.getbasetemp().parent / "exports"  # the run's folder, shared by its workers
        folder.mkdir(exist_ok=True)
        return Exports(str(folder))
    return Exports(str(tmp_path_factory.mktemp("exports")))


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is not beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def coco_persons(shared_data):
    """[(image path, (x, y, w, h))] of the annotated persons with keypoints in the shared COCO sample."""
    import json

    folder = os.path.join(shared_data, "coco_sample")
    with open(os.path.join(folder, "test_coco.json")) as f:
        data = json.load(f)
    files = {image["id"]: os.path.join(folder, image["file_name"]) for image in data["images"]}
    return [(files[a["image_id"]], tuple(a["bbox"])) for a in data["annotations"] if a["num_keypoints"] > 0]


@pytest.fixture(scope="session")
def person_image_arg(coco_persons):
    """'IMG@x,y,w,h' of a real COCO person, the syntax of ``--image``."""
    path, box = coco_persons[0]
    return "{}@{}".format(path, ",".join(str(v) for v in box))
