"""``edgekit models inspect`` and ``compile``: reports, Edge TPU mappability, compiler wrapper."""

from __future__ import annotations

import json
import os
import stat

import pytest

from edgekit.models import edgetpu_compat as etc
from edgekit.models import edgetpu_compiler as etcc
from edgekit.errors import EdgeTPUCompilerError
from edgekit.models.tflite import Graph, OperatorInfo, TensorInfo, read_graph_file
from edgekit.models.inspection import inspect_file, output_kind, text_report

from test_zoo import cache, cli  # noqa: F401  (the fixture and the in-process CLI)

MOBILENETS = ("mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant", "mobilenet_v2_1.0_224_quant")


def report(models_dir, name: str) -> dict:
    return inspect_file(models_dir / f"{name}.tflite")


# --- mappability verdicts on the real models -------------------------------------------------


def test_yamnet_with_its_float_front_end_is_not_fully_mappable(models_dir):
    e = report(models_dir, "yamnet")["edgetpu"]
    assert e["compiled"] is False and e["fully_mappable"] is False
    assert e["verdict"] != "fully mappable"
    # the compiler stops at the very first op (float), so nothing after it is mapped either
    assert e["cut_at"] == 0 and e["mapped_ops"] == 0 and e["cpu_ops"] == 47
    why = {v["op"]: " ".join(v["reasons"]) for v in e["unsupported"]}
    for op in ("RFFT2D", "COMPLEX_ABS", "LOG", "GATHER"):
        assert "not supported by the Edge TPU" in why[op], op
    assert "float32" in why["FULLY_CONNECTED"] and "not supported" not in why["FULLY_CONNECTED"]
    assert "complex64" in why["RFFT2D"]
    # its int8 body, from the QUANTIZE on, is what yamnet_spectra_in is
    assert e["mappable_from"] == 13
    assert read_graph_file(models_dir / "yamnet.tflite")[0].operators[13].opcode == "QUANTIZE"


def test_yamnet_spectra_in_is_fully_mappable_between_its_boundaries(models_dir):
    e = report(models_dir, "yamnet_spectra_in")["edgetpu"]
    assert e["fully_mappable"] is True and e["verdict"] == "fully mappable"
    assert e["cut_at"] is None and e["unsupported"] == []
    assert e["mapped_ops"] == 32 and e["mapped_range"] == [1, 32]
    assert [(v["op"], v["boundary"]) for v in e["boundary"]] == [("QUANTIZE", "input"), ("DEQUANTIZE", "output")]


@pytest.mark.parametrize("name", MOBILENETS)
def test_quantised_mobilenets_are_fully_mappable(models_dir, name):
    graph, _ = read_graph_file(models_dir / f"{name}.tflite")
    e = report(models_dir, name)["edgetpu"]
    assert e["fully_mappable"] is True and e["mapped_ops"] == len(graph.operators)
    assert e["boundary"] == [] and e["cpu_ops"] == 0


def test_the_compiled_twin_agrees_with_the_prediction(models_dir):
    """The real _edgetpu file is QUANTIZE -> edgetpu-custom-op -> DEQUANTIZE, as predicted."""
    e = report(models_dir, "yamnet_spectra_in_edgetpu")["edgetpu"]
    predicted = report(models_dir, "yamnet_spectra_in")["edgetpu"]
    assert e["compiled"] is True and e["verdict"] == "compiled for the Edge TPU"
    assert e["custom_ops"] == [1]
    assert [(v["index"], v["op"], v["boundary"]) for v in e["cpu_ops"]] == [
        (0, "QUANTIZE", "input"), (2, "DEQUANTIZE", "output")]
    assert [v["op"] for v in e["cpu_ops"]] == [v["op"] for v in predicted["boundary"]]
    assert e["cpu_twin"] == str(models_dir / "yamnet_spectra_in.tflite")
    assert e["ops_inside_custom_op"] == predicted["mapped_ops"] == e["twin_prediction"] == 32


