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
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch

from goatpose_edge.errors import CheckpointError, GoatPoseError
from goatpose_edge.fileio import append_line
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


def load_training_checkpoint(path: str, trusted: bool = False):
    from goatpose_edge.models.checkpoint import torch_load

    payload = torch_load(path, trusted=trusted)  # one clear line for missing, corrupt or pickled-object files
    if not isinstance(payload, dict) or "optimizer" not in payload or "epoch" not in payload:
        raise CheckpointError("{} has no training state (optimizer, epoch): resume from a last.pth written by "
                              "goatpose train".format(path))
    return payload


def train(options: TrainOptions, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) training; returns what the run did::

        epochs_run  int: epochs this call ran (``options.epochs`` minus the epoch it resumed at)
        losses      [float]: the loss (joints MSE + NAM penalty) of every iteration this call ran, in order
        mse         [float]: the joints MSE of the same iterations
        best_ap     float: the best validation AP of the run so far (-1.0 while none was measured)
        out         str: the folder holding last.pth, best.pth (when validating) and log.jsonl
        model       the trained network (the module itself, not its DDP wrapper)

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


class _Start(NamedTuple):
    """Where a run starts, all checked before a model is built."""

    dataset: CocoKeypoints
    payload: Optional[dict]  # the checkpoint to resume, or None
    init_state: Optional[dict]  # the HRNet state dict to start from (--init-from), or None
    epoch: int  # first epoch to run
    best_ap: float  # best validation AP so far, -1.0 when none


def _preflight(options: TrainOptions) -> _Start:
    """Check every input and load the data's records and the checkpoint to resume; no model built."""
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
        payload = load_training_checkpoint(options.resume, options.trust_checkpoint)
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
        init_state, _ = read_checkpoint(options.init_from, options.trust_checkpoint)
    return _Start(dataset, payload, init_state, start_epoch, best_ap)


def _train(options: TrainOptions, log: Callable[[str], None]) -> dict:
    """The run's steps: check the inputs, set up, then per epoch train, validate, checkpoint, log."""
    run = _Run(options, log, _preflight(options))
    for epoch in range(run.start_epoch, options.epochs):
        record = run.one_epoch(epoch)
        if run.rank == 0:
            run.validate_epoch(epoch, record)
            run.checkpoint(epoch, record)
            run.log_epoch(epoch, record)
    return run.finish()


