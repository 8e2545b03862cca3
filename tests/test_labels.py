import pytest

from edgekit.errors import LabelsError
from edgekit.models.tflite import read_graph_file
from edgekit.models.labels import embedded_labels, load_labels, parse_labels
from edgekit.models.model import load_model


def test_class_map_csv(models_dir):
    labels = load_labels(models_dir / "yamnet_class_map.csv")
    assert len(labels) == 521
    assert labels[0] == "Speech" and labels[1] == "Child speech, kid speaking"


def test_embedded_labels_equal_the_class_map(models_dir):
    graph, data = read_graph_file(models_dir / "yamnet.tflite")
    assert "yamnet_label_list.txt" in graph.associated_files
    assert embedded_labels(graph, data) == load_labels(models_dir / "yamnet_class_map.csv")


def test_txt_and_numbered_formats(tmp_path):
    assert parse_labels("background\ntench, Tinca tinca\n") == ("background", "tench, Tinca tinca")
    assert parse_labels("0  cat\n1  dog\n3 bird\n") == ("cat", "dog", "class 2", "bird")


def test_model_without_embedded_labels_takes_the_sidecar(models_dir):
    m = load_model(models_dir / "yamnet_spectra_in.tflite")
    assert m.labels[0] == "Speech" and len(m.labels) == 521


def test_wrong_label_count_is_an_error(tmp_path, models_dir):
    bad = tmp_path / "labels.txt"
    bad.write_text("a\nb\nc\n")
    with pytest.raises(LabelsError, match="3 labels for a model with 521 outputs"):
        load_model(models_dir / "yamnet_spectra_in.tflite", labels=bad)


def test_empty_and_missing_label_files(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(LabelsError, match="no labels"):
        load_labels(tmp_path / "empty.txt")
    with pytest.raises(LabelsError, match="no such labels file"):
        load_labels(tmp_path / "missing.txt")