@pytest.mark.parametrize("name", MOBILENETS[:2])
def test_compiled_mobilenets_run_wholly_on_the_edgetpu(models_dir, name):
    e = report(models_dir, f"{name}_edgetpu")["edgetpu"]
    assert e["custom_ops"] == [0] and e["cpu_ops"] == []
    assert e["ops_inside_custom_op"] == 31 == e["twin_prediction"]


def test_compiled_model_without_its_twin_says_where_to_look(models_dir, tmp_path, cache):  # noqa: F811
    lone = tmp_path / "lone" / "yamnet_spectra_in_edgetpu.tflite"
    lone.parent.mkdir()
    lone.write_bytes((models_dir / "yamnet_spectra_in_edgetpu.tflite").read_bytes())
    r = inspect_file(lone)
    assert r["edgetpu"]["ops_inside_custom_op"] is None and r["cost"]["macs"] is None
    text = "\n".join(text_report(r))
    assert "inspect the CPU model it was compiled from" in text


# --- the rules on made-up graphs -------------------------------------------------------------


def _t(i, shape, dtype="int8", const=0, q=True):
    return TensorInfo(i, f"t{i}", tuple(shape), dtype, (0.1,) if q else (), (0,) if q else (), 0, const)


def _graph(tensors, ops, inputs=(0,), outputs=None):
    return Graph(3, "", tuple(tensors),
                 tuple(OperatorInfo(k, name, name.islower(), tuple(i), tuple(o))
                       for k, (name, i, o) in enumerate(ops)),
                 tuple(inputs), tuple(outputs if outputs is not None else (len(tensors) - 1,)),
                 1, (), (), 0)


def test_the_first_unsupported_op_cuts_the_graph():
    g = _graph([_t(0, (1, 8, 8, 4)), _t(1, (1, 8, 8, 4)), _t(2, (1, 8, 8, 4)), _t(3, (1, 8, 8, 4))],
               [("RELU", (0,), (1,)), ("ELU", (1,), (2,)), ("RELU", (2,), (3,))])
    c = etc.check_graph(g)
    assert c.verdict == "partially mappable" and not c.fully_mappable
    assert c.cut == 1 and c.mapped == (0,)
    assert c.cpu_ops == (1, 2)  # the supported RELU after the cut stays on the CPU too
    assert [v.op for v in c.unsupported] == ["ELU"]


@pytest.mark.parametrize("tensor,op,why", [
    (_t(0, (1, 16_001)), "SOFTMAX", "at most 16,000"),
    (_t(0, (1, 4, 250)), "SOFTMAX", "not 1-D"),
    (_t(0, (2, 3, 8, 8, 4)), "RELU", "more than 3 dimensions"),
    (_t(0, (1, -1, 4)), "RELU", "dynamic"),
    (_t(0, (1, 16), "float32", q=False), "RELU", "float32"),
    (_t(0, (1, 16), "int8", q=False), "RELU", "without quantisation"),
    (_t(0, (1, 16)), "my-custom-op", "custom op"),
])
def test_op_rules(tensor, op, why):
    out = TensorInfo(1, "out", tensor.shape, tensor.dtype, tensor.scales, tensor.zero_points)
    v = etc.check_graph(_graph([tensor, out], [(op, (0,), (1,))])).ops[0]
    assert not v.ok and any(why in r for r in v.reasons), v.reasons


def test_float_weights_and_int32_biases():
    x, w, b, y = _t(0, (1, 16)), _t(1, (8, 16), "float32", 512, q=False), _t(2, (8,), "int32", 32), _t(3, (1, 8))
    v = etc.check_graph(_graph([x, w, b, y], [("FULLY_CONNECTED", (0, 1, 2), (3,))])).ops[0]
    assert v.reasons == ("float32 constant 't1' (weights must be 8-bit)",)
    w8 = _t(1, (8, 16), "int8", 128)
    assert etc.check_graph(_graph([x, w8, b, y], [("FULLY_CONNECTED", (0, 1, 2), (3,))])).fully_mappable


