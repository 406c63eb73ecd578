"""Reliability of the data the estimators and stores read (issue 21, part 2): numbers out
of float32's range and odd dtypes are errors naming the range or the type and the sample;
a store being replaced by a concurrent writer is never called corrupted.
"""

import numpy as np
import pytest

import sktdtw.io._format
from sktdtw.io import open_store, write_store

# ------------------------------------------------------------ item 13: concurrent writers


def _write(path, tag, **options):
    """A store whose ids, lengths and values all say ``tag``."""
    write_store(path, [np.full((3 + tag, 2), tag, np.float32)] * 4,
                ids=[f"{tag}-{i}" for i in range(4)], **options)


@pytest.mark.parametrize("replacements", [1, 3])
def test_an_open_racing_an_overwrite_reads_one_whole_store(tmp_path, monkeypatch,
                                                           replacements):
    """Another writer replaces the store right after this open read meta.json (the race
    that called a healthy store corrupted): the open reads one store, whole."""
    path = tmp_path / "s"
    _write(path, 0)
    read_meta, tags = sktdtw.io._format._read_meta, iter(range(1, replacements + 1))

    def racing(*args):
        meta = read_meta(*args)
        tag = next(tags, None)
        if tag is not None:
            _write(path, tag, overwrite=True)
        return meta

    monkeypatch.setattr(sktdtw.io._format, "_read_meta", racing)
    store = open_store(path)
    tag = int(store.ids[0].split("-")[0])
    assert store.ids.tolist() == [f"{tag}-{i}" for i in range(4)]
    values, lengths = store.read_batch(slice(None))
    assert (lengths == 3 + tag).all() and (values == tag).all()


def test_an_open_that_races_overwrites_forever_says_so(tmp_path, monkeypatch):
    path = tmp_path / "s"
    _write(path, 0)
    read_meta, writing = sktdtw.io._format._read_meta, []

    def racing(*args):
        meta = read_meta(*args)
        if not writing:  # not the open at the end of the racing write itself
            writing.append(True)
            _write(path, 1, overwrite=True)
            writing.clear()
        return meta

    monkeypatch.setattr(sktdtw.io._format, "_read_meta", racing)
    with pytest.raises(ValueError, match="is being replaced by other writers faster than it "
                       "can be opened"):
        open_store(path)
