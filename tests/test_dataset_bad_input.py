"""Datasets under awkward input (issue 12): label files with a BOM, truncated videos."""

from __future__ import annotations

import json

import pytest

from anonpriv.data import load_privacy_labels


def test_label_files_with_a_utf8_bom_are_read(tmp_path):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_bytes("video,face,gender\r\nA/x.avi,1,0\r\nA/y.avi,0,1\r\n".encode("utf-8-sig"))  # Excel's way
    labels = load_privacy_labels(csv_file)
    assert labels.attributes == ["face", "gender"]
    assert labels.lookup("A/y").tolist() == [0, 1]
    json_file = tmp_path / "labels.json"
    json_file.write_bytes(json.dumps({"attributes": ["face"], "videos": {"A/x": [1]}}).encode("utf-8-sig"))
    assert load_privacy_labels(json_file).lookup("A/x").tolist() == [1]
