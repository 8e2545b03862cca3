"""MACs and parameters from the graph, against published figures and the analytic cost model.

Published figures (MobileNets paper arXiv:1704.04861, the TF-slim model zoo, the YAMNet README),
and how they count, as measured here:
- MACs include the classifier (FC or its 1×1 conv): YAMNet's 69.2 M is 69,165,056 with the
  1024×521 FC and 68.6 M without; MobileNet 1.0-224's 569 M is 568.7 M with it, 567.7 M without.
  Pooling, residual ADDs, softmax and biases are not MACs in any of them.
- Parameters: the graphs hold weights plus one bias per output channel (batch norm is folded
  into the biases). The zoo's MobileNet v2 3.47 M is the weights alone (3,471,040; with biases
  3,489,097); for the others weights and weights+biases both round to the published figure.
- The zoo's "14" M MACs for 0.25-128 is rounded to a whole million: the graph has 13.57 M,
  3.1 % below. A rounded figure is only known to half a unit of its last digit, so the tolerance
  is 3 % or that half unit, whichever is larger.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from edgekit import cli
from edgekit.models.architectures import mobilenet_v1_table, table_macs, table_params, yamnet_table
from edgekit.models.macs import ModelCost, count_file, count_graph, separable_conv_macs, standard_conv_macs
from edgekit.models.tflite import Graph, OperatorInfo, TensorInfo, read_graph_file

M = 1_000_000


def model(models_dir, name):
    path = models_dir / name
    if not path.exists():
        pytest.skip(f"test data {path} is absent (set EDGEKIT_TEST_DATA to the shared data folder)")
    return path


def close(measured: int, published: float, unit: float) -> bool:
    """Within 3 %, or within half a unit of the published figure's last digit (``unit``)."""
    return abs(measured - published) <= max(0.03 * published, unit / 2)


# name, part, published MACs, its last-digit unit, published params, its unit
PUBLISHED = [
    ("mobilenet_v1_0.25_128_quant.tflite", "body", 14 * M, 1 * M, 0.47 * M, 0.01 * M),
    ("mobilenet_v1_0.5_160_quant.tflite", "body", 77 * M, 1 * M, 1.32 * M, 0.01 * M),
    ("mobilenet_v2_1.0_224_quant.tflite", "body", 300 * M, 1 * M, 3.47 * M, 0.01 * M),
    ("yamnet_spectra_in.tflite", "body", 69.2 * M, 0.1 * M, 3.7 * M, 0.1 * M),
    ("yamnet.tflite", "body", 69.2 * M, 0.1 * M, 3.7 * M, 0.1 * M),
]


@pytest.mark.parametrize("name, part, macs, macs_unit, params, params_unit", PUBLISHED)
def test_graph_counts_match_published_figures(models_dir, name, part, macs, macs_unit, params,
                                              params_unit):
    cost = count_file(model(models_dir, name))
    t = getattr(cost, part)
    assert close(t.macs, macs, macs_unit), f"{t.macs / M:.2f} M MACs vs published {macs / M} M"
    # Both ways of counting parameters agree with the published figure at these tolerances.
    assert close(t.params, params, params_unit), f"{t.params} params vs {params}"
    assert close(t.weights, params, params_unit), f"{t.weights} weights vs {params}"


def test_rounded_zoo_figure_is_the_only_one_outside_plain_3_percent(models_dir):
    cost = count_file(model(models_dir, "mobilenet_v1_0.25_128_quant.tflite"))
    assert cost.body.macs == 13_570_304
    assert round(cost.body.macs / M) == 14  # what the zoo prints


def test_exact_counts_and_parameters_agree_with_the_graph_reader(models_dir):
    expected = {  # MACs, weights, biases
        "mobilenet_v1_0.25_128_quant.tflite": (13_570_304, 463_856, 3_737),
        "mobilenet_v1_0.5_160_quant.tflite": (76_525_312, 1_320_160, 6_473),
        "mobilenet_v2_1.0_224_quant.tflite": (300_775_552, 3_471_040, 18_057),
        "yamnet_spectra_in.tflite": (69_165_056, 3_718_016, 11_465),
    }
    for name, (macs, weights, biases) in expected.items():
        path = model(models_dir, name)
        cost = count_file(path)
        assert (cost.body.macs, cost.body.weights, cost.body.biases) == (macs, weights, biases)
        assert cost.total.params == read_graph_file(path)[0].parameter_count