def test_every_table_entry_is_a_tflite_builtin():
    import tflite

    names = {n for n in dir(tflite.BuiltinOperator) if n.isupper()}
    assert set(etc.SUPPORTED) <= names


# --- output ----------------------------------------------------------------------------------


def test_json_output_keys(models_dir, capsys):
    from edgekit.models.macs import count_file

    assert cli("inspect", str(models_dir / "mobilenet_v1_0.25_128_quant.tflite"), "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert {"model", "file_size", "tflite_schema_version", "min_runtime_version", "description",
            "inputs", "outputs", "operators", "op_histogram", "custom_ops", "cost", "metadata",
            "associated_files", "labels", "edgetpu", "input_kind"} <= set(r)
    assert r["inputs"] == [{"name": "input", "shape": [1, 128, 128, 3], "dtype": "uint8",
                            "quantization": {"scale": [0.0078125], "zero_point": [128]}}]
    assert r["file_size"] == 525598 and r["tflite_schema_version"] == 3
    assert r["op_histogram"]["CONV_2D"] == 15 and r["input_kind"] == "image"
    assert r["labels"]["source"] == "embedded" and r["labels"]["count"] == 1001
    assert r["labels"]["first"][:2] == ["background", "tench, Tinca tinca"]
    cost = count_file(models_dir / "mobilenet_v1_0.25_128_quant.tflite").total
    assert (r["cost"]["macs"], r["cost"]["params"]) == (cost.macs, cost.params)  # the macs module's numbers
    assert 13e6 < r["cost"]["macs"] < 16e6  # published: about 14 M
    assert {"compiled", "verdict", "fully_mappable", "mapped_ops", "cpu_ops", "cut_at",
            "unsupported", "boundary", "mappable_from"} <= set(r["edgetpu"])


def test_text_output_is_readable(models_dir, capsys):
    assert cli("inspect", str(models_dir / "yamnet.tflite")) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].endswith("yamnet.tflite")
    assert max(len(line) for line in lines) <= 100
    for text in ("4,126,810 bytes", "waveform_binary  15600 float32  not quantised",
                 "MACs: ", "params: ", "labels (embedded): 521: Speech | Child speech, kid speaking",
                 "Edge TPU: not mappable (0 of 47 ops on the Edge TPU)", "op 7 RFFT2D: operation not supported",
                 "the compiler would stop at op 0", "from op 13 on the graph is mappable"):
        assert text in out, text

    assert cli("inspect", str(models_dir / "yamnet_spectra_in_edgetpu.tflite")) == 0
    out = capsys.readouterr().out
    assert "Edge TPU: compiled for the Edge TPU" in out
    assert "1 edgetpu-custom-op (op 1) holds the subgraph the compiler mapped" in out
    assert "The custom op stands for 32 ops of the CPU model" in out


def test_inspect_takes_a_zoo_name(cache, models_dir, capsys):  # noqa: F811
    assert cli("pull", "yamnet_spectra_in", "--from", str(models_dir / "yamnet_spectra_in.tflite"), "-q") == 0
    capsys.readouterr()
    assert cli("inspect", "yamnet_spectra_in") == 0
    out = capsys.readouterr().out
    assert str(cache / "yamnet_spectra_in.tflite") in out and "Edge TPU: fully mappable" in out
    assert "labels: none embedded, beside the model or in the model directories (pass --labels FILE)" in out
    assert cli("pull", "yamnet_class_map", "--from", str(models_dir / "yamnet_class_map.csv"), "-q") == 0
    capsys.readouterr()
    assert cli("inspect", "yamnet_spectra_in", "--json") == 0
    labels = json.loads(capsys.readouterr().out)["labels"]
    assert labels["source"] == str(cache / "yamnet_class_map.csv") and labels["count"] == 521


