"""The training loop: data, recipe, AMP, DDP (torchrun), validation through ``goatpose eval``'s code, checkpoints
in the toolkit's format every epoch (``last.pth``) and for the best AP (``best.pth``), exact resume.

A checkpoint holds weights, variant, contract, optimiser state, the schedule, the next epoch to run, the best AP and
the AMP scaler; the learning rate is a pure function of the epoch (``Recipe.lr_at``), so a resumed run continues
with the same lr at the same epoch.
"""

import json
import os
import re
import time
from dataclasses import asdict
from typing import Callable

import numpy as np
import torch

from goatpose_edge.errors import CheckpointError, GoatPoseError
from goatpose_edge.runtime.base import Runner
from goatpose_edge.signals import Terminated, sigterm_as_interrupt
from goatpose_edge.train.data import Augment, CocoKeypoints
from goatpose_edge.train.options import TrainOptions
from goatpose_edge.train.recipe import Recipe, total_loss


class ModelRunner(Runner):
    """A model being trained, behind the runner contract, so validation is ``goatpose eval``'s own code."""

    backend = "torch (training)"

    def __init__(self, model, device):
        super().__init__("<{} in training>".format(model.variant.name))
        self.model, self.device, self.contract = model, device, model.contract

    def _activate(self):
        self.was_training = self.model.training
        self.model.eval()

    def _infer(self, batch):
        with torch.no_grad():
            return self.model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()

    def _deactivate(self):
        self.model.train(self.was_training)


def _distributed():
    """(rank, world size, local rank) under torchrun, (0, 1, 0) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return torch.distributed.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def _device(spec: str, local_rank: int) -> torch.device:
    if spec == "auto":
        return torch.device("cuda:{}".format(local_rank) if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GoatPoseError("--device {}: this PyTorch sees no CUDA GPU; use --device cpu (or auto)".format(spec))
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GoatPoseError("--device {}: this machine has {} CUDA GPU(s), cuda:0..cuda:{}".format(
                spec, torch.cuda.device_count(), torch.cuda.device_count() - 1))
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise GoatPoseError("--device mps: this PyTorch has no MPS backend here; use --device cpu (or auto)")
    return device


#: SIGTERM during training (torchrun tearing down, a scheduler): unwinds like Ctrl-C, so a checkpoint being written
#: is removed by ``atomic_output`` instead of staying half-written beside ``last.pth`` (``goatpose_edge.signals``)
TrainingTerminated = Terminated


def _one_line(exc: GoatPoseError) -> GoatPoseError:
    """A GoatPoseError re-raised by a DataLoader worker carries the worker's traceback in its message; keep the
    original one-line message."""
    text = str(exc).strip()
    if "\n" not in text:
        return exc
    last = text.splitlines()[-1].strip()
    match = re.match(r"^[\w.]+: (.+)$", last)
    message = match.group(1) if match else last
    try:
        return type(exc)(message)
    except Exception:  # a subclass with another constructor
        return GoatPoseError(message)


def _val_root(options: TrainOptions) -> str:
    return options.coco_root or os.path.dirname(os.path.abspath(options.val_ann))


def load_training_checkpoint(path: str):
    from goatpose_edge.models.checkpoint import torch_load

    payload = torch_load(path, trusted=False)  # one clear line for missing, corrupt or pickled-object files
    if not isinstance(payload, dict) or "optimizer" not in payload or "epoch" not in payload:
        raise CheckpointError("{} has no training state (optimizer, epoch): resume from a last.pth written by "
                              "goatpose train".format(path))
    return payload


def train(options: TrainOptions, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) training; returns {"epochs_run", "losses", "best_ap", "out"}.

    Every input is checked before a model is built: the options (``TrainOptions.validate``), the annotation files and
    image folders, the output folder and the checkpoint to resume. Checkpoints are written atomically; SIGTERM and
    Ctrl-C leave the last complete ones and no temporary files."""
    out = options.out or os.path.join("runs", options.model)  # TrainOptions.resolve's default
    made = not os.path.isdir(out)
    try:
        with sigterm_as_interrupt(only_if_default=True):
            return _train(options, log)
    except BaseException:
        if made and os.path.isdir(out) and not os.listdir(out):  # a run that wrote nothing leaves no folder
            os.rmdir(out)
        raise


