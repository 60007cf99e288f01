"""The character language model: the bundled text and its windows, the per-character loss, a tiny model that
learns, sampling from a saved checkpoint, and the CLI (train --model charlm, sample, their errors)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import layers as L
import optim as O
from engine import Device, Sequential, fit, load, save
from engine.charlm import HeldOutBitsPerChar, SequenceCrossEntropy, char_lm_parts, evaluate_text, sample
from engine.data import CHARS, decode, encode, load_text, read_text, text_windows
from engine.models import char_lm, mlp

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def tiny_model(cell="lstm", seed=0):
    return char_lm(Device("cpu"), embedding_dim=8, hidden=24, cell=cell, seed=seed)


# ------------------------------------------------------------------------------------------------
# The text and its windows
# ------------------------------------------------------------------------------------------------


def test_the_bundled_text_is_the_sonnets_without_its_header_and_in_the_vocabulary():
    text = read_text("sonnets")
    assert text.startswith("1\n\nFrom fairest creatures we desire increase,\n")
    assert "Shall I compare thee to a summer's day?" in text and "#" not in text
    assert 30_000 < len(text) < 80_000
    assert decode(encode(text)) == text and len(CHARS) == 96 and CHARS[0] == "\n"
    with pytest.raises(ValueError, match="read_text: unknown text 'iliad'; the bundled texts are sonnets"):
        read_text("iliad")
    with pytest.raises(ValueError, match=r"encode: character 'é' at position 2 is not in the vocabulary"):
        encode("caé")


def test_windows_pair_each_character_with_the_next_and_hold_out_the_tail():
    text = "".join(f"line {i} of the text\n" for i in range(40))
    train, held = text_windows(text, seq_len=10, stride=3, heldout_fraction=0.25)
    assert train.x.shape[1] == held.x.shape[1] == 10 and train.x.dtype == np.int32 and train.y.dtype == np.int64
    for ds in (train, held):
        np.testing.assert_array_equal(ds.x[:, 1:], ds.y[:, :-1])  # the target of step t is the input of t + 1
    ids = encode(text)
    np.testing.assert_array_equal(train.x[1], ids[3:13])  # a window every `stride` characters
    np.testing.assert_array_equal(train.y[1], ids[4:14])
    split = text.index("line 31")  # 3/4 of the text falls inside line 30: the cut moves on to the next line start
    assert decode(held.x[0]) == "line 31 of"
    np.testing.assert_array_equal(held.x[1], ids[split + 10:split + 20])  # held-out windows do not overlap
    assert (train.x.shape[0] - 1) * 3 + 11 <= split  # no training window reaches into the held-out text
    with pytest.raises(ValueError, match="shorter than one window"):
        text_windows("short\ntext", seq_len=32)
    with pytest.raises(ValueError, match="seq_len must be a positive integer"):
        text_windows(text, seq_len=0)


def test_load_text_gives_the_recipes_windows():
    train, held = load_text(seq_len=64, stride=16)
    assert train.x.shape == (len(train), 64) and len(held) * 64 >= 0.08 * len(read_text())
    assert train.name == "sonnets-train" and held.name == "sonnets-heldout"


# ------------------------------------------------------------------------------------------------
# The loss, training and evaluation
# ------------------------------------------------------------------------------------------------


def test_sequence_cross_entropy_is_the_mean_over_every_character_and_counts_them():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 5)).astype(np.float32)  # N = 2 windows of T = 3 steps, 5 classes
    labels = rng.integers(0, 5, (2, 3))
    seq = SequenceCrossEntropy()
    value = seq.forward(logits, labels)
    assert value == pytest.approx(L.SoftmaxCrossEntropy().forward(logits, labels.reshape(-1)), rel=1e-6)
    assert seq.last_labels is None  # fit's per-sample count would divide characters by windows
    seq.forward(logits, labels)
    correct = (logits.argmax(axis=1) == labels.reshape(-1)).sum()
    assert seq.take_accuracy() == pytest.approx(2 * correct / 12)
    assert seq.take_accuracy() == 0.0  # counting starts again


@pytest.mark.slow  # a short training run
def test_a_tiny_model_learns_and_reports_bits_per_character():
    train, held = text_windows(read_text()[:3000], seq_len=16, stride=4)
    model = tiny_model()
    loss_layer = SequenceCrossEntropy()
    opt = O.Adam(model.parameters(), 1e-2)
    history = fit(model, loss_layer, opt, train, epochs=4, batch_size=16,
                  callbacks=[HeldOutBitsPerChar(model, loss_layer, held)])
    losses = [h["loss"] for h in history]
    assert losses[-1] < 0.75 * losses[0], losses
    last = history[-1]
    assert last["bits_per_char"] == pytest.approx(last["test_loss"] / math.log(2))
    assert last["bits_per_char"] < math.log2(96) and 0 < last["train_accuracy"] < 1 and 0 < last["test_accuracy"] < 1
    again = evaluate_text(model, held)
    assert again["bits_per_char"] == pytest.approx(last["bits_per_char"], rel=1e-5)


# ------------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sample_writes_the_requested_length_from_a_saved_checkpoint(cell, tmp_path):
    save(tmp_path / "lm.npz", tiny_model(cell, seed=4))
    model, _ = load(tmp_path / "lm.npz")
    text = sample(model, 50, temperature=0.8, prime="Shall I", seed=1)
    assert len(text) == 50 and set(text) <= set(CHARS)
    assert sample(model, 50, temperature=0.8, prime="Shall I", seed=1) == text  # same seed, same text
    assert sample(model, 50, temperature=0.8, prime="Shall I", seed=2) != text
    assert sample(model, 0) == "" and len(sample(model, 5, prime="")) == 5
    assert model.training  # sample restores the mode


def test_sample_carries_the_state_like_one_long_forward():
    # greedy-ish (a very low temperature) sampling: each step's logits must equal those of a forward over the
    # whole text so far, so carrying h and c through forward(x, h0, c0) loses nothing
    model = tiny_model(seed=5)
    text = sample(model, 12, temperature=1e-4, prime="When I")
    full = "When I" + text
    logits = np.array(model.forward(encode(full)[None, :]))  # (T, V): one row per step
    np.testing.assert_array_equal(logits[5:-1].argmax(axis=1), encode(text)[:])


def test_sample_errors_say_what_is_wrong():
    model = tiny_model()
    with pytest.raises(ValueError, match="sample: temperature must be a positive number, got 0"):
        sample(model, 5, temperature=0)
    with pytest.raises(ValueError, match="sample: the prime's character 'é' at position 1 is not in the vocabulary"):
        sample(model, 5, prime="né")
    with pytest.raises(ValueError, match="sample: length must be a non-negative integer"):
        sample(model, -1)
    with pytest.raises(ValueError, match=r"not a character language model .*: it is Sequential\(Dense 64->256"):
        char_lm_parts(mlp(Device("cpu")))
    other = Sequential(L.Embedding(50, 8), L.LSTM(8, 4), L.FlattenTime(), L.Dense(4, 50))  # another vocabulary
    with pytest.raises(ValueError, match="not a character language model"):
        sample(other, 5)


@pytest.mark.gpu
def test_sample_on_the_gpu():
    cpu_model = tiny_model(seed=6)
    gpu_model = char_lm(Device("cuda"), embedding_dim=8, hidden=24, seed=6)
    text = sample(gpu_model, 4, prime="O")
    assert len(text) == 4 and set(text) <= set(CHARS)
    np.testing.assert_allclose(Device("cuda").to_numpy(gpu_model.forward(encode("O, how")[None])),
                               np.array(cpu_model.forward(encode("O, how")[None])), rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_training_on_the_gpu_matches_the_cpu():
    # fit stages each batch of ids on the GPU as float32; the Embedding checks them on the host
    train, held = text_windows(read_text()[:400], seq_len=4, stride=4)
    results = []
    for device in ("cpu", "cuda"):
        model = char_lm(Device(device), embedding_dim=4, hidden=8, seed=1)
        loss_layer = SequenceCrossEntropy()
        history = fit(model, loss_layer, O.Adam(model.parameters(), 1e-2), train.head(8), epochs=1, batch_size=4,
                      callbacks=[HeldOutBitsPerChar(model, loss_layer, held.head(2))])
        results.append([history[-1][key] for key in ("loss", "bits_per_char", "train_accuracy")])
    np.testing.assert_allclose(results[1], results[0], rtol=1e-4)


def test_profile_covers_the_char_lm_and_the_recurrent_classifiers():
    from engine.profiler import profile_step, random_batch
    from engine.recipes import build_model, build_optimizer

    for name in ("charlm", "lstm", "gru"):
        x, y = random_batch(name, 2)
        model = build_model(name, Device("cpu"), x)
        rows = profile_step(model, L.SoftmaxCrossEntropy(), build_optimizer("adam", model.parameters(), None, name),
                            x, y, steps=1, warmup=0)
        assert rows[-1]["part"] == "total (synchronized)" and rows[-1]["median_ms"] > 0


# ------------------------------------------------------------------------------------------------
# The command line
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow  # a short training run
def test_cli_trains_a_charlm_reports_bits_per_char_and_samples_from_it(tmp_path):
    ckpt, js = tmp_path / "lm.npz", tmp_path / "lm.json"
    result = cli("train", "--model", "charlm", "--epochs", "1", "--limit", "16", "--checkpoint", str(ckpt),
                 "--json", str(js), "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(js.read_text())
    assert summary["model"] == "charlm" and summary["dataset"] == "sonnets"
    assert 0 < summary["bits_per_char"] < 8 and "bits per character held out" in result.stdout
    out = cli("sample", "--checkpoint", str(ckpt), "--length", "40", "--prime", "Shall I", "--seed", "3",
              "--device", "cpu")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("Shall I") and len(out.stdout) == len("Shall I") + 40 + 1  # and the newline


def test_cli_sample_refuses_a_classifier_and_bad_options_in_one_line(tmp_path):
    save(tmp_path / "mlp.npz", mlp(Device("cpu")))
    for args, message in (
            (("--checkpoint", str(tmp_path / "mlp.npz")), "not a character language model"),
            (("--checkpoint", str(tmp_path / "none.npz")), "no such file"),
            (("--checkpoint", str(tmp_path / "mlp.npz"), "--temperature", "0"), "--temperature must be positive")):
        result = cli("sample", *args, "--device", "cpu")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    wrong = cli("train", "--model", "mlp", "--dataset", "sonnets")
    assert wrong.returncode == 1 and "only --model charlm trains on it" in wrong.stderr
