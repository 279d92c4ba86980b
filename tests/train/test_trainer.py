"""Training on the shared COCO sample on the CPU: the loss goes down, a resumed run equals an uninterrupted one,
the checkpoint deploys (NAM folded, what export takes), and --init-from copies HRNet's tensors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from goatpose_edge.cli import main
from goatpose_edge.models import build_model, load_checkpoint
from goatpose_edge.train.init_from import init_from_hrnet
from goatpose_edge.train.options import TrainOptions
from goatpose_edge.train.trainer import train


@pytest.fixture(scope="module")
def sample(shared_data):
    root = os.path.join(shared_data, "coco_sample")
    return root, os.path.join(root, "test_coco.json")


def _options(sample, out, **changes):
    root, ann = sample
    values = dict(model="goatpose-bl", train_ann=ann, train_images=root, batch_size=4, workers=0, out=str(out),
                  log_every=1000, seed=0)
    values.update(changes)
    return TrainOptions(**values)


def test_twelve_iterations_lower_the_loss(sample, tmp_path):
    result = train(_options(sample, tmp_path / "run", epochs=4, lr=2e-3), log=lambda line: None)
    mse = result["mse"]
    assert len(mse) == 12  # 12 persons, batch 4: 3 iterations per epoch (MSE ratio measured: 0.50)
    assert np.mean(mse[-3:]) < 0.8 * np.mean(mse[:3]), mse  # the joints MSE itself, not just the NAM penalty
    assert result["losses"][-1] < result["losses"][0]


def test_resume_continues_exactly_and_exports(sample, tmp_path):
    # 2 epochs of 1 iteration: straight, and 1 + 1 resumed from the first epoch's checkpoint (optimiser moments,
    # scheduler, the data order's seed); what a resumed epoch must restore is the same after any number of epochs
    straight = train(_options(sample, tmp_path / "straight", epochs=2, max_iters=1, batch_size=2),
                     log=lambda line: None)
    train(_options(sample, tmp_path / "resumed", epochs=1, max_iters=1, batch_size=2), log=lambda line: None)
    lines = []
    resumed = train(_options(sample, tmp_path / "resumed", epochs=2, max_iters=1, batch_size=2,
                             resume=str(tmp_path / "resumed" / "last.pth")), log=lines.append)
    assert lines[0].startswith("resumed") and "at epoch 1 (lr 0.001" in lines[0]
    assert resumed["epochs_run"] == 1 and resumed["mse"] == pytest.approx(straight["mse"][-1:], rel=1e-4)
    a, b = straight["model"].state_dict(), resumed["model"].state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    log = [json.loads(line) for line in open(str(tmp_path / "resumed" / "log.jsonl"))]
    assert [r["epoch"] for r in log] == [0, 1] and [r["lr"] for r in log] == [1e-3] * 2
    payload = torch.load(str(tmp_path / "resumed" / "last.pth"), weights_only=True)
    assert payload["epoch"] == 2 and payload["variant"] == "goatpose-bl" and payload["scheduler"]["gamma"] == 0.4

    # what export_onnx takes from a checkpoint (tests/export exports checkpoints): the deploy form, NAM folded, computes
    # what the trained model computes; load_checkpoint finds the variant the checkpoint records
    deployed = load_checkpoint(str(tmp_path / "resumed" / "last.pth"), deploy=True)
    assert deployed.variant.name == "goatpose-bl"
    x = torch.from_numpy(np.random.RandomState(0).standard_normal((1, 3, 256, 192)).astype(np.float32))
    with torch.no_grad():
        trained, folded = resumed["model"].eval()(x), deployed(x)
    assert torch.allclose(trained, folded, rtol=1e-4, atol=1e-5 * float(trained.abs().max()))


def test_init_from_an_official_hrnet_state_dict(tmp_path):
    torch.manual_seed(0)
    hrnet = build_model("hrnet-w32")
    for parameter in hrnet.parameters():  # distinct values, so a copy is recognisable
        parameter.data.normal_()
    official = str(tmp_path / "pose_hrnet_w32_256x192.pth")
    torch.save(hrnet.state_dict(), official)  # the official format: a plain state_dict
    goat = build_model("goatpose-bl")
    report = init_from_hrnet(goat, torch.load(official, weights_only=True))
    theirs, ours = hrnet.state_dict(), goat.state_dict()
    assert torch.equal(ours["conv1.weight"], theirs["conv1.weight"])  # the stem's first conv stays plain
    assert torch.equal(ours["final_layer.weight"], theirs["final_layer.weight"])
    assert torch.equal(ours["layer1.0.bn1.weight"], theirs["layer1.0.bn1.weight"])
    primary = ours["layer1.0.conv1.primary_conv.0.weight"]  # LiteConv replacing layer1.0.conv1 (64 -> 64)
    assert primary.shape[0] == 32 and torch.equal(primary, theirs["layer1.0.conv1.weight"][:32])
    assert torch.equal(ours["stage2.0.fuse_layers.0.1.0.weight"], theirs["stage2.0.fuse_layers.0.1.0.weight"])
    assert "layer1.0.conv1.cheap_operation.0.weight" in report.fresh
    assert "stage2.0.branches.0.4.bn.weight" in report.fresh  # NAM (after the 4 BasicBlocks of a branch): new
    every_conv = [k for k in theirs if k.endswith(".weight") and theirs[k].dim() == 4]
    assert len(report.adapted) == sum(1 for k in ours if k.endswith(".primary_conv.0.weight"))
    assert len(report.copied) + len(report.adapted) + len(report.fresh) == len(ours)
    assert not [k for k in every_conv if k not in report.unused and k.replace(".weight", ".primary_conv.0.weight")
                not in report.adapted and k not in report.copied]
    assert "copied" in report.line() and "adapted" in report.line()


def test_train_command(sample, tmp_path, capsys):
    root, ann = sample
    run = subprocess.run([sys.executable, "-m", "goatpose_edge", "train", "goatpose-bl", "--train-ann", ann,
                          "--train-images", root, "--val-ann", ann, "--coco-root", root, "--epochs", "1",
                          "--batch-size", "4", "--workers", "0", "--max-iters", "1", "--val-limit", "1",
                          "--out", str(tmp_path / "cli")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert run.returncode == 0, run.stderr
    assert "trained 1 epoch(s); best AP" in run.stdout
    assert {"last.pth", "best.pth", "log.jsonl"} <= set(os.listdir(str(tmp_path / "cli")))
    assert main(["train", "hrnet-w32", "--train-ann", ann, "--train-images", root, "--resume",
                 str(tmp_path / "cli" / "last.pth"), "--epochs", "2", "--out", str(tmp_path / "other")]) == 1
    assert "is a goatpose-bl checkpoint, not hrnet-w32" in capsys.readouterr().err


def test_train_without_annotations_is_one_line(tmp_path, capsys):
    assert main(["train", "goatpose-bl", "--coco-root", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "annotation file not found" in error and error.count("\n") == 1


def test_torchrun_two_processes(sample, tmp_path):
    """DDP on the CPU (gloo): one DistributedSampler share per process, rank 0 alone logs and writes checkpoints."""
    root, ann = sample
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    if not os.path.exists(torchrun):
        pytest.skip("torchrun is not installed beside this Python")
    run = subprocess.run([torchrun, "--nproc_per_node", "2", "-m", "goatpose_edge.train", "goatpose-bl",
                          "--train-ann", ann, "--train-images", root, "--epochs", "1", "--batch-size", "2",
                          "--workers", "0", "--max-iters", "1", "--out", str(tmp_path / "ddp")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "12 persons, 3 iterations/epoch x 2 process(es)" in run.stdout  # 6 persons per process, batch 2
    assert run.stdout.count("epoch 0 done") == 1  # rank 0 only
    assert load_checkpoint(str(tmp_path / "ddp" / "last.pth")).variant.name == "goatpose-bl"
