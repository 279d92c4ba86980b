"""Shared test fixtures: paths to the real test data beside the checkout (../shared/data)."""

import functools
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is not beside the checkout")
    return SHARED_DATA


@functools.lru_cache(maxsize=None)
def measured_complexity(name):
    """``Complexity`` of a freshly built variant, measured once per test session."""
    from goatpose_edge.models import build_model
    from goatpose_edge.models.complexity import measure
    from goatpose_edge.variants import VARIANTS

    return measure(VARIANTS[name], build_model(name))


def randomize_weights(model, seed=0):
    """Give every tensor of ``model`` seeded values with realistic magnitudes (heatmaps of order 1).

    The official initialisation (conv weights N(0, 0.001)) yields heatmaps near 1e-12, too small to tell a numeric
    difference from a structural one.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not value.dtype.is_floating_point:
                continue
            if key.endswith("running_var"):
                new = torch.rand(value.shape, generator=generator) + 0.5
            elif key.endswith("running_mean"):
                new = torch.randn(value.shape, generator=generator) * 0.1
            elif value.dim() == 1 and key.endswith("weight"):
                new = torch.rand(value.shape, generator=generator) * 0.5 + 0.25
            elif key.endswith("bias"):
                new = torch.randn(value.shape, generator=generator) * 0.05
            else:
                new = torch.randn(value.shape, generator=generator) * (1.0 / value[0].numel()) ** 0.5
            value.copy_(new)
    return model


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
