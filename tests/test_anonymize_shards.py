"""``anonpriv anonymize --shard K/N`` (issue 25): N jobs write every input exactly once."""

from __future__ import annotations

import pytest

from anonpriv.anonymize.cli import main
from anonpriv.anonymize.shards import ShardError, in_shard, parse_shard, shard_of
from tests.test_anonymize_bad_input import write_video

NAMES = [f"Class{c}/v_Class{c}_g{g:02d}_c{k:02d}.avi" for c in range(7) for g in range(1, 8) for k in range(1, 4)]


@pytest.mark.parametrize("count", [1, 2, 3, 8, 25])
def test_shards_are_disjoint_cover_every_input_and_do_not_change(count):
    shards = [[name for name, keep in zip(NAMES, in_shard(NAMES, k, count)) if keep] for k in range(1, count + 1)]
    assert sorted(name for shard in shards for name in shard) == sorted(NAMES)  # every input exactly once
    assert sum(len(shard) for shard in shards) == len(NAMES)
    again = [[name for name, keep in zip(NAMES, in_shard(NAMES, k, count)) if keep] for k in range(1, count + 1)]
    assert again == shards
    # a file added later moves no other file to another shard
    assert [shard_of(name, count) for name in NAMES] == [shard_of(name, count) for name in NAMES + ["new.avi"]][:-1]
    if count <= 3:  # 147 names: every shard gets a fair share
        assert min(len(shard) for shard in shards) > 0.6 * len(NAMES) / count


@pytest.mark.parametrize("text", ["0/4", "5/4", "4", "a/b", "1/0", "-1/3", ""])
def test_bad_shards_get_one_line_naming_the_form(text):
    with pytest.raises(ShardError) as error:
        parse_shard(text)
    message = str(error.value)
    assert "\n" not in message and "--shard" in message and ("K/N" in message or "between 1 and N" in message)
    assert parse_shard(" 2 / 5 ") == (2, 5)


def test_shard_runs_write_each_video_once(tmp_path, capsys):
    videos, out = tmp_path / "videos", tmp_path / "out"
    names = [f"c{i % 3}/clip{i}.mp4" for i in range(7)]
    for i, name in enumerate(names):
        write_video(videos / name, frames=3, seed=i)
    written = []
    for k in (1, 2, 3):
        before = {p for p in out.rglob("*.mp4")} if out.exists() else set()
        assert main([str(videos), "-o", str(out), "--method", "raw", "--device", "cpu", "--shard", f"{k}/3"]) == 0
        assert f"shard {k}/3:" in capsys.readouterr().err
        written.append({p for p in out.rglob("*.mp4")} - before)
    assert sum(len(w) for w in written) == len(names)
    assert sorted(str(p.relative_to(out)) for w in written for p in w) == sorted(names)
    assert main([str(videos), "-o", str(out), "--method", "raw", "--device", "cpu", "--shard", "4/3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "between 1 and N" in err[0]
