"""The labelling command: video and PNG input, resampling, the label format, the recording it
appends to, and every bad input as a one-line error that leaves nothing behind."""

from __future__ import annotations

import logging
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from inference.training import label
from inference.training.data import load_recording
from inference.training.idm_experiment import write_video
from inference.training.video_frames import resampled
from tests.inference.training.fakes import ACTIONS
from tests.inference.training.idm_fixtures import fake_frames, record_fake, train_fake_idm

logger = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def idm(tmp_path_factory):
    root = tmp_path_factory.mktemp("label-idm")
    return train_fake_idm(record_fake(root / "data"), root / "idm.safetensors")


@pytest.fixture(scope="module")
def played():
    return fake_frames(240, seed=11)


def run_label(capsys, *flags):
    """(exit code, stdout, stderr) of the command run in this process."""
    try:
        label.main(["--threads", "1", *map(str, flags)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def write_at_rate(frames: np.ndarray, path, fps: int, size=(64, 64)) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            big = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.NEAREST))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(big, format="rgb24")))
        container.mux(stream.encode())


def test_an_mp4_is_labelled_one_action_per_frame(idm, played, tmp_path, capsys):
    frames, truth = played
    video = tmp_path / "play.mp4"
    write_video(frames, video, fps=20, scale=4)  # 64x64: the labeller resizes back to 16x16
    code, out, err = run_label(capsys, "--idm", idm, "--video", video, "--out", tmp_path / "l.npz")
    assert code == 0, err
    labels = np.load(tmp_path / "l.npz")
    assert labels["actions"].shape == (240,) and labels["confidence"].shape == (240,)
    assert tuple(labels["names"]) == ACTIONS
    assert labels["actions"][0] == 0 and labels["confidence"][0] == 1.0
    assert ((labels["confidence"] > 0) & (labels["confidence"] <= 1)).all()
    moved = np.r_[False, (np.diff(frames.astype(int), axis=0) != 0).any((1, 2, 3))]
    # Through H.264 and a resize, the moves must still be read right.
    assert (labels["actions"][moved] == truth[moved]).mean() > 0.85
    assert "240 frames at 20 fps, 16x16" in out and "64x64" in out
    assert "below confidence 0.9" in out


def test_frame_rates_are_resampled_to_the_play_rate(idm, played, tmp_path, capsys):
    frames, _ = played
    for fps, expected in ((60, 80), (10, 480)):
        video = tmp_path / f"at{fps}.mp4"
        write_at_rate(frames, video, fps)
        out_path = tmp_path / f"at{fps}.npz"
        code, out, err = run_label(capsys, "--idm", idm, "--video", video, "--out", out_path)
        assert code == 0, err
        assert len(np.load(out_path)["actions"]) == expected
        assert f"240 frames at {fps} fps" in out and f"{expected} frames at 20 fps" in out


def test_sample_and_hold_picks_the_frame_on_screen():
    times = [(i / 30, i) for i in range(9)]  # 30 fps, 0.3 s
    assert list(resampled(iter(times), 20, 30)) == [0, 1, 3, 4, 6, 7]
    assert list(resampled(iter([(i / 10, i) for i in range(3)]), 20, 10)) == [0, 0, 1, 1, 2, 2]
    assert list(resampled(iter([]), 20, 20)) == []


def test_a_wide_video_is_centre_cropped(idm, played, tmp_path, capsys):
    frames, _ = played
    video = tmp_path / "wide.mkv"
    write_at_rate(frames[:40], video, 20, size=(96, 64))
    code, out, err = run_label(capsys, "--idm", idm, "--video", video, "--out", tmp_path / "w.npz")
    assert code == 0, err
    assert "96x64" in out and "centre-cropped to 64x64" in out


def test_a_png_folder_is_read_in_numbered_order(idm, played, tmp_path, capsys):
    frames, _ = played
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, frame in enumerate(frames[:30]):
        Image.fromarray(frame).resize((48, 48), Image.Resampling.NEAREST).save(
            folder / f"frame_{i}.png"
        )  # frame_10 sorts after frame_9, not after frame_1
    out_path = tmp_path / "p.npz"
    code, out, err = run_label(
        capsys,
        "--idm",
        idm,
        "--video",
        folder,
        "--out",
        out_path,
        "--fps",
        "10",
        "--recording",
        tmp_path / "rec",
    )
    assert code == 0, err
    assert len(np.load(out_path)["actions"]) == 60  # 10 fps shown at 20: every frame twice
    recorded = load_recording(tmp_path / "rec", "all")
    assert np.array_equal(recorded.frames[::2], frames[:30])


def test_labelled_video_becomes_a_recording_train_reads(idm, played, tmp_path, capsys):
    frames, _ = played
    rec = tmp_path / "rec"
    for n in range(2):
        video = tmp_path / f"v{n}.mp4"
        write_video(frames, video, fps=20, scale=2)
        code, _, err = run_label(
            capsys,
            "--idm",
            idm,
            "--video",
            video,
            "--out",
            tmp_path / f"v{n}.npz",
            "--recording",
            rec,
        )
        assert code == 0, err
    recording = load_recording(rec, "all")
    assert recording.frames.shape == (480, 16, 16, 3)
    assert recording.action_names == ACTIONS
    labels = np.load(tmp_path / "v1.npz")["actions"]
    assert np.array_equal(recording.actions[240:], labels)
    assert len(set(recording.segments[:240]) & set(recording.segments[240:])) == 0
    shard = np.load(rec / "shard_00000.npz")
    assert set(shard.files) >= {"frames", "actions", "held", "segment", "confidence"}
    assert not list(rec.glob(".staging-*"))
    # The folder trains like any recording: two shards, the last held out.
    assert len(load_recording(rec, "train", holdout=1)) == 240


