"""Shared test fixtures: paths to the real test data beside the checkout (../shared/data)."""

import os

import pytest

from tests.helpers import REPO_ROOT, SHARED_DATA  # noqa: F401 - re-exported for fixtures


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
