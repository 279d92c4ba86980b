"""`goatpose train` on bad options and bad annotation files: one line, exit 1, nothing written, no model built; and a
SIGTERM while a checkpoint is being written leaves the last complete checkpoint and no temporary file."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from goatpose_edge.cli import main
from goatpose_edge.errors import GoatPoseError, UnknownModelError
from goatpose_edge.train.options import TrainOptionError, TrainOptions


@pytest.fixture(scope="module")
def sample(shared_data):
    root = os.path.join(shared_data, "coco_sample")
    with open(os.path.join(root, "test_coco.json")) as f:
        return root, os.path.join(root, "test_coco.json"), json.load(f)


@pytest.fixture
def no_model(monkeypatch):
    """Building a model fails the test: every refusal below must come before it."""
    import goatpose_edge.models

    def build_model(*args, **kwargs):
        raise AssertionError("a model was built before the input was checked")

    monkeypatch.setattr(goatpose_edge.models, "build_model", build_model)


def _train(capsys, sample, out, *extra, ann=None, images=None):
    root, default_ann, _ = sample
    argv = ["train", "goatpose-bl", "--train-ann", ann or default_ann, "--train-images", images or root,
            "--epochs", "1", "--batch-size", "2", "--workers", "0", "--max-iters", "1", "--out", str(out)]
    try:
        code = main(argv + list(extra))
    except SystemExit as exc:  # argparse's refusal
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _refused(result, message, out, status=1):
    """Refused in one line with ``status`` (2: a command-line mistake, said as argparse says its own)."""
    code, stdout, stderr = result
    assert code == status, (code, stdout, stderr)
    assert "trained" not in stdout and "checkpoints in" not in stdout
    prefix = "goatpose: error: " if status == 1 else "goatpose train: error: "
    assert stderr.count("\n") == 1 and stderr.startswith(prefix) and message in stderr, stderr
    assert "internal error" not in stderr
    assert not os.path.exists(str(out))  # nothing written, not even the folder


@pytest.mark.parametrize("flag, value", [
    ("--epochs", "0"), ("--epochs", "-2"), ("--batch-size", "0"), ("--batch-size", "-4"), ("--workers", "-1"),
    ("--lr", "0"), ("--lr", "-0.001"), ("--lr", "nan"), ("--lr", "inf"), ("--nam-penalty", "-1"),
    ("--val-every", "0"), ("--val-limit", "0"), ("--max-iters", "0"), ("--log-every", "0"), ("--seed", "-1"),
    ("--device", "gpu0"),
])
def test_options_that_cannot_train_are_refused(sample, tmp_path, capsys, no_model, flag, value):
    out = tmp_path / "run"
    _refused(_train(capsys, sample, out, flag, value), "argument {}: {} must be".format(flag, flag), out, status=2)


def test_resume_and_init_from_together(sample, tmp_path, capsys, no_model):
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    out = tmp_path / "run"
    _refused(_train(capsys, sample, out, "--resume", str(a), "--init-from", str(b)), "not both", out, status=2)


@pytest.mark.parametrize("name", ["last.pth", "best.pth", "log.jsonl"])
def test_a_fresh_run_never_replaces_another_run_in_its_folder(sample, tmp_path, capsys, no_model, name):
    """The issue's case: a goatpose-bl run's folder given to a fresh run; refused before any work unless it resumes
    that run (the test's --resume file is not a real checkpoint: the plan passes, the trainer then refuses it)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / name).write_bytes(b"another run's file")
    code, stdout, stderr = _train(capsys, sample, out)
    victim = str(out / name)
    assert code == 1 and stderr.startswith("goatpose: error: refusing to replace {} (--out)".format(victim))
    assert "give --resume {} to continue that run".format(out / "last.pth") in stderr and stderr.count("\n") == 1
    assert os.listdir(str(out)) == [name] and (out / name).read_bytes() == b"another run's file"
    (out / "last.pth").write_bytes(b"not a checkpoint")
    code, _, stderr = _train(capsys, sample, out, "--resume", str(out / "last.pth"))
    assert code == 1 and "refusing" not in stderr and "cannot read checkpoint" in stderr, stderr


def test_library_callers_inherit_the_checks(sample, tmp_path, no_model):
    from goatpose_edge.train.trainer import train

    root, ann, _ = sample
    with pytest.raises(TrainOptionError, match="--epochs must be a whole number >= 1, got 0"):
        TrainOptions(model="goatpose-bl", epochs=0)
    with pytest.raises(UnknownModelError, match="unknown model 'goatpose-xxl'"):
        TrainOptions(model="goatpose-xxl")
    options = TrainOptions(model="goatpose-bl", train_ann=ann, train_images=root, out=str(tmp_path / "run"))
    options.batch_size = 0  # changed after construction: train() checks again
    with pytest.raises(TrainOptionError, match="--batch-size"):
        train(options, log=lambda line: None)
    assert not os.path.exists(str(tmp_path / "run"))


def _without(data, key):
    return dict(data, annotations=[{k: v for k, v in a.items() if k != key} for a in data["annotations"]])


@pytest.mark.parametrize("make, message", [
    (lambda d: "{ not json", "is not valid JSON"),
    (lambda d: d["annotations"], "not a COCO annotation file (a JSON object with images/annotations/categories "
                                 "expected)"),
    (lambda d: _without(d, "keypoints"), "has no 'keypoints'"),
    (lambda d: dict(d, annotations=[dict(a, num_keypoints=0) for a in d["annotations"]]),
     "has no person annotations with keypoints"),
    (lambda d: dict(d, images=[], annotations=[]), "no images in "),
    (lambda d: dict(d, annotations=[dict(a, bbox=[0, 0]) for a in d["annotations"]]), "bbox that is not"),
], ids=["invalid-json", "json-list", "no-keypoints", "zero-persons", "no-images", "bad-bbox"])
def test_bad_training_annotations_are_refused(sample, tmp_path, capsys, no_model, make, message):
    _, _, data = sample
    value = make(data)
    bad = tmp_path / "bad.json"
    bad.write_text(value if isinstance(value, str) else json.dumps(value))
    out = tmp_path / "run"
    _refused(_train(capsys, sample, out, ann=str(bad)), message, out)


def test_bad_validation_annotations_are_refused_before_training(sample, tmp_path, capsys, no_model):
    _, _, data = sample
    bad = tmp_path / "val.json"
    bad.write_text(json.dumps(_without(data, "num_keypoints")))
    out = tmp_path / "run"
    _refused(_train(capsys, sample, out, "--val-ann", str(bad)), "has no 'num_keypoints'", out)


def test_missing_or_empty_images_folder(sample, tmp_path, capsys, no_model):
    out = tmp_path / "run"
    _refused(_train(capsys, sample, out, images=str(tmp_path / "nowhere")), "training images folder", out)
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(_train(capsys, sample, out, images=str(empty)), "4 of the 4 training images", out)


def test_resuming_a_finished_run_is_refused(sample, tmp_path, capsys, no_model):
    import torch

    done = str(tmp_path / "done.pth")  # the training state a 3-epoch run leaves (weights are not needed here)
    torch.save({"format": "goatpose-edge-checkpoint/1", "variant": "goatpose-bl", "state_dict": {}, "optimizer": {},
                "epoch": 3, "best_ap": -1.0}, done)
    out = tmp_path / "run"
    result = _train(capsys, sample, out, "--resume", done)  # --epochs 1 < 3
    _refused(result, "has already run 3 epoch(s)", out)
    _refused(_train(capsys, sample, out, "--resume", done, "--epochs", "3"), "pass --epochs above 3", out)


_INTERRUPTED_RUN = textwrap.dedent("""
    import os, signal, sys, time
    import torch

    real_save, calls = torch.save, []

    def save(obj, f, *args, **kwargs):  # the second checkpoint is cut off by SIGTERM half-way through
        calls.append(f)
        if len(calls) == 2:
            f.write(b"half a checkpoint")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)
        return real_save(obj, f, *args, **kwargs)

    torch.save = save

    import goatpose_edge.models as models

    real_build = models.build_model

    def build_model(name, *args, **kwargs):  # the real variant behind a 1x1-conv forward: iterations in ms, not s
        model = real_build(name, *args, **kwargs)
        model.stand_in = torch.nn.Conv2d(3, model.contract.num_keypoints, 1)
        model.forward = lambda x: model.stand_in(torch.nn.functional.avg_pool2d(x, model.contract.heatmap_stride))
        return model

    models.build_model = build_model
    if sys.argv[1] == "cli":
        from goatpose_edge.cli import main
        sys.exit(main(["train"] + sys.argv[2:]))
    from goatpose_edge.train.__main__ import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("entry", ["cli", "torchrun-entry"])
def test_sigterm_while_writing_a_checkpoint_leaves_the_last_complete_one(sample, tmp_path, entry):
    import torch

    root, ann, _ = sample
    out = tmp_path / "run"
    run = subprocess.run([sys.executable, "-c", _INTERRUPTED_RUN, entry, "goatpose-bl", "--train-ann", ann,
                          "--train-images", root, "--epochs", "2", "--batch-size", "2", "--workers", "0",
                          "--max-iters", "1", "--log-every", "1000", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert run.returncode in (130, 143), (run.returncode, run.stderr[-2000:])
    assert run.stderr.count("\n") == 1 and ("terminated" in run.stderr or "interrupted" in run.stderr), run.stderr
    assert "trained" not in run.stdout
    assert sorted(os.listdir(str(out))) == ["last.pth", "log.jsonl"]  # no .last.*.tmp.pth left beside them
    payload = torch.load(str(out / "last.pth"), weights_only=True)
    assert payload["epoch"] == 1  # epoch 0's checkpoint, whole; epoch 1's never replaced it
    assert [json.loads(line)["epoch"] for line in open(str(out / "log.jsonl"))] == [0]


def test_one_line_from_a_loader_worker():
    from goatpose_edge.train.trainer import _one_line

    worker = GoatPoseError("Caught GoatPoseError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                           "call last):\n  File \"x.py\", line 1, in f\ngoatpose_edge.errors.GoatPoseError: cannot "
                           "read training image /data/a.jpg\n")
    short = _one_line(worker)
    assert isinstance(short, GoatPoseError) and str(short) == "cannot read training image /data/a.jpg"
    plain = GoatPoseError("one line already")
    assert _one_line(plain) is plain


def test_an_undecodable_image_read_by_a_loader_worker_fails_in_one_line(sample, tmp_path, capsys):
    _, _, data = sample
    image = dict(data["images"][0], file_name="broken.jpg")
    persons = [a for a in data["annotations"] if a["image_id"] == image["id"]]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(dict(data, images=[image], annotations=persons)))
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    out = tmp_path / "run"
    code, stdout, stderr = _train(capsys, sample, out, "--workers", "1", ann=str(ann), images=str(folder))
    assert code == 1 and "trained" not in stdout
    assert stderr.count("\n") == 1 and "training image: image " in stderr and "broken.jpg" in stderr, stderr
    assert "Traceback" not in stderr and "worker" not in stderr
    assert not os.path.exists(str(out / "last.pth"))


def test_a_failed_run_leaves_no_empty_out_folder(tmp_path, monkeypatch):
    from goatpose_edge.train import trainer
    from goatpose_edge.train.options import TrainOptions

    def fails(options, log):
        os.makedirs(options.out, exist_ok=True)
        raise GoatPoseError("loss became nan")

    monkeypatch.setattr(trainer, "_train", fails)
    out = tmp_path / "run"
    with pytest.raises(GoatPoseError):
        trainer.train(TrainOptions(model="goatpose-bl", out=str(out)))
    assert not out.exists()
    existing = tmp_path / "old"
    existing.mkdir()
    with pytest.raises(GoatPoseError):
        trainer.train(TrainOptions(model="goatpose-bl", out=str(existing)))
    assert existing.is_dir()  # a folder that was there stays


def test_a_full_disk_while_training_is_one_line_and_leaves_nothing_half_written(sample, tmp_path, capsys,
                                                                                   monkeypatch):
    import torch

    import goatpose_edge.models as models
    from tests.cli.test_cli import disk_full_after

    real_build = models.build_model

    def build_model(name, *args, **kwargs):  # the real variant behind a 1x1-conv forward: iterations in ms
        model = real_build(name, *args, **kwargs)
        model.stand_in = torch.nn.Conv2d(3, model.contract.num_keypoints, 1)
        model.forward = lambda x: model.stand_in(torch.nn.functional.avg_pool2d(x, model.contract.heatmap_stride))
        return model

    monkeypatch.setattr(models, "build_model", build_model)
    out = tmp_path / "run"
    out.mkdir()
    disk_full_after(monkeypatch, out)
    code, stdout, stderr = _train(capsys, sample, out)
    assert code == 1 and stderr == "goatpose: error: no space left on device writing {}\n".format(
        out / "last.pth"), stderr
    assert os.listdir(str(out)) == []  # no checkpoint, no hidden temporary file, no log line