@pytest.mark.parametrize("make,expect", [
    (lambda d: b"", "empty"),
    (lambda d: d[: len(d) // 3], "truncated"),
    (lambda d: b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n", "Git LFS pointer"),
    (lambda d: b"<!DOCTYPE html><html></html>" + b" " * 64, "HTML"),
])
def test_bad_files_give_one_line(tmp_path, models_dir, make, expect, capsys):
    path = tmp_path / "bad.tflite"
    path.write_bytes(make((models_dir / "yamnet_spectra_in.tflite").read_bytes()))
    for argv in (("inspect", str(path)), ("inspect", str(path), "--json"), ("compile", str(path))):
        assert cli(*argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("edgekit: error:") and expect in err


def test_missing_model(tmp_path, cache, capsys):  # noqa: F811
    assert cli("inspect", str(tmp_path / "nope.tflite")) == 1
    assert "no such model file" in capsys.readouterr().err


# --- edgetpu_compiler ------------------------------------------------------------------------


def test_compiler_missing_says_how_to_get_it(models_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no edgetpu_compiler anywhere
    model = models_dir / "yamnet_spectra_in.tflite"
    with pytest.raises(EdgeTPUCompilerError, match="not installed"):
        etcc.run_compiler(model, tmp_path)
    assert cli("compile", str(model), "-o", str(tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for text in ("edgetpu-compiler", "coral-edgetpu-stable", "x86_64",
                 f"edgetpu_compiler -s -o {tmp_path / 'out'} {model}"):
        assert text in err, text
    assert not (tmp_path / "out").exists()


def test_compiler_command_line():
    assert etcc.compiler_command("m.tflite", "out") == ["edgetpu_compiler", "-s", "-o", "out", "m.tflite"]


ALL_MAPPED = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 410 ms.

Input model: {model}
Input size: 3.86MiB
Output model: {out}
Output size: 3.95MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 34
Operation log: {log}

Operator                       Count      Status

QUANTIZE                       1          Operation is otherwise supported, but not mapped due to some unspecified limitation
CONV_2D                        14         Mapped to Edge TPU
DEPTHWISE_CONV_2D              13         Mapped to Edge TPU
DEQUANTIZE                     1          Operation is working on an unsupported data type
Compilation child process completed within timeout period.
Compilation succeeded!
"""

PARTIAL = """Edge TPU Compiler version 15.0.340273435
Number of Edge TPU subgraphs: 1
Total number of operations: 165
Model successfully compiled but not all operations are supported by the Edge TPU.
Number of operations that will run on Edge TPU: 117
Number of operations that will run on CPU: 48
"""


def test_parse_log():
    a = etcc.parse_log(ALL_MAPPED.format(model="m.tflite", out="o/m_edgetpu.tflite", log="x.log"))
    assert (a["version"], a["total_ops"], a["mapped_ops"], a["cpu_ops"], a["subgraphs"]) == \
        ("16.0.384591198", 34, 27, 2, 1)
    assert a["output"] == "o/m_edgetpu.tflite"
    b = etcc.parse_log(PARTIAL)
    assert (b["mapped_ops"], b["cpu_ops"], b["total_ops"]) == (117, 48, 165)
    c = etcc.parse_log("Edge TPU Compiler version 16.0\nTotal number of operations: 31\n")
    assert (c["mapped_ops"], c["cpu_ops"]) == (31, 0)


def _fake_compiler(bin_dir, body: str):
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_compile_runs_the_compiler_and_reads_its_log(models_dir, tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = ALL_MAPPED.format(model="$4", out="$3/yamnet_spectra_in_edgetpu.tflite", log="x.log")
    _fake_compiler(bin_dir, f'echo "$@" > "{tmp_path}/argv"\n'
                            'cp "$4" "$3/yamnet_spectra_in_edgetpu.tflite"\n'
                            f"cat <<EOF\n{log}EOF\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    model = models_dir / "yamnet_spectra_in.tflite"
    assert cli("compile", str(model), "-o", str(out)) == 0
    text = capsys.readouterr().out
    assert (tmp_path / "argv").read_text().split() == ["-s", "-o", str(out), str(model)]
    assert f"compiled with edgetpu_compiler 16.0.384591198: {out / 'yamnet_spectra_in_edgetpu.tflite'}" in text
    assert "27 of 34 ops mapped to the Edge TPU, 2 on the CPU" in text


def test_compile_failure_and_compiled_input(models_dir, tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_compiler(bin_dir, 'echo "Edge TPU Compiler version 16.0"\necho "ERROR: Model not quantized" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert cli("compile", str(models_dir / "yamnet.tflite"), "-o", str(tmp_path / "o")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exit 1" in err and "Model not quantized" in err
    assert cli("compile", str(models_dir / "yamnet_spectra_in_edgetpu.tflite")) == 1
    assert "already compiled for the Edge TPU" in capsys.readouterr().err


# --- model names and labels, the same in every command -----------------------------------------


def test_every_command_resolves_a_name_with_or_without_tflite(cache, models_dir, capsys):  # noqa: F811
    from edgekit.cli import main

    for name in ("yamnet_spectra_in", "yamnet_spectra_in.tflite"):
        assert cli("pull", "yamnet_spectra_in", "--from", str(models_dir / "yamnet_spectra_in.tflite"), "-q") == 0
        for argv in (["macs", name], ["models", "inspect", name], ["models", "inspect", name, "--json"],
                     ["bench", name, "--runs", "1", "--warmup", "0", "-q", "--json", "-"]):
            capsys.readouterr()
            assert main(argv) == 0, (argv, capsys.readouterr().err)
            assert str(cache / "yamnet_spectra_in.tflite") in capsys.readouterr().out, argv


def test_not_found_says_where_it_looked(cache, tmp_path, monkeypatch, capsys):  # noqa: F811
    from edgekit.cli import main

    monkeypatch.chdir(tmp_path)
    for argv in (["macs"], ["models", "inspect"], ["classify", "x.wav", "--model"]):
        assert main([*argv, "yamnet.tflite"]) == 1
        err = capsys.readouterr().err
        assert f"looked in the current folder ({tmp_path}), {cache}" in err
        assert "edgekit models pull yamnet" in err
        assert main([*argv, "my_own"]) == 1
        err = capsys.readouterr().err
        assert f"model 'my_own' not found; looked in {cache}" in err and "not a zoo model" in err
        assert main([*argv, "sub/m.tflite"]) == 1
        assert f"no such model file (looked for {tmp_path / 'sub/m.tflite'})" in capsys.readouterr().err


@pytest.fixture
def renamed_yamnet(models_dir, tmp_path):
    """yamnet_spectra_in under a name that finds no class map beside it: no metadata, 521 outputs."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    (d / "my_model.tflite").write_bytes((models_dir / "yamnet_spectra_in.tflite").read_bytes())
    return d / "my_model.tflite"


def test_a_yamnet_shaped_model_uses_the_class_map_in_the_model_directory(cache, models_dir, renamed_yamnet,  # noqa: F811
                                                                         capsys):
    from edgekit.cli import main

    assert cli("inspect", str(renamed_yamnet), "--json") == 0
    assert json.loads(capsys.readouterr().out)["labels"] is None
    assert main(["macs", str(renamed_yamnet)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == \
        "outputs: 521 classes (probability); no labels found: pass --labels FILE"
    assert cli("pull", "yamnet_class_map", "--from", str(models_dir / "yamnet_class_map.csv"), "-q") == 0
    capsys.readouterr()
    assert cli("inspect", str(renamed_yamnet), "--json") == 0
    labels = json.loads(capsys.readouterr().out)["labels"]
    assert labels == {"source": str(cache / "yamnet_class_map.csv"), "count": 521,
                      "first": ["Speech", "Child speech, kid speaking", "Conversation", "Narration, monologue",
                                "Babbling"]}
    assert main(["macs", str(renamed_yamnet)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == \
        f"outputs: 521 classes (probability); labels from {cache / 'yamnet_class_map.csv'}"
    # what classify and run load is the same
    from edgekit.models.model import load_model

    assert load_model(renamed_yamnet).labels[0] == "Speech"


def test_labels_option_is_the_same_in_inspect_bench_and_macs(cache, models_dir, renamed_yamnet, tmp_path,  # noqa: F811
                                                             capsys):
    from edgekit.cli import main

    mine = tmp_path / "mine.txt"
    mine.write_text("".join(f"sound {i}\n" for i in range(521)))
    assert cli("inspect", str(renamed_yamnet), "--labels", str(mine)) == 0
    assert "521: sound 0 | sound 1 |" in " ".join(capsys.readouterr().out.split())
    assert cli("inspect", str(renamed_yamnet), "--labels", str(mine), "--json") == 0
    assert json.loads(capsys.readouterr().out)["labels"]["source"] == str(mine)
    assert main(["macs", str(renamed_yamnet), "--labels", str(mine), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == {
        "count": 521, "output_kind": "probability", "labels": str(mine), "first": [f"sound {i}" for i in range(5)]}
    assert main(["bench", str(renamed_yamnet), "--labels", str(mine), "--runs", "1", "--warmup", "0", "-q",
                 "--json", "-", "--data", str(models_dir.parent)]) == 0
    top = json.loads(capsys.readouterr().out)["results"][0]["top1"]
    assert top["label"] == f"sound {top['index']}" and top["output"] == "probability"
    # A file that does not fit the model is an error, in each command alike.
    wrong = models_dir / "imagenet_labels.txt"
    for argv in (["models", "inspect"], ["macs"]):
        assert main([*argv, str(renamed_yamnet), "--labels", str(wrong)]) == 1
        assert "1001 labels for a model with 521 outputs" in capsys.readouterr().err
    assert main(["bench", str(renamed_yamnet), "--labels", str(wrong), "--runs", "1", "-q", "--json", "-"]) == 1
    assert "1001 labels for a model with 521 outputs" in capsys.readouterr().out


def _chain(*ops: tuple[str, bool]) -> Graph:
    """A chain of ops, each reading the previous one's output."""
    tensors = tuple(TensorInfo(i, f"t{i}", (1, 4), "float32") for i in range(len(ops) + 1))
    operators = tuple(OperatorInfo(i, op, custom, (i,), (i + 1,)) for i, (op, custom) in enumerate(ops))
    return Graph(3, "", tensors, operators, (0,), (len(ops),), 1, (), (), 0)


@pytest.mark.parametrize("ops,kind", [
    ([("FULLY_CONNECTED", False), ("SOFTMAX", False)], "probability"),
    ([("FULLY_CONNECTED", False), ("LOGISTIC", False), ("RESHAPE", False), ("DEQUANTIZE", False)], "probability"),
    ([("CONV_2D", False), ("FULLY_CONNECTED", False)], "logit"),
    ([("LOGISTIC", False), ("FULLY_CONNECTED", False), ("DEQUANTIZE", False)], "logit"),
    ([("QUANTIZE", False), ("edgetpu-custom-op", True), ("DEQUANTIZE", False)], "unknown"),
])
def test_output_kind(ops, kind):
    assert output_kind(_chain(*ops)) == kind


def test_bench_sanity_line_never_shows_a_logit_as_a_score():
    from edgekit.bench.report import top1_text

    assert top1_text({"label": "Speech", "score": 0.93, "output": "probability"}) == "Speech 0.93"
    assert top1_text({"label": "Speech", "score": 3.2, "output": "logit"}) == "Speech (logit 3.2, not a score)"
    assert "scale unknown" in top1_text({"label": "Speech", "score": 0.29, "output": "unknown"})


def test_a_compiled_model_s_output_is_read_from_its_cpu_twin(cache, models_dir, tmp_path):  # noqa: F811
    assert inspect_file(models_dir / "yamnet_spectra_in_edgetpu.tflite")["output_kind"] == "probability"
    alone = tmp_path / "yamnet_spectra_in_edgetpu.tflite"
    alone.write_bytes((models_dir / alone.name).read_bytes())
    assert inspect_file(alone)["output_kind"] == "unknown"
