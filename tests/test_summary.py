"""Model summaries: engine.summary (layers, output shapes, parameter counts) and `cli.py summary`."""

import json

import pytest

import layers as L
from cli import main
from engine import Add, Device, Graph, Sequential, summary
from engine.models import char_lm, lenet, lstm_classifier


def test_rows_shapes_and_total():
    dev = Device("cpu")
    model = lenet(dev)
    result = summary(model)  # LeNet's first layer fixes its input: 1x28x28
    assert result.input_shape == (1, 28, 28)
    assert [row[2] for row in result.rows][:3] == [(1, 6, 28, 28), (1, 6, 28, 28), (1, 6, 14, 14)]
    assert result.rows[-1][2] == (1, 10)
    assert result.total_parameters == sum(p.size for p in model.parameters()) == 61706
    assert [row[3] for row in result.rows][:2] == [6 * 25 + 6, 0]


def test_time_steps_folded_into_rows_and_a_layer_norm():
    dev = Device("cpu")
    lm = char_lm(dev, hidden=16)
    text = str(summary(lm, (64,)))
    assert "(N, 64, 16)" in text and "(N*64, 16)" in text and "(N*64, 96)" in text
    model = Sequential(L.LSTM(8, 12, device=dev), L.LayerNorm(12, device=dev), L.LastTimeStep(),
                       L.Dense(12, 3, device=dev))
    rows = summary(model, (5, 8)).rows
    assert rows[1][1] == "LayerNorm(d=12, eps=1e-05)" and rows[1][2] == (1, 5, 12) and rows[1][3] == 24
    assert all(len(line) <= 100 for line in str(summary(model, (5, 8))).splitlines())


def test_a_graph_reports_each_node():
    dev = Device("cpu")
    graph = Graph(inputs=["x"])
    graph.add("fc1", L.Dense(4, 6, device=dev), "x")
    graph.add("fc2", L.Dense(6, 4, device=dev), "fc1")
    graph.add("sum", Add(), "fc2", "x")
    graph.output("sum")
    result = summary(graph, (4,))
    assert [row[1].split(":")[0] for row in result.rows] == ["fc1", "fc2", "sum"]
    assert [row[2] for row in result.rows] == [(1, 6), (1, 4), (1, 4)] and result.total_parameters == 30 + 28


def test_a_shape_the_model_cannot_take_is_named():
    dev = Device("cpu")
    with pytest.raises(ValueError, match="summary: give input_shape"):
        summary(lstm_classifier(dev))  # any number of time steps: the shape must be given
    with pytest.raises(ValueError, match=r"LSTM.forward"):
        summary(lstm_classifier(dev), (8, 5))


@pytest.mark.parametrize("model", ["mlp", "lenet", "rnn", "lstm", "gru", "charlm"])
def test_cli_summary_fits_100_columns(model, capsys):
    assert main(["summary", "--model", model, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "total:" in out and "parameters" in out
    assert max(len(line) for line in out.splitlines()) <= 100, out


def test_cli_summary_json_and_bad_input_shape(tmp_path, capsys):
    path = tmp_path / "s.json"
    assert main(["summary", "--model", "rnn", "--input-shape", "28,8", "--json", str(path), "--device", "cpu"]) == 0
    data = json.loads(path.read_text())
    assert data["input_shape"] == [28, 8] and data["layers"][0]["output_shape"] == [1, 28, 64]
    assert data["total_parameters"] == sum(layer["parameters"] for layer in data["layers"])
    capsys.readouterr()
    assert main(["summary", "--model", "rnn", "--input-shape", "28,0", "--device", "cpu"]) == 1
    assert "--input-shape expects positive integers" in capsys.readouterr().err


def test_cli_summary_of_a_checkpoint(tmp_path, capsys):
    from engine import save

    model = lstm_classifier(Device("cpu"), hidden=8)
    save(tmp_path / "m.npz", model)
    assert main(["summary", "--checkpoint", str(tmp_path / "m.npz"), "--input-shape", "8,8", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "LSTM(in=8, hidden=8)" in out and f"total: {sum(p.size for p in model.parameters()):,}" in out
