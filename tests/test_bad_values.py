"""Every bad value is one line naming the flag or the argument, caught before any work starts: NaN and inf
wherever a number is read, optimizer hyper-parameters in PyTorch's ranges, NaN inputs to predict, bounds on
lengths and steps, errors named by the layer or command called (never the kernel underneath)."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from support import in_process, one_line

import layers as L
import optim as O
from engine import Sequential, save
from engine.checkpoint import CheckpointError, read
from engine.models import mlp
from runtime.device import Device

ROOT = Path(__file__).resolve().parent.parent


def params():
    return Sequential(L.Dense(3, 2)).parameters()


@pytest.mark.parametrize("make, message", [
    (lambda: O.SGD(params(), lr=float("nan")), "SGD: lr must be a finite number, got nan"),
    (lambda: O.SGD(params(), lr=float("inf")), "SGD: lr must be a finite number, got inf"),
    (lambda: O.SGD(params(), lr=-0.1), "SGD: lr must be >= 0, got -0.1"),
    (lambda: O.SGD(params(), lr=0.1, momentum=-1), "SGD: momentum must be >= 0, got -1"),
    (lambda: O.SGD(params(), lr=0.1, weight_decay=-0.5), "SGD: weight_decay must be >= 0, got -0.5"),
    (lambda: O.Adam(params(), betas=(1.5, 0.9)), "Adam: betas[0] must be in [0, 1), got 1.5"),
    (lambda: O.Adam(params(), betas=(0.9, 1.0)), "Adam: betas[1] must be in [0, 1), got 1.0"),
    (lambda: O.Adam(params(), betas=(-0.1, 0.9)), "Adam: betas[0] must be in [0, 1), got -0.1"),
    (lambda: O.Adam(params(), betas=0.9), "Adam: betas must be a pair (beta1, beta2), got 0.9"),
    (lambda: O.Adam(params(), eps=-1e-8), "Adam: eps must be >= 0, got -1e-08"),
    (lambda: O.AdamW(params(), weight_decay=float("nan")), "AdamW: weight_decay must be a finite number, got nan"),
    (lambda: O.RMSprop(params(), alpha=-0.9), "RMSprop: alpha must be >= 0, got -0.9"),
    (lambda: O.Adagrad(params(), lr_decay=-1.0), "Adagrad: lr_decay must be >= 0, got -1.0"),
])
def test_optimizer_hyperparameters_are_checked_as_pytorch_does(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize("make, message", [
    (lambda: O.cosine_lr(float("nan"), 10), "cosine_lr: base_lr must be a finite number >= 0, got nan"),
    (lambda: O.cosine_lr(0.1, 0), "cosine_lr: total_steps must be a positive integer, got 0"),
    (lambda: O.step_lr(0.1, 0), "step_lr: step_size must be a positive integer, got 0"),
    (lambda: O.step_lr(0.1, 2, gamma=float("inf")), "step_lr: gamma must be a finite number >= 0, got inf"),
])
def test_schedules_name_a_bad_argument_when_made_not_mid_epoch(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


def test_a_zero_learning_rate_is_allowed_as_in_pytorch():
    assert O.SGD(params(), lr=0.0).base_lr == 0.0


@pytest.mark.parametrize("layer, x", [
    (lambda: L.Dense(4, 3), np.zeros((2, 4))),
    (lambda: L.Conv2D(1, 2, 3), np.zeros((1, 1, 5, 5))),
    (lambda: L.LSTM(3, 4), np.zeros((2, 5, 3))),
])
def test_a_float64_input_is_named_by_the_layer_not_the_kernel(layer, x):
    made = layer()
    with pytest.raises(TypeError) as info:
        made.forward(x)
    name = type(made).__name__
    assert str(info.value) == (f"{name}.forward: expected float32 input, got float64 (convert it with "
                               f"x.astype(np.float32))")


# --- the commands: one line naming the flag, before any work --------------------------------------------------

@pytest.fixture
def no_work(monkeypatch):
    import engine.profiler
    import engine.recipes
    import engine.training

    def refuse(*args, **kwargs):
        raise AssertionError("the work started")

    for module, name in ((engine.training, "fit"), (engine.recipes, "load_data"),
                         (engine.profiler, "profile_step")):
        monkeypatch.setattr(module, name, refuse)


@pytest.mark.parametrize("args, message", [
    (("--lr", "nan"), "--lr must be a finite number (>= 0), got nan"),
    (("--lr", "inf"), "--lr must be a finite number (>= 0), got inf"),
    (("--lr", "-1"), "--lr must be >= 0, got -1"),
    (("--seed", "-1"), "--seed must be >= 0, got -1"),
    (("--bucket-mb", "nan"), "--bucket-mb must be a finite number (positive), got nan"),
    (("--epochs", "0"), "--epochs must be positive, got 0"),
    (("--batch-size", "-3"), "--batch-size must be positive, got -3"),
])
def test_train_numbers(capsys, no_work, args, message):
    assert one_line(*in_process(capsys, "train", "--model", "mlp", *args)[::2]) == f"error: {message}"


@pytest.mark.parametrize("args, message", [
    (("--steps", "0"), "--steps must be positive, got 0"),
    (("--batch-size", "0"), "--batch-size must be positive, got 0"),
])
def test_profile_sizes_are_named_by_the_flag(capsys, no_work, args, message):
    assert one_line(*in_process(capsys, "profile", "--model", "mlp", *args)[::2]) == f"error: {message}"


@pytest.fixture(scope="module")
def charlm_file(tmp_path_factory):
    from engine.models import char_lm

    path = tmp_path_factory.mktemp("charlm") / "lm.npz"
    save(path, char_lm(Device("cpu"), embedding_dim=4, hidden=8))
    return path


@pytest.mark.parametrize("args, message", [
    (("--seed", "-1"), "--seed must be >= 0, got -1"),
    (("--length", str(10 ** 11)), "--length must be >= 0 and <= 100000, got 100000000000"),
    (("--length", "-1"), "--length must be >= 0 and <= 100000, got -1"),
    (("--temperature", "nan"), "--temperature must be a finite number (positive), got nan"),
    (("--temperature", "inf"), "--temperature must be a finite number (positive), got inf"),
    (("--temperature", "0"), "--temperature must be positive, got 0"),
])
def test_sample_bounds(capsys, charlm_file, args, message):
    assert one_line(*in_process(capsys, "sample", "--checkpoint", charlm_file, *args)[::2]) == f"error: {message}"


def test_sample_api_names_a_negative_seed(charlm_file):
    from engine import load
    from engine.charlm import sample

    model, _ = load(charlm_file)
    with pytest.raises(ValueError, match=r"^sample: seed must be a non-negative integer, got -1$"):
        sample(model, 5, seed=-1)


@pytest.fixture(scope="module")
def mlp_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mlp") / "mlp.npz"
    save(path, mlp(Device("cpu"), in_features=64))
    return path


def test_predict_refuses_nan_and_inf_inputs_unless_allowed(capsys, mlp_file, tmp_path):
    x = np.full((5, 64), 0.5, np.float32)
    x[1, 3], x[3, 0], x[3, 1] = np.nan, np.inf, np.nan
    np.save(tmp_path / "x.npy", x)
    line = one_line(*in_process(capsys, "predict", "--checkpoint", mlp_file, "--input", tmp_path / "x.npy",
                                "--device", "cpu")[::2])
    assert line == (f"error: --input {tmp_path / 'x.npy'}: 2 NaN and 1 inf values in 2 of 5 samples (the first: "
                    f"sample 1); pass --allow-nonfinite to predict on them anyway")
    code, out, err = in_process(capsys, "predict", "--checkpoint", mlp_file, "--input", tmp_path / "x.npy",
                                "--allow-nonfinite", "--device", "cpu")
    assert code == 0 and "5 samples, predicted classes" in out, err


def test_an_unreadable_checkpoint_is_one_line(monkeypatch, mlp_file):
    import engine.checkpoint

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(engine.checkpoint, "open", denied, raising=False)  # root reads any file: simulate it
    with pytest.raises(CheckpointError) as info:
        read(mlp_file)
    assert str(info.value) == f"{mlp_file}: cannot be read (permission denied)"


def test_the_install_hint_fits_how_tilegrad_was_installed(tmp_path):
    from hardware.cuda_probe import install_hint

    assert install_hint() == "pip install -e '.[cuda]'"  # this source checkout
    wheel = tmp_path / "site-packages" / "hardware"  # an installed wheel: no pyproject.toml beside the packages
    wheel.mkdir(parents=True)
    shutil.copy(ROOT / "hardware" / "cuda_probe.py", wheel / "cuda_probe.py")
    spec = importlib.util.spec_from_file_location("installed_cuda_probe", wheel / "cuda_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.install_hint() == "pip install 'tilegrad[cuda]'"
