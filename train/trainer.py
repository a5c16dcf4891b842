"""One training loop for every model: seeded, class-weighted, checkpointed and resumable.

``fit`` trains a classifier on in-memory tensors with Adam, keeps the weights that scored best on
the validation set, writes a checkpoint after every epoch (a rerun resumes from it), shows a tqdm
bar with loss and accuracy, and appends one JSON line per epoch to a training log. Under
``torchrun`` it trains with DistributedDataParallel (``train.distributed``): each process its shard
of every epoch, rank 0 alone writing and showing progress.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, TensorDataset
from tqdm import tqdm

from train import distributed

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Penalty = Callable[[nn.Module], torch.Tensor]
SCHEDULES = ("constant", "onecycle")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule settings; recorded in the training log and model sidecars."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    class_weighted: bool = True
    label_smoothing: float = 0.0
    patience: int | None = None
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW) when above 0; plain Adam otherwise."""
    schedule: str = "constant"
    """Learning rate: ``constant``, or ``onecycle`` (warm up to ``lr`` over the first 15 % of the
    steps, then cosine-anneal towards zero by the last epoch)."""
    precision: str = "fp32"
    """``bf16`` runs forward passes under bfloat16 autocast (about 1.9x faster on a CPU with
    AVX512-BF16, measured for the face CNN); weights, optimiser state and the loss stay float32."""
    mixup: float = 0.0
    """Mixup: each training batch is blended with a shuffled copy of itself, inputs and targets alike,
    with a weight drawn from Beta(mixup, mixup) per batch; 0 switches it off."""
    device: str = "cpu"
    """Where to train (a torch device string: ``cpu``, ``cuda``, ``cuda:1``); the data moves there
    once, the returned model and every checkpoint are on the CPU."""

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown training precision {self.precision!r}; choose one of {PRECISIONS}")
        check_device(self.device)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class FitResult:
    """The best validation weights and the per-epoch history."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_accuracy: float
    history: list[dict[str, float]]


def training_seconds(result: FitResult) -> float:
    """Seconds spent in the epochs of ``result`` over every run that built it (a resumed fit counts the
    epochs of its checkpoint too; epochs logged before epochs were timed count 0)."""
    return float(sum(record.get("seconds", 0.0) for record in result.history))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def hard_labels(targets: torch.Tensor) -> torch.Tensor:
    """Class ids of ``targets``: the ids themselves, or the arg-max of soft targets (n, n_classes)."""
    return targets.argmax(1) if targets.is_floating_point() else targets


def class_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (mean 1 over present classes) for an imbalanced label set."""
    counts = torch.bincount(hard_labels(labels), minlength=n_classes).float()
    weights = torch.where(counts > 0, counts.sum() / (n_classes * counts.clamp(min=1)), torch.zeros_like(counts))
    return weights


