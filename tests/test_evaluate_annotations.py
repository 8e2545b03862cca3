"""Annotation files: DCASE TSV with or without header, Audacity labels, and every kind of bad row."""

from __future__ import annotations

import pytest

from edgekit.errors import AnnotationError, EdgekitError, EvaluationError
from edgekit.evaluate.annotations import Annotation, match_files, read_annotations
from edgekit.evaluate.runner import parse_map, rule_labels
from edgekit.detect.rules import Rule


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_dcase_tsv_with_and_without_header_read_the_same(tmp_path):
    body = "a.wav\t1.0\t2.5\tdog\nb.wav\t0.5\t1\tsiren\nc.wav\n"
    with_h = read_annotations(write(tmp_path, "h.tsv", "filename\tonset\toffset\tevent_label\n" + body))
    without = read_annotations(write(tmp_path, "n.tsv", body))
    assert with_h == without
    assert with_h.events == (Annotation("a.wav", 1.0, 2.5, "dog"), Annotation("b.wav", 0.5, 1.0, "siren"))
    assert with_h.files == ("a.wav", "b.wav", "c.wav") and with_h.problems == ()


def test_extra_columns_are_ignored(tmp_path):
    a = read_annotations(write(tmp_path, "x.tsv", "filename\tonset\toffset\tevent_label\tsnr_db\na.wav\t1\t2\tdog\t3.5\n"))
    assert a.events == (Annotation("a.wav", 1.0, 2.0, "dog"),)


def test_bad_rows_are_skipped_with_their_line_and_the_rest_kept(tmp_path):
    a = read_annotations(write(tmp_path, "bad.tsv", "\n".join([
        "filename\tonset\toffset\tevent_label",
        "a.wav\t-1\t2\tdog",        # negative
        "a.wav\t5\t4\tdog",         # offset before onset
        "a.wav\tx\t4\tdog",         # not a number
        "a.wav\t1\t2",              # too few columns
        "a.wav\t1\t2\t",            # no label
        "a.wav\t10\t12\tdog",       # fine
    ]) + "\n"))
    assert a.events == (Annotation("a.wav", 10.0, 12.0, "dog"),)
    assert len(a.problems) == 5
    assert all("bad.tsv:" in p for p in a.problems)
    assert "bad.tsv:2: negative onset" in a.problems[0] and "not after onset" in a.problems[1]


def test_overlapping_events_of_one_label_are_merged_with_a_note_other_labels_may_overlap(tmp_path):
    a = read_annotations(write(tmp_path, "o.tsv", "a.wav\t1\t3\tdog\na.wav\t2\t5\tdog\na.wav\t2\t4\tsiren\n"))
    assert Annotation("a.wav", 1.0, 5.0, "dog") in a.events and Annotation("a.wav", 2.0, 4.0, "siren") in a.events
    assert len(a.problems) == 1 and "overlap" in a.problems[0]


def test_audacity_labels_annotate_the_recording_of_the_same_name(tmp_path):
    text = "1.000000\t2.500000\tdog\n\\\t100.0\t3000.0\n4\t5\tsiren\n"
    a = read_annotations(write(tmp_path, "kitchen.txt", text), ["x/other.wav", "x/kitchen.wav"])
    assert a.events == (Annotation("kitchen.wav", 1.0, 2.5, "dog"), Annotation("kitchen.wav", 4.0, 5.0, "siren"))
    b = read_annotations(write(tmp_path, "labels.txt", "1\t2\tdog\n"), ["room.flac"])
    assert b.events == (Annotation("room.flac", 1.0, 2.0, "dog"),)
    with pytest.raises(AnnotationError, match="one recording"):
        read_annotations(write(tmp_path, "labels2.txt", "1\t2\tdog\n"), ["a.wav", "b.wav"])


def test_missing_or_unreadable_annotation_file_is_one_clear_error(tmp_path):
    with pytest.raises(AnnotationError, match="no such annotation file"):
        read_annotations(tmp_path / "nope.tsv")
    (tmp_path / "bin.tsv").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(EdgekitError):
        read_annotations(tmp_path / "bin.tsv")


def test_annotated_files_missing_from_the_recordings_are_reported_unannotated_recordings_are_background(tmp_path):
    a = read_annotations(write(tmp_path, "m.tsv", "a.wav\t1\t2\tdog\ngone.wav\t1\t2\tdog\n"))
    found, problems = match_files(a, ["data/a.wav", "data/extra.wav"])
    assert found == {"a.wav": "data/a.wav", "data/extra.wav": "data/extra.wav"}
    assert any("gone.wav is not among the recordings" in p and "1 events" in p for p in problems)
    assert any("extra.wav: no annotations name it" in p for p in problems)


def test_unknown_labels_and_rules_without_events_are_named_and_map_fixes_them():
    rules = [Rule("smoke", ("Smoke detector, smoke alarm",)), Rule("dog", ("Dog",))]
    labels, problems = rule_labels(rules, {"smoke_alarm", "dog", "cat"}, {})
    assert labels == {"smoke": "smoke", "dog": "dog"}
    assert any("'cat' has no rule" in p for p in problems)
    assert any("rule smoke: no annotated event" in p and "--map smoke=LABEL" in p for p in problems)
    labels, problems = rule_labels(rules, {"smoke_alarm", "dog"}, parse_map(["smoke=smoke_alarm"]))
    assert labels["smoke"] == "smoke_alarm" and problems == []
    with pytest.raises(EvaluationError, match="does not have: nope"):
        rule_labels(rules, set(), {"nope": "x"})
    with pytest.raises(EvaluationError, match="RULE=LABEL"):
        parse_map(["smoke"])


@pytest.mark.parametrize("kind, content, says", [
    ("comma", b"filename,onset,offset,event_label\nscene.wav,1.0,2.5,smoke_alarm\nscene.wav,4,6,smoke_alarm\n",
     "separated by commas"),
    ("semicolon", b"scene.wav;1.0;2.5;smoke_alarm\n", "separated by commas or semicolons"),
    ("empty", b"", "is empty"),
    ("blank", b"\n  \n\t\n", "is empty"),
    ("binary", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00", "not a text file"),
    ("binary-utf8", b"a\x00b\x00c\x00\n", "not a text file"),
    ("all-bad", b"scene.wav\tone\ttwo\tdog\nscene.wav\t3\t2\tdog\n", "no usable event"),
])
def test_annotation_files_that_would_score_everything_as_background_are_refused(tmp_path, capsys, kind, content, says):
    """Read as "no events", each of these scored a real smoke alarm as FA/h 322: refused, one line,
    non-zero exit, before any model is loaded."""
    from edgekit.cli import main

    p = tmp_path / "ann.txt"
    p.write_bytes(content)
    with pytest.raises(AnnotationError, match=says):
        read_annotations(p, ["scene.wav"])
    rc = main(["evaluate", "--config", str(tmp_path / "none.toml"), "--annotations", str(p), "scene.wav"])
    err = capsys.readouterr().err
    assert rc == 1 and says in err and len(err.strip().splitlines()) == 1


def test_a_tsv_that_only_lists_files_is_still_background_on_purpose(tmp_path):
    a = read_annotations(write(tmp_path, "a.tsv", "kitchen.wav\nhall.wav\n"))
    assert a.events == () and a.files == ("kitchen.wav", "hall.wav")
