"""The one training loop of every sequence model (lstm, gru, tcn, patchtst, ...).

A sequence model is a `SequenceModel` subclass that names its Params and its network
class `Net`: `Net(n_features, params)` maps (batch, lookback, features) float32
windows to (batch, 3) logits. Everything else lives here, once:

- AdamW, a cosine learning-rate schedule over the epochs, class-weighted cross-entropy,
  gradient clipping, early stopping on the validation loss (best weights kept);
- a checkpoint at every epoch end (skipped while the last one is younger than
  `checkpoint_min_interval_s`; the last epoch and a stop always checkpoint) and
  `checkpoint_every_s` after the last one, mid-epoch. It holds the model, optimizer,
  scheduler, AMP GradScaler, early-stopping state (best val loss, patience, best
  weights), the position in the epoch and every RNG state (python, numpy, torch CPU,
  CUDA, the batch-order generator): the tensors in one `torch.save` (read back with
  `weights_only=True`), the rest in the JSON state. The batch order of an epoch is
  `torch.randperm` of a dedicated generator whose state at the epoch's start is
  checkpointed, so a run resumed mid-epoch continues the same order; on the same
  machine a resumed run equals an uninterrupted one bit for bit;
- on CUDA, fp16 autocast with a GradScaler (bf16 on request; a CPU runs bf16 autocast
  when asked); `accumulation_steps` splits each batch into that many micro-batches whose
  gradients add up (the optimizer step and its batch stay `batch_size`), and
  `grad_checkpointing` recomputes the network's blocks in backward instead of keeping
  their activations; on out-of-memory the micro-batch is halved, so the effective batch
  stays the same (the run is then no longer bit-exact against one that did not halve,
  and says so; the checkpoint keeps the micro-batch, so a resume stays exact). What
  differs per device lives in models/deep_device.py.
"""

from __future__ import annotations

import io
import logging
import random
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from factory.models.base import Model, host_rng_state, normalize_proba, set_host_rng_state
from factory.models.deep_device import (
    amp_dtype,
    check_amp,
    cuda_rng_state,
    enable_grad_checkpointing,
    free_device_memory,
    grad_scaler,
    halves_on_oom,
    pick_device,
    rng_before_step,
    rng_retry,
    set_cuda_rng_state,
)
from factory.models.deep_params import SequenceParams
from factory.training.context import Checkpoint, TrainingContext
from factory.training.training_data import N_CLASSES, TrainingData

log = logging.getLogger("factory.models.deep")

TORCH_FILE = "torch.pt"
MODEL_FILE = "model.pt"
PREDICT_BATCH = 1024


def count_parameters(net: nn.Module) -> int:
    return sum(t.numel() for t in net.parameters())


def _fresh_progress() -> dict[str, Any]:
    return {"epoch": 0, "batch": 0, "loss_sum": 0.0, "weight_sum": 0.0, "history": []} | {
        "best_val_loss": None,
        "best_epoch": -1,
        "bad_epochs": 0,
        "done": False,
        "stop_reason": None,
        "bit_exact": True,  # False once a micro-batch split or a change of device happened
    }


@torch.no_grad()
def _logits(net: nn.Module, windows, device: torch.device, amp: torch.dtype | None) -> torch.Tensor:
    """Float32 logits of every window, in fixed-size batches, in eval mode."""
    net.eval()
    out = [torch.zeros((0, N_CLASSES), device=device)]
    for start in range(0, len(windows), PREDICT_BATCH):
        idx = np.arange(start, min(start + PREDICT_BATCH, len(windows)))
        x = torch.from_numpy(windows.batch(idx)).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out.append(net(x).float())
    return torch.cat(out)


