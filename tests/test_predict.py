"""``cli.py predict`` and engine/inference.py: the accuracy train reported, input shapes checked, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import layers as L
from engine import Device, Sequential, evaluate, load_classifier, predict, save
from engine.data import load_digits
from engine.inference import check_inputs, input_shape, num_classes, softmax
from engine.models import lenet, mlp, rnn_classifier

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def in_process(capsys, *args):
    """cli.main in this process (the quick way for errors): (exit code, stdout, stderr)."""
    import cli as entry

    code = entry.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(code, err, expected_code=1):
    assert code == expected_code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`train` for one epoch with --checkpoint and --json, as a user runs it: (folder, checkpoint, summary)."""
    out = tmp_path_factory.mktemp("predict")
    ckpt, js = out / "mlp.npz", out / "train.json"
    result = cli("train", "--model", "mlp", "--epochs", "1", "--device", "cpu", "--checkpoint", str(ckpt),
                 "--json", str(js))
    assert result.returncode == 0, result.stderr[-2000:]
    return out, ckpt, json.loads(js.read_text())


@pytest.fixture(scope="module")
def lenet_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("lenet") / "lenet.npz"
    save(path, lenet(Device("cpu")), extra={"epoch": 0})
    return path


def test_predict_reports_the_accuracy_train_reported_and_writes_classes_and_probabilities(trained):
    out, ckpt, summary = trained
    js, npz = out / "predict.json", out / "p.npz"
    result = cli("predict", "--checkpoint", str(ckpt), "--dataset", "digits", "--device", "cpu",
                 "--json", str(js), "--output", str(npz))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(js.read_text())
    assert report["accuracy"] == summary["test_accuracy"]  # exactly: the same batches, the same kernels
    assert report["loss"] == summary["history"][-1]["test_loss"]
    assert report["samples"] == 359 and report["classes"] == 10 and report["epoch"] == 1
    assert f"accuracy {summary['test_accuracy']:.4f}" in result.stdout
    with np.load(npz) as saved:
        assert set(saved.files) == {"classes", "probabilities", "labels"}
        classes, probs, labels = saved["classes"], saved["probabilities"], saved["labels"]
    assert classes.shape == (359,) and classes.dtype == np.int64
    assert probs.shape == (359, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(axis=1), classes)
    np.testing.assert_array_equal(labels, load_digits("flat")[1].y)
    assert (classes == labels).mean() == report["accuracy"]


def test_predict_on_an_input_file_with_and_without_labels(trained, tmp_path, capsys):
    _, ckpt, _ = trained
    test = load_digits("flat")[1]
    np.save(tmp_path / "x.npy", test.x[:7])
    np.save(tmp_path / "y.npy", test.y[:7])
    code, out, err = in_process(capsys, "predict", "--checkpoint", str(ckpt), "--input", str(tmp_path / "x.npy"),
                                "--device", "cpu", "--output", str(tmp_path / "p.npz"))
    assert code == 0, err
    assert "7 samples, predicted classes" in out
    with np.load(tmp_path / "p.npz") as saved:
        assert set(saved.files) == {"classes", "probabilities"} and saved["classes"].shape == (7,)
    code, out, err = in_process(capsys, "predict", "--checkpoint", str(ckpt), "--input", str(tmp_path / "x.npy"),
                                "--labels", str(tmp_path / "y.npy"), "--device", "cpu", "--json",
                                str(tmp_path / "p.json"))
    assert code == 0, err
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["samples"] == 7 and 0 <= report["correct"] <= 7 and report["accuracy"] == report["correct"] / 7
    np.save(tmp_path / "one.npy", test.x[0].astype(np.float64))  # one sample, no batch axis: a batch of one
    code, out, err = in_process(capsys, "predict", "--checkpoint", str(ckpt), "--input", str(tmp_path / "one.npy"),
                                "--device", "cpu")
    assert code == 0 and "1 sample, predicted classes" in out, err


