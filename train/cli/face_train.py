"""``emotion-train face`` and ``face-lambda``: the face CNN's training options and commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from train.checkpoints import CONFIG_FILE
from train.cli.options import add_device_option, add_precision_option
from train.face.training import (
    MODEL_FILE,
    FaceAugment,
    FaceData,
    FaceRecipe,
    load_face_data,
    load_ferplus_data,
    model_summary,
    save_face_model,
    subset,
    train_face_model,
)
from train.networks.face_cnn import FaceCNN
from train.reports import print_table, save_json
from train.trainer import SCHEDULES, TrainConfig


def _recipe(args: argparse.Namespace, penalty: float) -> FaceRecipe:
    torch.set_num_threads(args.threads)
    augment = {"none": None, "basic": FaceAugment(), "camera": FaceAugment.camera()}[args.augment]
    return FaceRecipe(
        model_config={"crop_size": 48, "width": args.width, "fc_units": args.fc_units, "dropout": args.dropout},
        config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                           class_weighted=args.class_weighted, schedule=args.schedule, device=args.device,
                           precision=args.precision),
        penalty=penalty, augment=augment, finetune_epochs=args.finetune_epochs,
        finetune_factor=args.finetune_factor)


def _face_data(args: argparse.Namespace) -> FaceData:
    if args.ferplus:
        return load_ferplus_data(args.data)
    return load_face_data(args.data, args.val_fraction, args.seed)


def _train(args: argparse.Namespace) -> int:
    recipe = _recipe(args, args.penalty)
    data = _face_data(args)
    args.out.mkdir(parents=True, exist_ok=True)
    save_json(args.out / "recipe.json", recipe.to_dict())
    trained = train_face_model((data.fit_images, data.fit_labels), (data.val_images, data.val_labels), recipe,
                               out=args.out, description="face")
    path = save_face_model(args.out, trained, data, recipe, None if args.ferplus else args.val_fraction)
    summary = model_summary(trained.model)
    print(f"{path}: {summary['weight_layers']} weight layers (+{summary['stn_weight_layers']} in the spatial "
          f"transformer), {summary['parameters']} parameters; validation accuracy {trained.val_accuracy:.4f} "
          f"on {len(data.val_labels)} validation images; this run: {trained.epochs_now} epochs in "
          f"{trained.seconds:.0f} s")
    return 0


def _select_lambda(args: argparse.Namespace) -> int:
    data = _face_data(args)
    train = subset(data.fit_images, data.fit_labels, args.subset, args.seed)
    rows = []
    for penalty in args.lambdas:
        recipe = _recipe(args, penalty)
        trained = train_face_model(train, (data.val_images, data.val_labels), recipe, description=f"lambda {penalty:g}")
        rows.append({"lambda": penalty, "val_accuracy": trained.val_accuracy,
                     "best_epoch": trained.stages[-1].best_epoch,
                     "final_loss": trained.stages[-1].history[-1]["loss"],
                     "seconds_per_epoch": trained.epoch_seconds})
    best = max(rows, key=lambda row: row["val_accuracy"])
    print_table(rows, ["lambda", "val_accuracy", "best_epoch", "final_loss", "seconds_per_epoch"],
                title=f"lambda on {len(data.val_labels)} validation images, {len(train[1])} training images, "
                      f"{args.epochs} epochs each", digits=4)
    print(f"best lambda: {best['lambda']:g}")
    save_json(args.out / "lambda_selection.json",
              {"rows": rows, "best_lambda": best["lambda"], "training_images": len(train[1]),
               "validation_images": len(data.val_labels), "recipe": _recipe(args, best["lambda"]).to_dict()})
    return 0


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Data, model, optimiser and augmentation options shared by ``face`` and ``face-lambda``."""
    defaults = FaceCNN().config()
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="FER2013-style train folder with one sub-folder per class; with --ferplus the "
                             "FER2013 root holding train/, test/ and ferplus_votes.csv")
    parser.add_argument("--ferplus", action="store_true",
                        help="train on FER+ vote distributions of FER2013 Training and choose on the PublicTest "
                             "majority labels (train.data.ferplus has the rule); --val-fraction is unused")
    add_precision_option(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/face_fer"), metavar="DIR",
                        help="output folder (default runs/face_fer)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="torch CPU threads (default 1, so that two trainings can share 2 cores)")
    add_device_option(parser)
    parser.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                        help="fraction of each class held out for validation (default 0.1)")
    parser.add_argument("--width", type=int, default=defaults["width"],
                        help=f"channels of the first conv block; doubled per block (default {defaults['width']})")
    parser.add_argument("--fc-units", type=int, default=defaults["fc_units"],
                        help=f"width of the first fc layer (default {defaults['fc_units']})")
    parser.add_argument("--dropout", type=float, default=defaults["dropout"],
                        help=f"dropout before each fc layer (default {defaults['dropout']})")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of stage 1 (default 20)")
    parser.add_argument("--schedule", choices=SCHEDULES, default="constant",
                        help="stage 1 learning rate: constant --lr, or onecycle (warm-up to --lr, cosine "
                             "decay; then --finetune-epochs 0 is the natural choice) (default constant)")
    parser.add_argument("--finetune-epochs", type=int, default=3,
                        help="epochs at --lr times --finetune-factor from the best weights (default 3)")
    parser.add_argument("--finetune-factor", type=float, default=0.1, help="default 0.1")
    parser.add_argument("--batch-size", type=int, default=64, help="default 64")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, batches, augmentation and the split")
    parser.add_argument("--augment", choices=("none", "basic", "camera"), default="basic",
                        help="basic: flips, small warps, brightness/contrast; camera: FaceAugment.camera(), "
                             "wider framing jitter, gamma, blur, sensor noise, random erasing (default basic)")
    parser.add_argument("--no-class-weights", dest="class_weighted", action="store_false",
                        help="plain cross-entropy instead of inverse-frequency class weights")


def add_face_training_commands(subparsers: Any) -> None:
    """``emotion-train face`` (train and save the final model) and ``face-lambda`` (choose lambda)."""
    face = subparsers.add_parser(
        "face", help="train the face CNN on FER2013 train (folder labels, or FER+ vote distributions with --ferplus)",
        description=f"Train the face CNN on FER2013 train minus a stratified validation part, and save the "
                    f"best-validation weights as {MODEL_FILE} and {CONFIG_FILE} in --out. Resumes an "
                    "interrupted run from the checkpoints in --out.")
    add_training_options(face)
    face.add_argument("--penalty", type=float, default=1e-4, metavar="LAMBDA",
                      help="lambda of the fc-weight penalty (default 1e-4, chosen by face-lambda)")
    face.set_defaults(run=_train)
    choose = subparsers.add_parser(
        "face-lambda", help="compare fc-penalty weights on the FER2013 validation part",
        description="Train one short run per lambda on (a stratified subset of) the fitting part of "
                    "FER2013 train and report validation accuracy; writes lambda_selection.json to --out.")
    add_training_options(choose)
    choose.add_argument("--lambdas", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2], metavar="LAMBDA",
                        help="penalty weights to compare (default 1e-4 1e-3 1e-2)")
    choose.add_argument("--subset", type=int, default=8000, metavar="N",
                        help="train each run on a stratified subset of N fitting images (default 8000)")
    choose.set_defaults(run=_select_lambda)