def _preflight(options: TrainOptions):
    """(dataset, resume payload or None, init state or None, start epoch, best AP), all checked, no model built."""
    from goatpose_edge.models import read_checkpoint
    from goatpose_edge.variants import get_variant

    options.validate()
    options.resolve()
    if os.path.exists(options.out) and not os.path.isdir(options.out):
        raise GoatPoseError("--out {} is a file; give a folder for the checkpoints".format(options.out))
    variant = get_variant(options.model)
    if options.resume and not os.path.isfile(options.resume):
        raise CheckpointError("checkpoint to resume not found: {}".format(options.resume))
    if options.init_from and not os.path.isfile(options.init_from):
        raise CheckpointError("checkpoint to initialise from not found: {}".format(options.init_from))
    dataset = CocoKeypoints(options.train_ann, options.train_images, variant.contract, Augment(), options.seed)
    if options.val_ann:
        from goatpose_edge.bench.coco_eval import prepare_eval

        prepare_eval(_val_root(options), options.val_ann, limit=options.val_limit, limit_flag="--val-limit")
    payload, init_state, start_epoch, best_ap = None, None, 0, -1.0
    if options.resume:
        payload = load_training_checkpoint(options.resume)
        if payload.get("variant") != variant.name:
            raise CheckpointError("{} is a {} checkpoint, not {}".format(options.resume, payload.get("variant"),
                                                                           options.model))
        try:
            start_epoch, best_ap = int(payload["epoch"]), float(payload.get("best_ap", -1.0))
        except (TypeError, ValueError) as exc:
            raise CheckpointError("{} has an unreadable training state (epoch {!r}, best_ap {!r}): resume from a "
                                  "last.pth written by goatpose train".format(options.resume, payload.get("epoch"),
                                                                              payload.get("best_ap"))) from exc
        if start_epoch >= options.epochs:
            raise GoatPoseError("{} has already run {} epoch(s) and --epochs is {}: nothing to train; pass --epochs "
                                "above {} to continue it".format(options.resume, start_epoch, options.epochs,
                                                                 start_epoch))
    elif options.init_from:
        init_state, _ = read_checkpoint(options.init_from)
    return dataset, payload, init_state, start_epoch, best_ap