def test_predict_limit_matches_train_limit(tmp_path):
    ckpt, js = tmp_path / "rnn.npz", tmp_path / "t.json"
    result = cli("train", "--model", "rnn", "--epochs", "1", "--limit", "120", "--device", "cpu", "--checkpoint",
                 str(ckpt), "--json", str(js))
    assert result.returncode == 0, result.stderr[-2000:]
    result = cli("predict", "--checkpoint", str(ckpt), "--dataset", "digits", "--limit", "120", "--device", "cpu",
                 "--json", str(tmp_path / "p.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "p.json").read_text())["accuracy"] == json.loads(js.read_text())["test_accuracy"]


def test_wrong_input_shapes_name_what_the_model_expects(lenet_checkpoint, tmp_path, capsys):
    cases = [(np.zeros((5, 64), np.float32), "expects --input", "(N, 1, 28, 28), got (5, 64)"),
             (np.zeros((3, 1, 8, 8), np.float32), "expects --input", "(N, 1, 28, 28), got (3, 1, 8, 8)"),
             (np.zeros((3, 28, 28), np.float32), "expects --input", "got (3, 28, 28)"),
             (np.zeros((0, 1, 28, 28), np.float32), "no samples", ""),
             (np.zeros((2, 1, 28, 28), np.uint8), "must be floating-point", "uint8")]
    for x, *expected in cases:
        np.save(tmp_path / "x.npy", x)
        code, _, err = in_process(capsys, "predict", "--checkpoint", str(lenet_checkpoint), "--input",
                                  str(tmp_path / "x.npy"), "--device", "cpu")
        line = one_line(code, err)
        assert all(part in line for part in expected), line
    np.save(tmp_path / "ok.npy", np.zeros((2, 1, 28, 28), np.float32))
    np.save(tmp_path / "y.npy", np.zeros((3,), np.int64))
    code, _, err = in_process(capsys, "predict", "--checkpoint", str(lenet_checkpoint), "--input",
                              str(tmp_path / "ok.npy"), "--labels", str(tmp_path / "y.npy"), "--device", "cpu")
    assert "expected 2 integers" in one_line(code, err)


def test_bad_checkpoints_and_files_are_one_line(trained, tmp_path, capsys):
    _, ckpt, _ = trained
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    np.save(tmp_path / "x.npy", np.ones((2, 64), np.float32))
    save(tmp_path / "regressor.npz", Sequential(L.Dense(4, 1, device=Device("cpu"))))
    save(tmp_path / "features.npz", Sequential(L.Conv2D(1, 4, 3, device=Device("cpu"))))
    save(tmp_path / "mnist_mlp.npz", mlp(Device("cpu"), in_features=784))
    (tmp_path / "text.json").write_text('{"not": "an array"}')
    (tmp_path / "empty.npy").write_bytes(b"")
    cases = [
        (("--checkpoint", str(tmp_path / "plain.npz"), "--dataset", "digits"), "not a tilegrad checkpoint"),
        (("--checkpoint", str(tmp_path / "x.npy"), "--dataset", "digits"), "not a tilegrad checkpoint"),
        (("--checkpoint", str(tmp_path / "missing.npz"), "--dataset", "digits"), "not found"),
        (("--checkpoint", str(tmp_path / "regressor.npz"), "--dataset", "digits"), "not a classifier"),
        (("--checkpoint", str(tmp_path / "features.npz"), "--dataset", "digits"), "not a classifier"),
        (("--checkpoint", str(tmp_path / "mnist_mlp.npz"), "--dataset", "digits"), "expects inputs of shape (N, 784)"),
        (("--checkpoint", str(ckpt), "--input", str(tmp_path / "plain.npz")), "not one .npy array"),
        (("--checkpoint", str(ckpt), "--input", str(tmp_path / "nothing.npy")), "no such file"),
        (("--checkpoint", str(ckpt), "--input", str(tmp_path / "text.json")), "not a NumPy .npy array (it looks"),
        (("--checkpoint", str(ckpt), "--input", str(tmp_path / "empty.npy")), "not a NumPy .npy array (the file"),
        (("--checkpoint", str(ckpt), "--dataset", "digits", "--output", str(tmp_path / "p.npy")),
         "end the name in .npz"),
        (("--checkpoint", str(ckpt), "--dataset", "digits", "--labels", str(tmp_path / "x.npy")),
         "--labels goes with"),
        (("--checkpoint", str(ckpt), "--dataset", "mnist"), "--data-dir"),
    ]
    for args, expected in cases:
        code, _, err = in_process(capsys, "predict", *args, "--device", "cpu")
        assert expected in one_line(code, err), (args, err)
    with pytest.raises(SystemExit):  # --dataset and --input exclude each other (argparse: exit 2)
        in_process(capsys, "predict", "--checkpoint", str(ckpt), "--dataset", "digits", "--input", "x.npy")


def test_expected_input_shapes_come_from_the_layers():
    dev = Device("cpu")
    assert input_shape(lenet(dev)) == (1, 28, 28)
    assert input_shape(mlp(dev)) == (64,) and input_shape(mlp(dev, in_features=784)) == (784,)
    assert input_shape(rnn_classifier(dev)) == (None, 8)
    assert num_classes(lenet(dev)) == 10 and num_classes(rnn_classifier(dev, classes=3)) == 3
    assert check_inputs(rnn_classifier(dev), np.zeros((2, 13, 8))).shape == (2, 13, 8)  # any number of steps
    with pytest.raises(ValueError, match=r"shape \(N, T, 8\), got \(2, 13, 7\)"):
        check_inputs(rnn_classifier(dev), np.zeros((2, 13, 7)))


def test_predict_equals_evaluate_and_restores_the_mode(tmp_path):
    dev = Device("cpu")
    model = Sequential(L.Dense(64, 32, device=dev), L.ReLU(), L.Dropout(0.5), L.Dense(32, 10, device=dev, seed=1))
    test = load_digits("flat")[1]
    result = predict(model, test.x, labels=test.y)
    assert model.training  # restored
    expected = evaluate(model, L.SoftmaxCrossEntropy(), test)  # eval mode too: dropout off
    assert (result["accuracy"], result["loss"]) == (expected["accuracy"], expected["loss"])
    small = predict(model, test.x, batch_size=7)
    np.testing.assert_allclose(small["probabilities"], result["probabilities"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result["probabilities"], softmax(result["logits"]))
    save(tmp_path / "m.npz", model)
    loaded, _ = load_classifier(tmp_path / "m.npz")
    assert not loaded.training
    np.testing.assert_array_equal(predict(loaded, test.x)["classes"], result["classes"])


def test_softmax_is_stable_for_large_logits():
    probs = softmax(np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]]))
    assert probs.dtype == np.float32 and np.isfinite(probs).all()
    np.testing.assert_allclose(probs, [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
