"""``emotion-train speech``: the speech CNN's training options and the command that trains the final model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from train.checkpoints import CONFIG_FILE
from train.cli.options import add_device_option, add_precision_option
from train.data.feature_cache import load_speech_cache
from train.networks.speech_cnn import POOLINGS, SpeechCNN
from train.speech.training import (
    MODEL_FILE,
    SHIPPED_CHANNELS,
    SHIPPED_EPOCHS,
    SpecAugment,
    TrainingSettings,
    model_summary,
    save_speech_model,
    train_speech_model,
)
from train.trainer import SCHEDULES, TrainConfig


def _channels(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"channel widths must be positive, got {text!r}")
    return widths


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Model, optimiser and augmentation options shared by the training and benchmark commands."""
    augment, train = SpecAugment(), TrainConfig(epochs=SHIPPED_EPOCHS, batch_size=64, schedule="onecycle")
    model = SpeechCNN(channels=SHIPPED_CHANNELS).config()
    parser.add_argument("--cache", type=Path, required=True, metavar="DIR",
                        help="speech feature cache built by `emotion-train cache speech`")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="torch CPU threads (default 1, so that two trainings can share 2 cores)")
    add_device_option(parser)
    add_precision_option(parser)
    parser.add_argument("--channels", type=_channels, default=tuple(model["channels"]), metavar="C1,C2,...",
                        help=f"conv block widths (default {','.join(map(str, model['channels']))})")
    parser.add_argument("--embedding", type=int, default=model["embedding"], metavar="N",
                        help=f"embedding width (default {model['embedding']})")
    parser.add_argument("--dropout", type=float, default=model["dropout"], metavar="P",
                        help=f"dropout before each fc layer (default {model['dropout']})")
    parser.add_argument("--pooling", choices=POOLINGS, default=model["pooling"],
                        help=f"feature-map pooling (default {model['pooling']}; stats: mean and std over time)")
    parser.add_argument("--time-norm", action="store_true",
                        help="remove each window's mean log mel spectrum (per-utterance normalisation)")
    parser.add_argument("--epochs", type=int, default=train.epochs, help=f"default {train.epochs}")
    parser.add_argument("--schedule", choices=SCHEDULES, default=train.schedule,
                        help=f"learning-rate schedule (default {train.schedule}: warm up, then anneal to 0)")
    parser.add_argument("--patience", type=int, default=train.patience,
                        help="stop after this many epochs without a better validation accuracy (default: "
                             "run every epoch; the best validation epoch is kept either way)")
    parser.add_argument("--batch-size", type=int, default=train.batch_size, help=f"default {train.batch_size}")
    parser.add_argument("--lr", type=float, default=train.lr, help=f"Adam learning rate (default {train.lr})")
    parser.add_argument("--weight-decay", type=float, default=train.weight_decay,
                        help=f"decoupled weight decay, AdamW (default {train.weight_decay})")
    parser.add_argument("--label-smoothing", type=float, default=train.label_smoothing,
                        help=f"default {train.label_smoothing}")
    parser.add_argument("--mixup", type=float, default=train.mixup, metavar="ALPHA",
                        help="mixup of training windows and their labels, weight ~ Beta(ALPHA, ALPHA) (default 0: off)")
    parser.add_argument("--seed", type=int, default=train.seed,
                        help="seeds the weights, batches, masks and the validation actors (default 0)")
    parser.add_argument("--time-masks", type=int, default=augment.time_masks,
                        help=f"SpecAugment time masks per window (default {augment.time_masks}; 0 with "
                             "--freq-masks 0 switches augmentation off)")
    parser.add_argument("--max-time", type=int, default=augment.max_time,
                        help=f"widest time mask in frames (default {augment.max_time})")
    parser.add_argument("--freq-masks", type=int, default=augment.freq_masks,
                        help=f"SpecAugment coefficient masks per window (default {augment.freq_masks})")
    parser.add_argument("--max-freq", type=int, default=augment.max_freq,
                        help=f"widest coefficient mask (default {augment.max_freq})")


def training_settings(args: argparse.Namespace) -> TrainingSettings:
    """Settings from parsed options; also sets torch's thread count."""
    torch.set_num_threads(args.threads)
    augment = SpecAugment(args.time_masks, args.max_time, args.freq_masks, args.max_freq)
    return TrainingSettings(
        model_config={"channels": args.channels, "embedding": args.embedding, "dropout": args.dropout,
                      "pooling": args.pooling, "time_norm": args.time_norm},
        config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                           label_smoothing=args.label_smoothing, patience=args.patience,
                           weight_decay=args.weight_decay, schedule=args.schedule, mixup=args.mixup,
                           device=args.device, precision=args.precision),
        augment=augment if args.time_masks or args.freq_masks else None)


def _train_final(args: argparse.Namespace) -> int:
    settings = training_settings(args)
    cache = load_speech_cache(args.cache)
    args.out.mkdir(parents=True, exist_ok=True)
    actors = sorted(set(cache.actors.tolist()))
    trained = train_speech_model(cache, actors, settings.model_config, settings.config, settings.augment,
                                 checkpoint=args.out / "training_checkpoint.pt",
                                 log_path=args.out / "train_log.jsonl", description="speech final")
    path = save_speech_model(args.out, trained, cache, settings.config, settings.augment)
    summary = model_summary(trained.model)
    print(f"{path}: {summary['weight_layers']} weight layers, {summary['parameters']} parameters; trained on "
          f"actors {list(trained.fit_actors)}, validated on {list(trained.validation_actors)}: best epoch "
          f"{trained.fit.best_epoch}, " + ", ".join(f"{k} {v:.3f}" for k, v in trained.validation.items())
          + f" ({trained.seconds:.0f} s)")
    return 0


def add_speech_command(subparsers: Any) -> argparse.ArgumentParser:
    """``emotion-train speech``: train the final speech model on every actor of a cache and save it."""
    parser = subparsers.add_parser(
        "speech", help="train the final speech CNN on all actors of a speech cache",
        description="Train the speech CNN on every actor in the cache except one male and one female "
                    "actor held out for early stopping, and save the best-validation weights with their "
                    f"metadata as {MODEL_FILE} and {CONFIG_FILE} in --out. Resumes an interrupted run.")
    add_training_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/speech_final"), metavar="DIR",
                        help="output folder (default runs/speech_final)")
    parser.set_defaults(run=_train_final)
    return parser