def test_a_recording_of_other_actions_is_refused(idm, played, tmp_path, capsys):
    frames, _ = played
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "manifest.json").write_text(
        '{"action_names": ["a", "b"], "frame_size": [16, 16], "shards": []}'
    )
    video = tmp_path / "v.mp4"
    write_video(frames[:20], video)
    code, _, err = run_label(
        capsys, "--idm", idm, "--video", video, "--out", tmp_path / "o.npz", "--recording", rec
    )
    assert code == 1 and "holds [16, 16] frames with actions ['a', 'b']" in err
    assert not (tmp_path / "o.npz").exists()


def one_line_failure(capsys, idm, video, tmp_path, expected: str, recording=None) -> None:
    out = tmp_path / "labels.npz"
    flags = ["--idm", idm, "--video", video, "--out", out]
    if recording is not None:
        flags += ["--recording", recording]
    code, stdout, err = run_label(capsys, *flags)
    assert code == 1
    # Only the progress bar's lines (stderr) come before the one-line error.
    *progress, last = err.strip().splitlines()
    assert last.startswith("label: ") and expected in last, err
    assert all(line.startswith("label [") for line in progress), err
    assert not out.exists() and not list(tmp_path.glob(".labels.npz*"))
    if recording is not None:
        assert not recording.exists()


def test_a_file_that_is_not_a_video_is_refused(idm, tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("these are not moving pictures\n" * 50)
    one_line_failure(capsys, idm, text, tmp_path, "not a video PyAV can read", tmp_path / "rec")


def test_a_truncated_video_is_refused(idm, played, tmp_path, capsys):
    frames, _ = played
    whole = tmp_path / "whole.mkv"
    write_at_rate(np.concatenate([frames] * 4), whole, 20)  # 48 s stated in the header
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    one_line_failure(capsys, idm, cut, tmp_path, "truncated", tmp_path / "rec")


def test_a_truncated_mp4_is_refused(idm, played, tmp_path, capsys):
    frames, _ = played
    whole = tmp_path / "whole.mp4"
    write_video(frames, whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    one_line_failure(capsys, idm, cut, tmp_path, str(cut))


def test_an_empty_folder_or_a_missing_path_is_refused(idm, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    one_line_failure(capsys, idm, tmp_path / "empty", tmp_path, "no PNG frames")
    one_line_failure(capsys, idm, tmp_path / "nowhere.mp4", tmp_path, "no such file or folder")


def test_a_broken_png_in_a_folder_is_refused(idm, played, tmp_path, capsys):
    frames, _ = played
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, frame in enumerate(frames[:5]):
        Image.fromarray(frame).save(folder / f"{i:04d}.png")
    (folder / "0005.png").write_bytes(b"\x89PNG broken")
    one_line_failure(
        capsys, idm, folder, tmp_path, "0005.png: not a readable PNG", tmp_path / "rec"
    )


def test_a_bad_idm_file_is_refused(played, tmp_path, capsys):
    frames, _ = played
    video = tmp_path / "v.mp4"
    write_video(frames[:10], video)
    bad = tmp_path / "idm.safetensors"
    bad.write_bytes(b"nope")
    one_line_failure(capsys, bad, video, tmp_path, "--idm")


def test_bad_flags_are_refused(idm, tmp_path, capsys):
    for flags, message in (
        (["--fps", "0"], "--fps must be positive"),
        (["--batch", "0"], "--batch"),
        (["--unsure", "2"], "--unsure"),
        (["--out", str(tmp_path)], "is a folder"),
    ):
        base = ["--idm", idm, "--video", tmp_path / "v.mp4", "--out", tmp_path / "o.npz"]
        code, _, err = run_label(capsys, *base, *flags)
        assert code == 2 and message in err


def test_windows_match_the_naive_ones_for_any_batch():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(11)]
    for batch in (1, 3, 4, 11, 50):
        got = np.concatenate(list(label.windows_of(iter(frames), 1, 1, batch)))[:, :, 0, 0, 0]
        want = np.clip(np.arange(11)[:, None] + np.arange(-1, 2), 0, 10)
        assert np.array_equal(got, want), batch


def test_a_long_stream_keeps_only_a_few_frames():
    import tracemalloc

    def stream():  # 5,000 frames of 64x64: 61 MB if the labeller held them all
        for i in range(5000):
            yield np.full((64, 64, 3), i % 255, np.uint8)

    tracemalloc.start()
    try:
        batches = sum(1 for _ in label.windows_of(stream(), 1, 1, 64))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert batches == -(-5000 // 64)
    assert peak < 12 * 2**20, peak  # a batch of windows and the frames it needs
