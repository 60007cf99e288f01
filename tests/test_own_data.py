"""Training on your own data: load_npz and read_text_file (each problem one line naming the file), and
`train --dataset npz:FILE` / `train --model charlm --text FILE` end to end."""

import json

import numpy as np
import pytest

from cli import main
from engine.data import load_npz, read_text_file
from engine.recipes import load_data


def npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_an_npz_is_split_and_converted(tmp_path):
    rng = np.random.default_rng(0)
    path = npz(tmp_path, x=rng.random((50, 6)), y=rng.integers(0, 4, 50))  # float64 x: converted to float32
    train, test = load_npz(path)
    assert (len(train), len(test)) == (40, 10) and train.x.dtype == np.float32 and train.y.dtype == np.int64
    path = npz(tmp_path, "t.npz", x=np.ones((5, 3), np.float32), y=np.arange(5), x_test=np.zeros((2, 3), np.uint8),
               y_test=np.array([1, 0]))
    train, test = load_npz(path)
    assert (len(train), len(test)) == (5, 2) and test.x.dtype == np.float32


@pytest.mark.parametrize("arrays, message", [
    ({"a": np.zeros(3)}, r"no array named x or y; it holds \['a'\]"),
    ({"x": np.zeros((3, 2))}, "no array named y"),
    ({"x": np.zeros((3, 2)), "y": np.zeros(3)}, "y must be integer class labels shaped \\(samples,\\), got float64"),
    ({"x": np.zeros(3), "y": np.zeros(3, int)}, r"x must be numbers shaped \(samples, ...features\)"),
    ({"x": np.array([["a", "b"]]), "y": np.zeros(1, int)}, "x must be numbers"),
    ({"x": np.zeros((3, 2)), "y": np.zeros(4, int)}, "x holds 3 samples, y 4 labels"),
    ({"x": np.array([[0.0, np.inf], [np.nan, 1]]), "y": np.zeros(2, int)},
     r"2 NaN or inf values \(the first at \(0, 1\)\)"),
    ({"x": np.zeros((3, 2)), "y": np.array([0, -2, 1])}, r"negative labels \(-2\)"),
    ({"x": np.zeros((3, 2)), "y": np.zeros(3, int), "x_test": np.zeros((1, 2))}, "x_test and y_test come together"),
    ({"x": np.zeros((3, 2)), "y": np.zeros(3, int), "x_test": np.zeros((1, 3)), "y_test": np.zeros(1, int)},
     r"x_test samples are \(3,\), x samples \(2,\)"),
])
def test_npz_problems_are_one_line_naming_the_file(tmp_path, arrays, message):
    path = npz(tmp_path, **arrays)
    with pytest.raises(ValueError, match=message) as info:
        load_npz(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_not_an_npz(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_npz(tmp_path / "missing.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"one array \(an .npy file\)"):
        load_npz(tmp_path / "one.npy")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not an .npz archive"):
        load_npz(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="that is a folder"):
        load_npz(tmp_path)


def test_shapes_are_checked_against_the_model(tmp_path):
    path = npz(tmp_path, x=np.zeros((10, 12), np.float32), y=np.zeros(10, int))
    assert load_data("mlp", f"npz:{path}")[0].x.shape == (8, 12)
    with pytest.raises(ValueError, match=r"x holds samples of shape \(12,\), but --model lstm reads \(time steps"):
        load_data("lstm", f"npz:{path}")
    with pytest.raises(ValueError, match=r"--model lenet reads \(1, 28, 28\)"):
        load_data("lenet", f"npz:{path}")
    with pytest.raises(ValueError, match="--model charlm trains on text: give --text FILE"):
        load_data("charlm", f"npz:{path}")
    with pytest.raises(ValueError, match="unknown --dataset 'digitz'; choose digits, mnist, sonnets or npz:FILE"):
        load_data("mlp", "digitz")


def test_text_files(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffline one\r\n\tline two\r\n".encode())
    assert read_text_file(path) == "line one\n    line two\n"  # BOM, CRLF and tabs normalized
    path.write_bytes(b"abc \xff")
    with pytest.raises(ValueError, match=r"not UTF-8 text \(byte 4 is 0xff\)"):
        read_text_file(path)
    path.write_text("fine\nquote \u201chere\u201d and \u00e9\n", encoding="utf-8")
    with pytest.raises(ValueError, match="3 characters outside the vocabulary .*'é', '“', '”', the first on line 2"):
        read_text_file(path)
    path.write_text("  \n")
    with pytest.raises(ValueError, match="holds no text"):
        read_text_file(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_text_file(tmp_path / "missing.txt")


def test_train_on_an_npz_sizes_the_output_to_the_labels(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.random((48, 5)).astype(np.float32)
    path = npz(tmp_path, x=x, y=(x[:, 0] * 3).astype(int))  # 3 classes
    out = tmp_path / "run.json"
    assert main(["train", "--model", "mlp", "--dataset", f"npz:{path}", "--epochs", "1", "--device", "cpu",
                 "--json", str(out), "--checkpoint", str(tmp_path / "m.npz")]) == 0
    assert json.loads(out.read_text())["dataset"] == f"npz:{path}"
    from engine import load

    model, _ = load(tmp_path / "m.npz")
    assert model.layers[-1].out_features == 3 and model.layers[0].in_features == 5
    capsys.readouterr()
    assert main(["train", "--model", "lstm", "--dataset", f"npz:{path}", "--device", "cpu"]) == 1
    assert "but --model lstm reads (time steps, features)" in capsys.readouterr().err


def test_train_charlm_on_a_text_file(tmp_path, capsys):
    path = tmp_path / "poem.txt"
    path.write_text("Shall I compare thee to a summer's day?\n" * 12)
    assert main(["train", "--model", "charlm", "--text", str(path), "--device", "cpu"]) == 1
    assert "480 characters is too short; the model reads windows of 65" in capsys.readouterr().err
    path.write_text("Shall I compare thee to a summer's day?\n" * 20)
    assert main(["train", "--model", "charlm", "--text", str(path), "--epochs", "1", "--limit", "4",
                 "--device", "cpu"]) == 0
    assert "bits per character held out" in capsys.readouterr().out
    assert main(["train", "--model", "mlp", "--text", str(path), "--device", "cpu"]) == 1
    assert "--text trains the character model: add --model charlm" in capsys.readouterr().err
    assert main(["train", "--model", "charlm", "--text", str(tmp_path / "none.txt"), "--device", "cpu"]) == 1
    assert "none.txt: no such file" in capsys.readouterr().err