class _Run:
    """One training run, a method per step; the constructor sets everything up in a fixed order (the seed before
    the model's initialisation, the resume before the DDP wrapper)."""

    def __init__(self, options: TrainOptions, log: Callable[[str], None], start: _Start):
        self.options, self.log = options, log
        self.dataset, self.start_epoch, self.best_ap = start.dataset, start.epoch, start.best_ap
        self.rank, self.world, local_rank = _distributed()
        self.device = _device(options.device, local_rank)
        torch.manual_seed(options.seed + self.rank)
        self.recipe = Recipe(epochs=options.epochs, lr=options.lr, nam_penalty=options.nam_penalty)
        self.model = self.unwrapped = self._build_model()
        self.optimizer, self.scaler = self._optimiser()
        self._resume(start)
        self.start_weights = self._start_weights(start)
        self._wrap_distributed()
        self.loader, self.sampler, self.generator = self._loader()
        self._announce()
        self.losses, self.mses = [], []

    def _build_model(self) -> torch.nn.Module:
        from goatpose_edge.models import build_model

        return build_model(self.options.model).to(self.device).train()

    def _optimiser(self):
        """(Adam at the recipe's lr, the AMP gradient scaler: enabled for --amp on CUDA only)."""
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.recipe.lr)
        use_amp = self.options.amp and self.device.type == "cuda"
        if self.options.amp and not use_amp and self.rank == 0:
            self.log("note: --amp needs a CUDA device; training in FP32 on {}".format(self.device))
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp) if hasattr(torch, "amp") and hasattr(
            torch.amp, "GradScaler") else torch.cuda.amp.GradScaler(enabled=use_amp)
        return optimizer, scaler

    def _resume(self, start: _Start) -> None:
        """Weights, optimiser and scaler from the checkpoint to resume, or weights from HRNet (--init-from)."""
        from goatpose_edge.models.checkpoint import load_state_dict_strict

        options = self.options
        if start.payload is not None:
            load_state_dict_strict(self.model, start.payload["state_dict"], options.resume, options.model)
            self.optimizer.load_state_dict(start.payload["optimizer"])
            if start.payload.get("scaler"):
                self.scaler.load_state_dict(start.payload["scaler"])
            self.log("resumed {} at epoch {} (lr {:g}, best AP {:.4f})".format(
                options.resume, start.epoch, self.recipe.lr_at(start.epoch), start.best_ap))
        elif start.init_state is not None:
            from goatpose_edge.train.init_from import init_from_hrnet

            self.log("init from {}: {}".format(options.init_from, init_from_hrnet(self.model, start.init_state).line()))

    def _start_weights(self, start: "_Start") -> str:
        """What training started from, for the checkpoints' weights record."""
        options = self.options
        if start.payload is not None:
            recorded = start.payload.get("weights") if isinstance(start.payload.get("weights"), str) else None
            return recorded or "checkpoint {}".format(os.path.basename(options.resume))
        if start.init_state is not None:
            return "HRNet weights of {}".format(os.path.basename(options.init_from))
        return "random init (seed {})".format(options.seed)

    def weights(self, epochs: int) -> str:
        start = self.start_weights
        if start.startswith("trained by goatpose train"):  # a resumed run: the count is of this model's epochs
            start = start.split(" from ", 1)[-1]
            start = start[:-1] if start.endswith(")") else start
        return "trained by goatpose train ({} epoch{} on {} from {})".format(
            epochs, "s" if epochs != 1 else "", os.path.basename(self.options.train_ann), start)

    def _wrap_distributed(self) -> None:
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _loader(self):
        """(DataLoader, DistributedSampler or None, the generator of the loader's shuffle)."""
        options, dataset = self.options, self.dataset
        sampler = torch.utils.data.distributed.DistributedSampler(dataset, seed=options.seed) if self.world > 1 \
            else None
        generator = torch.Generator()
        generator.manual_seed(options.seed)
        loader = torch.utils.data.DataLoader(dataset, batch_size=options.batch_size, shuffle=sampler is None,
                                             sampler=sampler, num_workers=options.workers, drop_last=len(dataset) >
                                             options.batch_size, pin_memory=self.device.type == "cuda",
                                             generator=generator)
        return loader, sampler, generator

    def _announce(self) -> None:
        if self.rank == 0:
            os.makedirs(self.options.out, exist_ok=True)
            self.log("{}: {} persons, {} iterations/epoch x {} process(es), epochs {}..{}, device {}".format(
                self.options.model, len(self.dataset), len(self.loader), self.world, self.start_epoch,
                self.options.epochs - 1, self.device))

    def one_epoch(self, epoch: int) -> dict:
        """Train epoch ``epoch`` at the recipe's lr; returns its log.jsonl record (epoch, lr, mean loss, seconds)."""
        lr = self.recipe.lr_at(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.dataset.set_epoch(epoch)
        self.generator.manual_seed(self.options.seed * 100003 + epoch)  # the shuffle of an epoch depends on it only
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        started, epoch_losses = time.time(), []
        for step, batch in enumerate(_batches(self.loader, self.options.max_iters)):
            epoch_losses.append(self._step(epoch, step, batch, lr))
        self.losses.extend(epoch_losses)
        return {"epoch": epoch, "lr": lr, "loss": float(np.mean(epoch_losses)) if epoch_losses else None,
                "seconds": round(time.time() - started, 1)}

    def _step(self, epoch: int, step: int, batch, lr: float) -> float:
        """One optimiser step on a batch (inputs [N, 3, H, W], targets [N, K, h, w], weights [N, K, 1]); returns
        its loss."""
        inputs, targets, weights = (tensor.to(self.device) for tensor in batch)
        with torch.autocast(self.device.type, enabled=self.scaler.is_enabled()):
            pred = self.model(inputs)
        loss, mse, penalty = total_loss(self.unwrapped, pred.float(), targets, weights, self.recipe)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        value = float(loss.detach())
        if not np.isfinite(value):
            raise GoatPoseError("the loss became {} at epoch {} iteration {} (lower --lr, or drop --amp)".format(
                value, epoch, step))
        self.mses.append(float(mse.detach()))
        if self.rank == 0 and (step % self.options.log_every == 0):
            self.log("epoch {} iter {}/{} loss {:.6f} (mse {:.6f}, nam {:.6f}) lr {:g}".format(
                epoch, step, len(self.loader), value, float(mse.detach()), float(penalty.detach()), lr))
        return value

    def validate_epoch(self, epoch: int, record: dict) -> None:
        """Every --val-every epochs and after the last: the AP into ``record["val"]``, best.pth when it is the best."""
        from goatpose_edge.models import save_checkpoint

        options = self.options
        if not options.val_ann or not (epoch == options.epochs - 1 or (epoch + 1) % options.val_every == 0):
            return
        record["val"] = validate(self.unwrapped, self.device, options)
        if record["val"]["AP"] > self.best_ap:
            self.best_ap = record["val"]["AP"]
            save_checkpoint(self.unwrapped, os.path.join(options.out, "best.pth"), epoch=epoch + 1,
                            best_ap=self.best_ap, weights=self.weights(epoch + 1))

    def checkpoint(self, epoch: int, record: dict) -> None:
        """last.pth (weights and the whole training state, to resume at epoch + 1) and the epoch's log.jsonl line."""
        from goatpose_edge.models import save_checkpoint

        options = self.options
        save_checkpoint(self.unwrapped, os.path.join(options.out, "last.pth"), optimizer=self.optimizer.state_dict(),
                        scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
                        scheduler=dict(self.recipe.to_dict(), type="multistep"), epoch=epoch + 1,
                        best_ap=self.best_ap, options={k: v for k, v in asdict(options).items() if v is not None},
                        weights=self.weights(epoch + 1))
        append_line(os.path.join(options.out, "log.jsonl"), json.dumps(record))

    def log_epoch(self, epoch: int, record: dict) -> None:
        self.log("epoch {} done: loss {} lr {:g}{} -> {}".format(
            epoch, "{:.6f}".format(record["loss"]) if record["loss"] is not None else "-", record["lr"],
            ", AP {:.4f}".format(record["val"]["AP"]) if "val" in record else "",
            os.path.join(self.options.out, "last.pth")))

    def finish(self) -> dict:
        """``train``'s result, once every process is done (rank 0's last checkpoint written before any leaves)."""
        if self.world > 1:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
        return {"epochs_run": self.options.epochs - self.start_epoch, "losses": self.losses, "mse": self.mses,
                "best_ap": self.best_ap, "out": self.options.out, "model": self.unwrapped}


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