def mixup(x: torch.Tensor, y: torch.Tensor, n_classes: int, alpha: float,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and its targets (class ids or distributions) blended with a shuffled copy, weight ~ Beta(alpha, alpha)."""
    targets = y if y.dim() == 2 else nn.functional.one_hot(y, n_classes).to(x.dtype)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    weight = float(np.random.default_rng(seed).beta(alpha, alpha))
    partner = torch.randperm(len(x), generator=generator).to(x.device)
    return weight * x + (1 - weight) * x[partner], weight * targets + (1 - weight) * targets[partner]


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Softmax posteriors (n, n_classes) of ``model`` in eval mode, computed on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    outputs = [torch.softmax(model(inputs[i : i + batch_size].to(device)), dim=1).cpu()
               for i in range(0, len(inputs), batch_size)]
    return torch.cat(outputs).numpy()


def check_device(name: str) -> str:
    """``name`` when torch can train on it here; ``ValueError`` saying why not otherwise."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"device {name!r} is not a torch device (cpu, cuda, cuda:N): {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: torch {torch.__version__} sees no CUDA GPU (a CPU-only wheel, or no "
                         "driver); train with --device cpu")
    return name








def _on_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _scheduler(optimiser: torch.optim.Optimizer, config: TrainConfig,
               steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    if config.schedule == "constant":
        return None
    return torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, pct_start=0.15,
                                               total_steps=config.epochs * steps_per_epoch)


def _load_checkpoint(path: Path | None, model: nn.Module, optimiser: torch.optim.Optimizer,
                     scheduler: torch.optim.lr_scheduler.LRScheduler | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return state


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    n_classes: int,
    config: TrainConfig,
    augment: Augment | None = None,
    penalty: Penalty | None = None,
    checkpoint: Path | None = None,
    log_path: Path | None = None,
    description: str = "train",
) -> FitResult:
    """Train ``model`` and return its best validation weights (see the module docstring).

    Training targets are class ids (n,) or soft targets (n, n_classes) summing to 1 (cross-entropy
    to the distribution); validation targets are class ids.
    """
    seed_everything(config.seed)
    distributed.init_from_env(config.device)
    world, rank = distributed.world_size(), distributed.rank()
    device = torch.device(distributed.local_device(config.device))
    model.to(device)
    runner: nn.Module = model
    if world > 1:
        runner = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    x_train, y_train = train[0].to(device), train[1].to(device)
    weights = class_weights(train[1], n_classes).to(device) if config.class_weighted else None
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)
    optimiser: torch.optim.Optimizer = (
        torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        if config.weight_decay > 0 else torch.optim.Adam(model.parameters(), lr=config.lr))
    batch_size = max(1, config.batch_size // world)   # the recipe's batch, split over the processes
    sampler: DistributedSampler[int] | None = None
    if world > 1:   # the sampler only needs the data set's length
        sampler = DistributedSampler(TensorDataset(torch.arange(len(x_train))), num_replicas=world, rank=rank,
                                     shuffle=True, seed=config.seed)
    scheduler = _scheduler(optimiser, config, steps_per_epoch=-(-len(sampler or x_train) // batch_size))
    resumed = _load_checkpoint(checkpoint, model, optimiser, scheduler)
    start_epoch = resumed["epoch"] + 1 if resumed else 0
    history: list[dict[str, float]] = resumed["history"] if resumed else []
    best_state = resumed["best_state"] if resumed else _on_cpu(model.state_dict())
    best_acc, best_epoch = (resumed["best_val_accuracy"], resumed["best_epoch"]) if resumed else (-1.0, -1)
    generator = torch.Generator().manual_seed(config.seed)
    if resumed:
        generator.set_state(resumed["generator"])
    if world > 1:   # each process augments its own shard with its own stream, fixed by seed, rank and start
        generator.manual_seed(config.seed * 1_000_003 + 1009 * rank + start_epoch)
    main = distributed.is_main()

    bar = tqdm(range(start_epoch, config.epochs), desc=description, initial=start_epoch, total=config.epochs,
               disable=not main)
    for epoch in bar:
        epoch_started = time.monotonic()
        model.train()
        if sampler is not None:
            sampler.set_epoch(epoch)
            order = torch.tensor(list(sampler))
        else:
            order = torch.randperm(len(x_train), generator=generator)
        total_loss, correct = 0.0, 0
        for i in range(0, len(order), batch_size):
            batch = order[i : i + batch_size].to(device)
            x, y = x_train[batch], y_train[batch]
            if augment is not None:
                x = augment(x, generator)
            if config.mixup > 0:
                x, y = mixup(x, y, n_classes, config.mixup, generator)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                logits = runner(x)
            loss = loss_fn(logits.float(), y)
            if penalty is not None:
                loss = loss + penalty(model)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if scheduler is not None:
                scheduler.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == hard_labels(y)).sum())
        total_loss, correct_all, seen = distributed.all_sum(total_loss, correct, len(order))
        val_acc = distributed.broadcast_value(float((predict(model, val[0]).argmax(1) == val[1].numpy()).mean()))
        record = {
            "epoch": epoch,
            "loss": total_loss / seen,
            "train_accuracy": correct_all / seen,
            "val_accuracy": val_acc,
            "seconds": round(time.monotonic() - epoch_started, 3),
        }
        history.append(record)
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = _on_cpu(model.state_dict())
        bar.set_postfix(loss=f"{record['loss']:.3f}", train=f"{record['train_accuracy']:.3f}", val=f"{val_acc:.3f}")
        if log_path is not None and main:
            with log_path.open("a") as log:
                log.write(json.dumps({"run": description, **record}) + "\n")
        if checkpoint is not None and main:
            torch.save(
                {
                    "model": _on_cpu(model.state_dict()),
                    "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "epoch": epoch,
                    "history": history,
                    "best_state": best_state,
                    "best_val_accuracy": best_acc,
                    "best_epoch": best_epoch,
                    "torch_rng": torch.get_rng_state(),
                    "generator": generator.get_state(),
                },
                checkpoint,
            )
        if config.patience is not None and epoch - best_epoch >= config.patience:
            break
    model.to("cpu")
    model.load_state_dict(best_state)
    return FitResult(best_state=best_state, best_epoch=best_epoch, best_val_accuracy=best_acc, history=history)
