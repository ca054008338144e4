"""pickle_slice: one value of a pickle cut out as a pickle of its own (no torch needed)."""

from __future__ import annotations

import pickle
from collections import OrderedDict

import pytest

from tui.core.write.pickle_slice import SliceError, cut


class Box:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __eq__(self, other):
        return type(other) is Box and self.__dict__ == other.__dict__


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cut_values_that_share_memo_entries(protocol):
    shared = {"lr": 0.1, "name": "x" * 40}
    doc = {
        "first": Box(cfg=shared, tag="weight", items=[1, 2, "weight"]),
        "model": Box(cfg=shared, tag="weight", od=OrderedDict(a=1), t=("weight", 2**70)),
        "same": None,
        "list": [Box(tag="bias"), Box(tag="weight")],
    }
    doc["same"] = doc["model"]  # the same object under two keys: the second is a memo get
    data = pickle.dumps(doc, protocol=protocol)
    for key in ("first", "model", "same", "list/1", "list"):
        want = doc
        for part in key.split("/"):
            want = want[int(part)] if isinstance(want, list) else want[part]
        assert pickle.loads(cut(data, key)) == want, key
    got = pickle.loads(cut(data, "model"))
    assert got.cfg == shared and got.t[1] == 2**70


def test_refuses_what_it_cannot_copy_faithfully():
    doc = {"a": [1]}
    doc["a"].append(doc)  # refers to the dict still being built around it
    with pytest.raises(SliceError):
        cut(pickle.dumps(doc, protocol=2), "a")
    with pytest.raises(SliceError, match="no value"):
        cut(pickle.dumps({"a": 1}, protocol=2), "b")