class Trainer:
    """Everything one fit holds: data on the device, the network, optimizer, RNGs."""

    def __init__(
        self,
        p: SequenceParams,
        data: TrainingData,
        build_net,
        row_weights: np.ndarray | None = None,
    ) -> None:
        self.p = p
        self.device = pick_device(p)
        self.amp = amp_dtype(p, self.device)
        self.windows, y = data.sequence("train", p.lookback)
        self.val_windows, y_val = data.sequence("val", p.lookback)
        self.y = torch.from_numpy(y).to(self.device)
        self.y_val = torch.from_numpy(y_val).to(self.device)
        self.class_w = torch.tensor(data.class_weights, dtype=torch.float32, device=self.device)
        # per train row (sample_weight); None: the class weights alone, as ever
        self.row_w = None
        if row_weights is not None:
            self.row_w = torch.tensor(row_weights, dtype=torch.float32, device=self.device)
        self.n_batches = -(-len(self.windows) // p.batch_size)
        self.micro = -(-p.batch_size // p.accumulation_steps)  # halved on out-of-memory
        random.seed(p.seed)
        np.random.seed(p.seed)
        torch.manual_seed(p.seed)  # also seeds every CUDA device
        self.gen = torch.Generator().manual_seed(p.seed)
        self.epoch_gen_state = self.gen.get_state()
        self.net = build_net(data.n_features, p).to(self.device)
        check_amp(self.net, self.device, self.amp)
        if p.grad_checkpointing:
            enable_grad_checkpointing(self.net)
        self.opt = torch.optim.AdamW(
            self.net.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=p.epochs)
        self.scaler = grad_scaler(self.device, self.amp)
        self.best_state: dict[str, torch.Tensor] | None = None
        self.progress = _fresh_progress()

    @property
    def step(self) -> int:
        return self.progress["epoch"] * self.n_batches + self.progress["batch"]

    @property
    def total(self) -> int:
        return self.p.epochs * self.n_batches

    def snapshot(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        tensors: dict[str, Any] = {
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "loader_generator": self.epoch_gen_state,
        }
        if self.scaler is not None:
            tensors["grad_scaler"] = self.scaler.state_dict()
        if (cuda_rng := cuda_rng_state()) is not None:
            tensors["cuda_rng"] = cuda_rng
        if self.best_state is not None:
            tensors["best_model"] = self.best_state
        buf = io.BytesIO()
        torch.save(tensors, buf)
        state = {
            "train": dict(self.progress, history=list(self.progress["history"])),
            "rng": host_rng_state(),
            "device": self.device.type,
            "micro_batch": self.micro,
        }
        return {TORCH_FILE: buf.getvalue()}, state

    def restore(self, checkpoint: Checkpoint) -> None:
        blob = torch.load(
            io.BytesIO(checkpoint.files[TORCH_FILE]), map_location="cpu", weights_only=True
        )
        self.net.load_state_dict(blob["model"])
        self.opt.load_state_dict(blob["optimizer"])
        self.sched.load_state_dict(blob["scheduler"])
        if self.scaler is not None and "grad_scaler" in blob:
            self.scaler.load_state_dict(blob["grad_scaler"])
        self.best_state = blob.get("best_model")
        self.progress = dict(checkpoint.state["train"])
        if checkpoint.state.get("device") != self.device.type:
            self.progress["bit_exact"] = False
        self.epoch_gen_state = blob["loader_generator"]
        self.gen.set_state(self.epoch_gen_state)
        torch.set_rng_state(blob["torch_rng"])
        set_cuda_rng_state(blob.get("cuda_rng"), self.device)
        set_host_rng_state(checkpoint.state["rng"])
        self.micro = int(checkpoint.state.get("micro_batch", self.micro))  # after a halving

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)

    def train_batch(self, idx: torch.Tensor) -> tuple[float, float]:
        """One optimizer step on the batch `idx`; (sum of weighted losses, sum of weights).
        On out-of-memory (CUDA) the micro-batch is halved and the step retried from the
        same RNG states; the gradients of its micro-batches add up to the batch's."""
        rng = rng_before_step(self.device)
        while True:
            try:
                return self._step(idx)
            except torch.OutOfMemoryError:
                if not halves_on_oom(self.device) or self.micro == 1:
                    raise
                self.micro //= 2
                self.progress["bit_exact"] = False
                steps = -(-self.p.batch_size // self.micro)
                msg = "out of memory on %s: micro-batch %d x %d accumulation steps (batch %d)"
                log.warning(msg, self.device.type, self.micro, steps, self.p.batch_size)
                self.opt.zero_grad(set_to_none=True)
                free_device_memory(self.device)
                rng_retry(rng)

    def _step(self, idx: torch.Tensor) -> tuple[float, float]:
        self.net.train()
        self.opt.zero_grad(set_to_none=True)
        y = self.y[idx.to(self.device)]
        w = None if self.row_w is None else self.row_w[idx.to(self.device)]
        total_w = self.class_w[y].sum() if w is None else w.sum()
        loss_sum = torch.zeros((), device=self.device)
        for start in range(0, len(idx), self.micro):
            part = idx[start : start + self.micro]
            x = torch.from_numpy(self.windows.batch(part.numpy())).to(self.device)
            with self._autocast():
                logits = self.net(x)
            loss = self._loss(logits.float(), y, w, slice(start, start + self.micro))
            scaled = loss / total_w
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            loss_sum += loss.detach()
        if self.scaler is not None:
            self.scaler.unscale_(self.opt)
        if self.p.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.p.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        return float(loss_sum), float(total_w)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, w, part: slice) -> torch.Tensor:
        """The summed weighted cross-entropy of the micro-batch `part` of a batch: class
        weights, or each row's own weight `w` (sample_weight)."""
        if w is None:
            return F.cross_entropy(logits, y[part], weight=self.class_w, reduction="sum")
        return (F.cross_entropy(logits, y[part], reduction="none") * w[part]).sum()

    def val_loss(self) -> float:
        logits = _logits(self.net, self.val_windows, self.device, self.amp)
        loss = F.cross_entropy(logits, self.y_val, weight=self.class_w, reduction="sum")
        return float(loss) / float(self.class_w[self.y_val].sum())

    def end_epoch(self) -> dict[str, float]:
        """Validation, early stopping and the scheduler at the end of an epoch."""
        pr, p = self.progress, self.p
        val = self.val_loss()
        train = pr["loss_sum"] / max(pr["weight_sum"], 1e-12)
        lr = self.opt.param_groups[0]["lr"]
        if pr["best_val_loss"] is None or val < pr["best_val_loss"]:
            pr.update(best_val_loss=val, best_epoch=pr["epoch"], bad_epochs=0)
            self.best_state = {
                k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()
            }
        else:
            pr["bad_epochs"] += 1
        self.sched.step()
        row = {"epoch": pr["epoch"], "train_loss": train, "val_loss": val, "lr": lr}
        pr["history"] = [*pr["history"], row]
        pr.update(epoch=pr["epoch"] + 1, batch=0, loss_sum=0.0, weight_sum=0.0)
        if pr["bad_epochs"] >= p.patience:
            pr.update(done=True, stop_reason="early_stopping")
        elif pr["epoch"] >= p.epochs:
            pr.update(done=True, stop_reason="epochs")
        self.epoch_gen_state = self.gen.get_state()
        return {k: float(v) for k, v in row.items()} | {"best_val_loss": pr["best_val_loss"]}


class SequenceModel(Model):
    """A model over lookback windows; subclasses set name, Params and Net."""

    kind = "sequence"
    LEARNED = ("best_epoch", "best_val_loss", "epochs_run", "stop_reason", "history")
    SUMMARY: ClassVar[dict[str, str]] = {
        "best_epoch": "best_epoch_",
        "best_val_loss": "best_val_loss_",
        "epochs_run": "epochs_run_",
    }
    Net: ClassVar[type[nn.Module]]  # Net(n_features, params)

    @classmethod
    def build_net(cls, n_features: int, p: Any) -> nn.Module:
        """The network: (batch, lookback, n_features) float32 -> (batch, 3) logits."""
        return cls.Net(n_features, p)

    def fit(self, data: TrainingData, ctx: TrainingContext) -> SequenceModel:
        p = self._resolve_params()
        checkpoint = self._begin_fit(data, ctx)
        data.sequence("train", p.lookback)  # a clear error for a too-long lookback first
        if torch.cuda.is_available():
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        row_w = None if p.sample_weight == "none" else self._train_weights(data)
        t = Trainer(p, data, self.build_net, row_w)
        if checkpoint is not None:
            self._check_resumable(checkpoint)
            t.restore(checkpoint)
            self._report_resumed(ctx, t.total)
        while not t.progress["done"]:
            self._run_epoch(t, ctx)
        self._finish(t)
        return self

    def _run_epoch(self, t: Trainer, ctx: TrainingContext) -> None:
        pr = t.progress
        t.epoch_gen_state = t.gen.get_state()
        order = torch.randperm(len(t.windows), generator=t.gen)
        bs = self.params.batch_size
        for b in range(pr["batch"], t.n_batches):
            loss, weight = t.train_batch(order[b * bs : (b + 1) * bs])
            pr.update(
                batch=b + 1, loss_sum=pr["loss_sum"] + loss, weight_sum=pr["weight_sum"] + weight
            )
            if b + 1 == t.n_batches:
                break
            self._mid_epoch(t, ctx)
        metrics = t.end_epoch()
        if pr["done"] or self._boundary_save_due():
            self._save(ctx, t.step, *t.snapshot())
        ctx.report(t.step, t.total, metrics)
        if not pr["done"]:
            self._stop_if_asked(ctx, t.step, t.snapshot)

    def _mid_epoch(self, t: Trainer, ctx: TrainingContext) -> None:
        pr = t.progress
        if self._since_save_s() >= self.params.checkpoint_every_s:
            self._save(ctx, t.step, *t.snapshot())
        if pr["batch"] % self.params.report_every_batches == 0:
            train = pr["loss_sum"] / max(pr["weight_sum"], 1e-12)
            ctx.report(t.step, t.total, {"epoch": float(pr["epoch"]), "train_loss": train})
        self._stop_if_asked(ctx, t.step, t.snapshot)

    def _finish(self, t: Trainer) -> None:
        pr = t.progress
        self._end_fit(pr)
        if t.best_state is not None:
            t.net.load_state_dict(t.best_state)
        t.net.eval()
        self.net_ = t.net
        self.device_ = t.device
        self.amp_ = t.amp
        self.best_epoch_ = int(pr["best_epoch"])
        self.best_val_loss_ = pr["best_val_loss"]
        self.epochs_run_ = int(pr["epoch"])
        self.history_ = list(pr["history"])

    def fit_summary(self) -> dict[str, Any]:
        return super().fit_summary() | {
            "device": self.device_.type,
            "n_parameters": count_parameters(self.net_),
        }

    def _raw_proba(self, data: TrainingData, split: str) -> np.ndarray:
        self._check_fitted()
        windows, _ = data.sequence(split, self.params.lookback)
        logits = _logits(self.net_, windows, self.device_, self.amp_)
        return normalize_proba(torch.softmax(logits, dim=1).cpu().numpy())

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.net_.state_dict().items()}
        torch.save(state, directory / MODEL_FILE)
        self._write_config(directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> SequenceModel:
        model = cls._read_config(Path(directory))
        p = model.params
        net = cls.build_net(model.n_features_in_, p)
        state = torch.load(Path(directory) / MODEL_FILE, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        model.device_ = torch.device(device) if device else pick_device(p)
        model.amp_ = amp_dtype(p, model.device_)
        model.net_ = net.to(model.device_).eval()
        return model