def test_yamnet_front_end_is_separated_from_the_body(models_dir):
    full = count_file(model(models_dir, "yamnet.tflite"))
    body_only = count_file(model(models_dir, "yamnet_spectra_in.tflite"))
    fe = full.front_end
    # The front end's only MACs are the 257×64 mel matrix applied to 96 frames.
    assert fe.macs == 96 * 257 * 64 and fe.params == 257 * 64 + 64
    assert [r.op for r in full.rows("front end") if r.macs] == ["FULLY_CONNECTED"]
    assert "RFFT2D" in full.uncounted  # an FFT is not a weight MAC; it is named, not hidden
    # The body starts at the QUANTIZE feeding it, so it lines up op for op with the Coral file.
    assert full.body.ops == (13, 46) and body_only.body.ops == (0, 33)
    strip = lambda rows: [replace(r, index=0) for r in rows]  # noqa: E731
    assert strip(full.rows("body")) == strip(body_only.rows("body"))
    assert body_only.front_end is None
    assert full.total.params == read_graph_file(models_dir / "yamnet.tflite")[0].parameter_count


# --- graph vs analytic table -----------------------------------------------------------------


@pytest.mark.parametrize("name, table", [
    ("mobilenet_v1_0.25_128_quant.tflite", lambda: mobilenet_v1_table(0.25, 128)),
    ("mobilenet_v1_0.5_160_quant.tflite", lambda: mobilenet_v1_table(0.5, 160)),
    ("yamnet_spectra_in.tflite", yamnet_table),
])
def test_graph_equals_analytic_table_layer_by_layer(models_dir, name, table):
    graph_rows = [r for r in count_file(model(models_dir, name)).layers if r.macs]
    rows = [r for r in table() if r.macs]
    # Exactly equal: same layers, and the graphs' biases are one per output channel, as modelled.
    # (The zoo graphs end in a 1×1 CONV_2D where the table has an FC: same arithmetic.)
    assert [(r.macs, r.weights, r.biases) for r in graph_rows] == \
           [(r.macs, r.weights, r.biases) for r in rows]
    assert [r.filter_shape for r in graph_rows][:-1] == [r.filter_shape for r in rows][:-1]


def test_analytic_mobilenet_1_0_224_matches_the_paper():
    rows = mobilenet_v1_table(1.0, 224, classes=1000)  # the paper's table has 1000 classes
    assert close(table_macs(rows), 569 * M, 1 * M)
    assert close(table_params(rows, biases=False), 4.2 * M, 0.1 * M)
    assert table_macs(rows) == 568_740_352
    assert table_params(rows, biases=False) == 4_209_088


def test_analytic_tables_follow_the_published_shapes():
    rows = mobilenet_v1_table(1.0, 224)
    convs = [r for r in rows if r.op in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == 27 and convs[0].filter_shape == (3, 3, 3, 32)
    assert convs[-1].input_shape == (1, 7, 7, 1024) and convs[-2].stride == (1, 1)
    y = yamnet_table()
    assert y[0].filter_shape == (3, 3, 1, 32) and y[-1].filter_shape == (1024, 521)
    assert y[-2].filter_shape == (3, 2)  # global average pool over the 3×2 map
    # Channel rounding: slim's max(int(c·α), 8) keeps the first conv at 8 channels for α = 0.125.
    assert mobilenet_v1_table(0.125, 128)[0].filter_shape == (3, 3, 3, 8)


def test_separable_layers_cost_the_formula():
    rows = mobilenet_v1_table(0.5, 160)
    for dw, pw in zip(rows[1:-2:2], rows[2:-2:2]):
        m, n = dw.filter_shape[2], pw.filter_shape[3]
        d_f = dw.output_shape[1:3]
        assert dw.macs + pw.macs == separable_conv_macs(3, m, n, d_f)
        ratio = separable_conv_macs(3, m, n, d_f) / standard_conv_macs(3, m, n, d_f)
        assert ratio == pytest.approx(1 / n + 1 / 9)


def test_ratio_from_the_slides():
    # N = 1024, D_K = 3: 1/1024 + 1/9 = 0.112
    assert separable_conv_macs(3, 512, 1024, 7) / standard_conv_macs(3, 512, 1024, 7) == \
        pytest.approx(0.112, abs=5e-4)


@pytest.mark.parametrize("name, n_pairs", [
    ("yamnet_spectra_in.tflite", 13), ("mobilenet_v2_1.0_224_quant.tflite", 17),
])
def test_measured_dw_pw_ratio_matches_1_over_n_plus_1_over_dk2(models_dir, name, n_pairs):
    cost = count_file(model(models_dir, name))
    assert len(cost.pairs) == n_pairs
    for p in cost.pairs:
        assert p.ratio == pytest.approx(p.analytic_ratio, rel=1e-12)
        assert p.standard_macs == 9 * p.m * p.n * p.out_hw[0] * p.out_hw[1]


# --- ops no published model has: a hand-built graph -------------------------------------------


def _t(i, shape, const=False, dtype="float32"):
    n = 1
    for d in shape:
        n *= d
    return TensorInfo(i, f"t{i}", tuple(shape), dtype, const_bytes=4 * n if const else 0)


def _graph(tensors, ops):
    return Graph(3, "", tuple(tensors), tuple(ops), (0,), (ops[-1].outputs[0],), 1, (), (), 0)


def test_transpose_conv_and_fp16_weights_behind_dequantize():
    tensors = [
        _t(0, (1, 4, 4, 8)),                  # input
        _t(1, (4,), True, "int32"),           # TRANSPOSE_CONV output shape: not a parameter
        _t(2, (16, 3, 3, 8), True),           # weights (out, kh, kw, in)
        _t(3, (1, 8, 8, 16)),                 # output
        _t(4, (10, 1024), True, "float16"),   # fp16 FC weights...
        _t(5, (10, 1024)),                    # ...dequantised at run time
        _t(6, (1, 10)),
    ]
    ops = [
        OperatorInfo(0, "TRANSPOSE_CONV", False, (1, 2, 0), (3,), {"stride": (2, 2)}),
        OperatorInfo(1, "DEQUANTIZE", False, (4,), (5,)),
        OperatorInfo(2, "FULLY_CONNECTED", False, (3, 5, -1), (6,)),
    ]
    cost = count_graph(_graph(tensors, ops))
    tconv, fc = cost.layers
    assert tconv.macs == 4 * 4 * 8 * 3 * 3 * 16 and tconv.params == 16 * 3 * 3 * 8
    assert fc.macs == 1 * 1024 * 10 and fc.weights == 10 * 1024 and fc.biases == 0


# --- Edge TPU -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "yamnet_spectra_in_edgetpu.tflite", "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
])
def test_compiled_body_is_unknown_not_zero(models_dir, name):
    cost = count_file(model(models_dir, name))
    assert isinstance(cost, ModelCost) and cost.compiled
    assert cost.body is None and cost.total is None