def _train(options: TrainOptions, log: Callable[[str], None]) -> dict:
    from goatpose_edge.models import build_model, save_checkpoint
    from goatpose_edge.models.checkpoint import load_state_dict_strict

    dataset, payload, init_state, start_epoch, best_ap = _preflight(options)
    rank, world, local_rank = _distributed()
    device = _device(options.device, local_rank)
    torch.manual_seed(options.seed + rank)
    recipe = Recipe(epochs=options.epochs, lr=options.lr, nam_penalty=options.nam_penalty)
    model = build_model(options.model).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    use_amp = options.amp and device.type == "cuda"
    if options.amp and not use_amp and rank == 0:
        log("note: --amp needs a CUDA device; training in FP32 on {}".format(device))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp) if hasattr(torch, "amp") and hasattr(
        torch.amp, "GradScaler") else torch.cuda.amp.GradScaler(enabled=use_amp)
    if payload is not None:
        load_state_dict_strict(model, payload["state_dict"], options.resume, options.model)
        optimizer.load_state_dict(payload["optimizer"])
        if payload.get("scaler"):
            scaler.load_state_dict(payload["scaler"])
        log("resumed {} at epoch {} (lr {:g}, best AP {:.4f})".format(options.resume, start_epoch,
                                                                       recipe.lr_at(start_epoch), best_ap))
    elif init_state is not None:
        from goatpose_edge.train.init_from import init_from_hrnet

        log("init from {}: {}".format(options.init_from, init_from_hrnet(model, init_state).line()))
    unwrapped = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = torch.utils.data.distributed.DistributedSampler(dataset, seed=options.seed) if world > 1 else None
    generator = torch.Generator()
    generator.manual_seed(options.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=options.batch_size, shuffle=sampler is None,
                                         sampler=sampler, num_workers=options.workers, drop_last=len(dataset) >
                                         options.batch_size, pin_memory=device.type == "cuda", generator=generator)
    if rank == 0:
        os.makedirs(options.out, exist_ok=True)
        log("{}: {} persons, {} iterations/epoch x {} process(es), epochs {}..{}, device {}".format(
            options.model, len(dataset), len(loader), world, start_epoch, options.epochs - 1, device))
    losses, mses = [], []
    for epoch in range(start_epoch, options.epochs):
        lr = recipe.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        dataset.set_epoch(epoch)
        generator.manual_seed(options.seed * 100003 + epoch)  # the shuffle of an epoch depends on the epoch only
        if sampler is not None:
            sampler.set_epoch(epoch)
        started, epoch_losses = time.time(), []
        for step, (inputs, targets, weights) in enumerate(_batches(loader, options.max_iters)):
            inputs, targets, weights = inputs.to(device), targets.to(device), weights.to(device)
            with torch.autocast(device.type, enabled=scaler.is_enabled()):
                pred = model(inputs)
            loss, mse, penalty = total_loss(unwrapped, pred.float(), targets, weights, recipe)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            value = float(loss.detach())
            if not np.isfinite(value):
                raise GoatPoseError("the loss became {} at epoch {} iteration {} (lower --lr, or drop --amp)".format(
                    value, epoch, step))
            epoch_losses.append(value)
            mses.append(float(mse.detach()))
            if rank == 0 and (step % options.log_every == 0):
                log("epoch {} iter {}/{} loss {:.6f} (mse {:.6f}, nam {:.6f}) lr {:g}".format(
                    epoch, step, len(loader), value, float(mse.detach()), float(penalty.detach()), lr))
        losses.extend(epoch_losses)
        record = {"epoch": epoch, "lr": lr, "loss": float(np.mean(epoch_losses)) if epoch_losses else None,
                  "seconds": round(time.time() - started, 1)}
        last_epoch = epoch == options.epochs - 1
        if options.val_ann and (last_epoch or (epoch + 1) % options.val_every == 0) and rank == 0:
            record["val"] = validate(unwrapped, device, options)
            ap = record["val"]["AP"]
            if ap > best_ap:
                best_ap = ap
                save_checkpoint(unwrapped, os.path.join(options.out, "best.pth"), epoch=epoch + 1, best_ap=best_ap)
        if rank == 0:
            save_checkpoint(unwrapped, os.path.join(options.out, "last.pth"), optimizer=optimizer.state_dict(),
                            scaler=scaler.state_dict() if scaler.is_enabled() else None,
                            scheduler=dict(recipe.to_dict(), type="multistep"), epoch=epoch + 1, best_ap=best_ap,
                            options={k: v for k, v in asdict(options).items() if v is not None})
            with open(os.path.join(options.out, "log.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")
            log("epoch {} done: loss {} lr {:g}{} -> {}".format(
                epoch, "{:.6f}".format(record["loss"]) if record["loss"] is not None else "-", lr,
                ", AP {:.4f}".format(record["val"]["AP"]) if "val" in record else "",
                os.path.join(options.out, "last.pth")))
    if world > 1:
        torch.distributed.barrier()  # rank 0's last checkpoint is written before any process leaves
        torch.distributed.destroy_process_group()
    return {"epochs_run": options.epochs - start_epoch, "losses": losses, "mse": mses, "best_ap": best_ap,
            "out": options.out, "model": unwrapped}


def _batches(loader, max_iters):
    """The loader's batches, ``max_iters`` at most; a GoatPoseError from a loader worker keeps its one-line message."""
    iterator, step = iter(loader), 0
    while max_iters is None or step < max_iters:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except GoatPoseError as exc:
            short = _one_line(exc)
            if short is exc:
                raise
            raise short from exc
        step += 1
        yield batch


def validate(model, device, options: TrainOptions) -> dict:
    """COCO keypoint AP of the model on the validation annotations with ground-truth boxes (HRNet's protocol)."""
    from goatpose_edge.bench.coco_eval import evaluate_runner

    root = _val_root(options)
    with ModelRunner(model, device) as runner:
        result = evaluate_runner(runner, root, options.val_ann, flip=True, limit=options.val_limit, progress=False)
    return result.stats
