"""Audio-visual fusion benchmarks: time-aligned face sampling, the fusion-CV folds and their leak check, and
both commands end to end on a real cache of actor 05's AV clips (tiny untrained encoders)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_encoders import face_encoder, speech_encoder

from edge.errors import InputError
from edge.features.keyfaces import medoid
from edge.fusion.gate import ReliabilityGate, save_gate
from edge.models import FACE_MODEL, SPEECH_MODEL
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge.sidecar import file_sha256
from edge.taxonomy import EMOTIONS
from train.cli.bench import build_parser
from train.cli.bench import main as bench_main
from train.confidence import expected_calibration_error
from train.data.av_windows import align_clips, faces_in_window
from train.data.feature_cache import AvCacheSpec, AvClipFeatures, build_cache, load_av_cache
from train.data.ravdess import index_ravdess, parse_take_name
from train.fusion.cv import SMOKE_NOTE, actor_av_folds, plan_folds, speech_model_path, take_av_folds
from train.fusion.data import encode, load_face_encoder, load_speech_encoder
from train.fusion.eval import calibration_metrics
from train.fusion.training import HeadSettings, save_fusion_head, train_head
from train.trainer import TrainConfig

ACTOR05_TAKES = (   # the 14 AV takes of actor 05 in ../shared/data/ravdess_av_actor05
    "01-01-01-01-02-01-05", "01-01-03-01-01-02-05", "01-01-04-01-01-01-05", "01-01-04-01-02-01-05",
    "01-01-04-02-01-02-05", "01-01-04-02-02-01-05", "01-01-04-02-02-02-05", "01-01-06-01-01-01-05",
    "01-01-06-01-02-01-05", "01-01-06-01-02-02-05", "01-01-06-02-01-01-05", "01-01-06-02-02-01-05",
    "01-01-06-02-02-02-05", "01-01-08-01-02-01-05")


def _run(argv: list[str]) -> int:
    """Run an ``emotion-bench`` command, letting its errors through (``main`` turns them into exit codes)."""
    args = build_parser().parse_args(argv)
    return int(args.run(args))


def _clip(take_id: str, pts: np.ndarray, starts: list[float], seed: int = 0) -> AvClipFeatures:
    rng = np.random.default_rng(seed)
    return AvClipFeatures(take_id=take_id, actor=parse_take_name(f"{take_id}.mp4").actor,
                          label_id=parse_take_name(f"{take_id}.mp4").emotion - 1,
                          crops=rng.integers(0, 256, (len(pts), 48, 48), dtype=np.uint8), pts=pts,
                          key_faces=np.array([0]), frames=len(pts), frames_without_face=0,
                          windows=rng.normal(size=(len(starts), 3, 99, 40)).astype(np.float32),
                          window_starts=np.asarray(starts))


def test_calibration_metrics_score_windows_and_each_clips_mean_posterior() -> None:
    posterior = np.array([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7], [0.1, 0.9]])
    truth, clips = np.array([0, 0, 1, 1]), np.array(["a", "a", "b", "b"])
    metrics = calibration_metrics(posterior, truth, clips)
    assert metrics["window_ece"] == pytest.approx(expected_calibration_error(posterior, truth))
    assert metrics["clip_mean_ece"] == pytest.approx(expected_calibration_error(
        np.array([[0.7, 0.3], [0.2, 0.8]]), np.array([0, 1])))
    assert metrics["clip_mean_ece"] == pytest.approx(0.25)    # both clips right at confidence 0.7 and 0.8


def test_faces_in_window_are_those_seen_during_it() -> None:
    pts = np.array([0.0, 0.4, 0.5, 0.99, 1.0, 1.5, 2.2])
    assert faces_in_window(pts, 0.5, 1.0).tolist() == [2, 3, 4]       # [0.5, 1.5): 1.5 is out
    assert faces_in_window(pts, 3.0, 1.0).tolist() == []


def test_aligned_windows_take_only_faces_inside_their_range_and_their_medoid() -> None:
    pts = np.arange(0, 3.0, 1 / 10)                                   # 10 fps, 30 faces
    first = _clip("01-01-03-01-01-02-05", pts, [0.2, 0.7, 2.5])
    gap = _clip("01-01-04-01-01-01-05", np.concatenate([pts[:5], pts[25:]]), [0.0, 1.0, 2.0], seed=1)
    aligned = align_clips([first, gap], window_s=1.0)
    all_pts = np.concatenate([first.pts, gap.pts])
    assert len(aligned) == 5 and aligned.without_face == {"01-01-04-01-01-01-05": 1}   # 1.0-2.0 has no face
    for i in range(len(aligned)):
        times = all_pts[aligned.faces[i]]
        assert (times >= aligned.starts[i]).all() and (times < aligned.starts[i] + 1.0).all()
        assert aligned.key_faces[i] in aligned.faces[i]
        crops = aligned.crops[aligned.faces[i]].reshape(len(times), -1).astype(np.float32)
        assert aligned.key_faces[i] == aligned.faces[i][medoid(crops)]
    assert [len(f) for f in aligned.faces] == [10, 10, 5, 5, 5]        # the last window runs past the clip end
    np.testing.assert_array_equal(aligned.crops[aligned.faces[3]], gap.crops[:5])
    assert aligned.subset(["01-01-04-01-01-01-05"]).take_ids.tolist() == ["01-01-04-01-01-01-05"] * 2


def test_actor_folds_need_test_and_training_actors() -> None:
    folds = plan_folds(ACTOR05_TAKES, "actor", seed=0)
    assert [f.skipped is not None for f in folds] == [True] * 4
    assert "no training actor" in str(folds[0].skipped) and "none of its test actors" in str(folds[1].skipped)

    takes = [f"01-01-0{e}-01-0{s}-01-{a:02d}" for a in range(1, 25) for e in (3, 4) for s in (1, 2)]
    for fold in actor_av_folds(takes, seed=0):
        assert fold.skipped is None and fold.test_actors == tuple(range(6 * fold.index + 1, 6 * fold.index + 7))
        actors = {part: {parse_take_name(f"{t}.mp4").actor for t in getattr(fold, part)}
                  for part in ("test", "validation", "train")}
        assert actors["test"] == set(fold.test_actors)
        assert not (actors["train"] | actors["validation"]) & actors["test"]
        assert sorted(a % 2 for a in actors["validation"]) == [0, 1] and len(actors["train"]) == 16


def test_take_folds_split_one_actor_by_statement_and_repetition() -> None:
    folds = take_av_folds(ACTOR05_TAKES)
    assert [f.name for f in folds] == ["statement 1, repetition 1", "statement 1, repetition 2",
                                       "statement 2, repetition 1", "statement 2, repetition 2"]
    assert sorted(t for f in folds for t in f.test) == sorted(ACTOR05_TAKES)     # each take tested once
    for fold in folds:
        assert fold.skipped is None and fold.test_actors == (5,) and fold.train and fold.validation
        assert not set(fold.test) & (set(fold.train) | set(fold.validation))
        assert set(fold.test) | set(fold.train) | set(fold.validation) == set(ACTOR05_TAKES)
        statement, repetition = (int(x) for x in fold.name.replace(",", "").split()[1::2])
        assert {(parse_take_name(f"{t}.mp4").statement, parse_take_name(f"{t}.mp4").repetition)
                for t in fold.test} == {(statement, repetition)}
    lonely = take_av_folds(ACTOR05_TAKES[:1])
    assert all(f.skipped for f in lonely)


def test_fusion_cv_refuses_a_speech_model_that_heard_a_test_actor(tmp_path: Path) -> None:
    take_fold = take_av_folds(ACTOR05_TAKES)[0]
    cv = tmp_path / "speech_cv"
    assert speech_model_path(take_fold, "take", cv, None) == cv / "fold0" / "checkpoint.pt"   # fold 0 tests actor 5
    actor_fold = actor_av_folds([f"01-01-03-01-01-01-{a:02d}" for a in range(1, 25)], seed=0)[2]
    assert speech_model_path(actor_fold, "actor", cv, None) == cv / "fold2" / "checkpoint.pt"

    heard = load_speech_encoder(speech_encoder(tmp_path / "heard" / "speech_cnn.pt", range(1, 23), (23, 24)))
    with pytest.raises(InputError, match=r"actors \[5\], test actors of fold 0"):
        heard.check_unheard(take_fold.test_actors, "fold 0")
    with pytest.raises(InputError, match=r"actors \[13, 14, 15, 16, 17, 18\]"):
        heard.check_unheard(actor_fold.test_actors, "fold 2")
    unheard = load_speech_encoder(speech_encoder(tmp_path / "ok" / "speech_cnn.pt", range(7, 23), (23, 24)))
    unheard.check_unheard(take_fold.test_actors, "fold 0")
    silent = load_speech_encoder(speech_encoder(tmp_path / "silent" / "speech_cnn.pt", (), ()))
    with pytest.raises(InputError, match="records no training actors"):
        silent.check_unheard((5,), "fold 0")


@pytest.fixture(scope="module")
def actor05_cache(ravdess_av_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real AV cache of actor 05's 14 clips, every 5th frame (about 19 faces a clip)."""
    takes = [t for t in index_ravdess(ravdess_av_dir).takes if t.modality == 1]
    report = build_cache(takes, AvCacheSpec(every_nth=5), tmp_path_factory.mktemp("av"), ravdess_av_dir, workers=2,
                         progress=False)
    assert report.failures == []
    return report.directory


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("encoders")
    return {"speech": speech_encoder(root / "speech" / "speech_cnn.pt", range(7, 23), (23, 24)),
            "heard": speech_encoder(root / "heard" / "speech_cnn.pt", range(1, 23), (23, 24)),
            "face": face_encoder(root / "face" / "face_cnn.pt", Path("fer2013/train"), 42, 14)}