def test_partly_compiled_graph_counts_only_what_is_left_on_the_cpu():
    tensors = [_t(0, (1, 8)), _t(1, (1, 1024)), _t(2, (10, 1024), True), _t(3, (10,), True),
               _t(4, (1, 10))]
    ops = [OperatorInfo(0, "edgetpu-custom-op", True, (0,), (1,)),
           OperatorInfo(1, "FULLY_CONNECTED", False, (1, 2, 3), (4,))]
    cost = count_graph(_graph(tensors, ops), "part_edgetpu.tflite")
    assert cost.body is None and cost.layers[0].macs == 10 * 1024
    from edgekit.commands.macs import text_report

    text = "\n".join(text_report(cost))
    assert "cannot be counted" in text and "lower bound" in text


# --- CLI ------------------------------------------------------------------------------------


@pytest.fixture
def macs_cli(monkeypatch):
    # Only the command under test: another command's imports (a runtime, audio) must not be able
    # to break this one, and it does not depend on whether cli.py lists `macs` yet.
    monkeypatch.setattr(cli, "COMMANDS", {"macs": "macs"})
    return cli.main


def test_cli_layers_table(models_dir, macs_cli, capsys):
    assert macs_cli(["macs", str(model(models_dir, "yamnet.tflite")), "--layers"]) == 0
    out = capsys.readouterr().out
    for expected in ("Type / stride", "Conv dw / s2", "3x3x32 dw", "1x1x1024x1024", "96x64x1",
                     "FC", "1024x521", "Pool 3x2", "-- front end --", "-- body --",
                     "69,165,056 (69.2 M)", "3,729,481 (3.73 M)", "RFFT2D",
                     "1/N+1/D_K^2", "0.1121"):
        assert expected in out, expected
    assert max(len(line) for line in out.splitlines()) <= 100


def test_cli_json(models_dir, macs_cli, capsys):
    path = model(models_dir, "mobilenet_v2_1.0_224_quant.tflite")
    assert macs_cli(["macs", str(path), "--json", "--layers"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["body"]["macs"] == 300_775_552 and data["front_end"] is None
    assert data["compiled"] is None and len(data["separable_pairs"]) == 17
    assert data["layers"][0]["type"] == "Conv" and data["layers"][0]["stride"] == [2, 2]


def test_cli_states_that_a_compiled_body_cannot_be_counted(models_dir, macs_cli, capsys):
    path = model(models_dir, "yamnet_spectra_in_edgetpu.tflite")
    assert macs_cli(["macs", str(path), "--layers"]) == 0
    out = capsys.readouterr().out
    assert "compiled for the Edge TPU" in out and "cannot be counted" in out
    assert "yamnet_spectra_in.tflite" in out  # points at the countable CPU model
    assert not any(line.startswith(("body", "total")) for line in out.splitlines())  # no 0 row
    assert macs_cli(["macs", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["body"] is None and data["total"] is None
    assert "cannot be counted" in data["compiled"]["statement"]


def test_cli_errors_are_one_line(tmp_path, macs_cli, capsys):
    assert macs_cli(["macs", str(tmp_path / "missing.tflite")]) == 1
    bad = tmp_path / "page.tflite"
    bad.write_text("<html>not found</html>")
    assert macs_cli(["macs", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("edgekit: error: ") for line in err)