@pytest.mark.shared_data
def test_fusion_cv_take_mode_runs_on_real_actor05_clips(actor05_cache: Path, encoders: dict[str, Path],
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    cache = load_av_cache(actor05_cache)
    assert sorted(c.take_id for c in cache.clips) == sorted(ACTOR05_TAKES)
    out = tmp_path / "cv"
    common = ["fusion-cv", "--cache", str(actor05_cache), "--face-model", str(encoders["face"]), "--epochs", "2"]
    assert bench_main([*common, "--speech-model", str(encoders["speech"]), "--folds-by", "take",
                       "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert SMOKE_NOTE in printed and "mean ± std" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["folds_by"] == "take" and results["note"] == SMOKE_NOTE and results["actors"] == [5]
    assert [f["skipped"] for f in results["folds"]] == [None] * 4
    assert sum(f["test_clips"] for f in results["folds"]) == 14           # every clip tested once
    for fold in results["folds"]:
        assert fold["train_pairs"] > fold["train_windows"] > 0            # every face of a training window
        assert set(fold["methods"]) == {"speech", "face", "decision", "decision_confidence", "model"}
        assert {w["take_id"] for w in fold["windows"]} == set(fold["test"])
        assert (out / f"fold{fold['index']}" / "checkpoint.pt").is_file()
    assert set(results["summary"]) == {"speech", "face", "decision", "decision_confidence", "model"}
    assert 0 <= results["summary"]["model"]["clip_mean_accuracy"]["mean"] <= 1
    assert (out / "confusion_model_clip_mean.png").stat().st_size > 1000

    refused = tmp_path / "refused"
    with pytest.raises(InputError, match=r"trained or selected on actors \[5\], test actors of fold 0"):
        _run([*common, "--speech-model", str(encoders["heard"]), "--folds-by", "take", "--out", str(refused)])
    assert not refused.exists()                                         # refused before training anything
    with pytest.raises(InputError, match="no fold could run"):          # the actor protocol needs 2+ actors
        _run([*common, "--speech-model", str(encoders["speech"]), "--out", str(tmp_path / "a")])
    assert "fold 0 (actors 1-6): skipped: no training actor" in capsys.readouterr().out


@pytest.mark.shared_data
def test_fusion_ravdess_scores_every_method_and_checks_the_encoders(
        actor05_cache: Path, encoders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    speech, face = load_speech_encoder(encoders["speech"]), load_face_encoder(encoders["face"])
    x = torch.randn(64, speech.embedding_size + face.embedding_size)
    y = torch.arange(64) % len(EMOTIONS)
    trained = train_head((x, y), (x, y), speech.embedding_size, HeadSettings(TrainConfig(epochs=1), dropout=0.1))
    head = save_fusion_head(tmp_path / "head", trained, {"speech": speech, "face": face}, {})
    out = tmp_path / "bench"
    command = ["fusion-ravdess", "--cache", str(actor05_cache), "--speech-model", str(encoders["speech"]),
               "--face-model", str(encoders["face"]), "--fusion-head", str(head), "--out", str(out)]
    assert bench_main(command) == 0
    printed = capsys.readouterr().out
    assert "1 actor(s) [5] only (14 clips)" in printed
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"speech", "face", "decision", "decision_confidence", "model"}
    assert results["methods"]["model"]["clips"] == 14 and len(results["clips"]) == 14
    assert all(0 <= row["window_ece"] <= 1 and 0 <= row["clip_mean_ece"] <= 1 for row in results["methods"].values())
    assert results["decision_weights"] == {"speech": 1.0, "face": 1.0}
    assert sum(1 for _ in results["windows"]) == results["methods"]["speech"]["windows"]
    for method in ("speech", "face", "decision", "decision_confidence", "model"):
        for decision in ("window", "clip_majority", "clip_mean"):
            assert (out / f"confusion_{method}_{decision}.png").is_file()

    with pytest.raises(InputError, match=r"trained or selected on actors \[5\]"):       # it heard actor 05
        _run([*command[:4], str(encoders["heard"]), *command[5:]])
    other_face = face_encoder(tmp_path / "other" / "face_cnn.pt", Path("fer2013/train"), 42, 14, seed=1)
    with pytest.raises(InputError, match="not the one the fusion head was trained with"):
        _run([*command[:6], str(other_face), *command[7:]])
    without_head = [*command[:7], "--out", str(tmp_path / "no_head")]   # no --fusion-head: no model row
    assert bench_main(without_head) == 0
    unheaded = json.loads((tmp_path / "no_head" / "results.json").read_text())
    assert set(unheaded["methods"]) == {"speech", "face", "decision", "decision_confidence"}
    assert unheaded["fusion_head"] is None and unheaded["gates"] == {}
    gate = save_gate(ReliabilityGate(base={"speech": 1.0, "face": -1.0}, slope={"speech": 0.0, "face": 0.0},
                                     bias=(0.0,) * len(EMOTIONS)), tmp_path / "gate_weights.json", {})
    assert bench_main([*without_head, "--gate", str(gate), "--gate-per-clip"]) == 0
    gated = json.loads((tmp_path / "no_head" / "results.json").read_text())
    assert set(gated["methods"]) == {"speech", "face", "decision", "decision_confidence", "gated_weights",
                                     "gated_other_clips"}
    assert gated["methods"]["gated_other_clips"]["clips"] == 14 and gated["gates"] == {"gated_weights": str(gate)}


@pytest.mark.shared_data
def test_an_exported_face_model_is_an_encoder_and_the_benchmark_runs_on_it(
        actor05_cache: Path, encoders: dict[str, Path], tmp_path: Path) -> None:
    face = load_face_encoder(FACE_MODEL)
    assert face.embedding_size == 256 and face.labels == list(EMOTIONS) and face.meta["features"]["align"]
    crops = load_av_cache(actor05_cache).clips[0].crops[:5, None].astype(np.float32)
    embedding, posterior = encode(face, torch.from_numpy(crops))
    outputs = OnnxRuntimeBackend(FACE_MODEL).run(crops)
    np.testing.assert_allclose(embedding.numpy(), outputs["embedding"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(posterior.argmax(1), outputs["logits"].argmax(1))
    with pytest.raises(InputError, match="a face encoder with an embedding output is needed"):
        load_face_encoder(SPEECH_MODEL)
    out = tmp_path / "bench"
    assert bench_main(["fusion-ravdess", "--cache", str(actor05_cache), "--speech-model", str(encoders["speech"]),
                       "--face-model", str(FACE_MODEL), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["encoders"]["face"]["sha256"] == file_sha256(FACE_MODEL)
    assert results["methods"]["face"]["clips"] == 14
