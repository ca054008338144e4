"""The shortcuts of the open path (issue 12) give what the general code gives.

The unpickler's recorders take torch.save's common arguments through checks at C speed;
anything else goes through the general conversion (`_tensor`, `count_arg`, …). The
rollup merges Counts field by field (unrolled) and equals adding tensor by tensor.
"""

from __future__ import annotations

import dataclasses
import math
import pickle

import pytest

from tui.core.model import DTYPE_SIZES, Counts, ModuleNode, TensorInfo
from tui.core.read.build import add_buffer, add_tensor, merge, rollup
from tui.core.read.records import MAX_COUNT, StorageRec, StorageType, TensorRec
from tui.core.read.unpickle import Unpickler

V2 = ("torch._utils", "_rebuild_tensor_v2")
PARAM = ("torch._utils", "_rebuild_parameter")


def _reader() -> Unpickler:
    return Unpickler(b".")


def _fields(t: TensorRec) -> tuple:
    return tuple(getattr(t, f.name) for f in dataclasses.fields(t) if f.name != "storage")


# (offset, size, stride): ones the shortcut takes and ones it must hand to _tensor.
ARGS = [
    (0, (4, 4), (4, 1)),
    (3, (), ()),
    (0, (0, 5), (5, 1)),
    (True, (2,), (1,)),  # a bool offset: converted, as before
    (0, (True, 2), (2, 1)),  # bools in a shape come out as ints
    (0, (2.0, 2), (2, 1)),
    (0, (2, 2), (2.0, 1)),
    (0, [2, 2], [2, 1]),  # lists (protocol 0 files): converted
    (0, (1 << 62, 1 << 62), (1, 1)),  # each dimension fits, the product does not
    (0, (1 << 63,), (1,)),
    (0, (-1, 4), (4, 1)),
    (-1, (4,), (1,)),
    (1 << 63, (4,), (1,)),
    (0, (0, 1 << 63), (1, 1)),  # a zero dimension does not excuse a huge one
]


@pytest.mark.parametrize("offset,size,stride", ARGS)
def test_tensor_recorder_shortcut_matches_the_general_path(offset, size, stride):
    fast, slow = _reader(), _reader()
    sf, ss = (StorageRec("0", "float32", "cpu", 16) for _ in range(2))
    try:
        want = slow._tensor(ss, offset, size, stride, False)
    except (pickle.UnpicklingError, TypeError, ValueError) as e:
        with pytest.raises(type(e)):
            fast._recorders[V2](sf, offset, size, stride, False)
        return
    got = fast._recorders[V2](sf, offset, size, stride, False)
    assert _fields(got) == _fields(want)
    assert all(type(x) is int for x in (*got.shape, *got.stride, got.offset))
    assert fast._tensors == [got]


def test_parameter_recorder_keeps_order_and_flags():
    u = _reader()
    s = StorageRec("0", "float32", "cpu", 4)
    t = u._recorders[V2](s, 0, (4,), (1,), False)
    p = u._recorders[PARAM](t, True, None)
    q = u._recorders[PARAM](t, 0, None)  # an int flag: the general path, a bool out
    assert (p.data, p.requires_grad, p.index) == (t, True, 0)
    assert (q.requires_grad, type(q.requires_grad), q.index) == (False, bool, 1)
    assert u._params == [p, q]
    with pytest.raises(pickle.UnpicklingError):
        u._recorders[PARAM]("not a tensor", True, None)


PIDS = [
    ("storage", StorageType("float16", "HalfStorage"), "0", "cpu", 8),
    ("storage", StorageType("float16", "HalfStorage"), 7, "cpu", 8),  # int key: as str
    ("storage", "not a type", "0", "cuda:0", 8),  # untyped: counted in bytes
    ("storage", StorageType("float32", "FloatStorage"), "0", "cpu", True),
    ("storage", StorageType("float32", "FloatStorage"), "0", "cpu", -1),
    ("storage", StorageType("float32", "FloatStorage"), "0", "cpu", MAX_COUNT),
    ("storage", StorageType("float32", "FloatStorage"), "0", 5, 8),  # location not a str
    (b"storage", StorageType("float32", "FloatStorage"), "0", "cpu", 8),
]


@pytest.mark.parametrize("pid", PIDS)
def test_persistent_ids_shortcut_matches_the_general_path(pid):
    fast, slow = _reader(), _reader()
    try:  # a 6th slot of None never takes the 5-slot shortcut and means the same
        want = slow.persistent_load((*pid, None))
    except (pickle.UnpicklingError, TypeError, ValueError) as e:
        with pytest.raises(type(e)):
            fast.persistent_load(pid)
        return
    got = fast.persistent_load(pid)
    assert (got.key, got.dtype, got.location, got.numel, got.view) == \
           (want.key, want.dtype, want.location, want.numel, want.view)
    assert fast.persistent_load(pid) is got  # one record per key


def test_merge_adds_every_counts_field():
    names = [f.name for f in dataclasses.fields(Counts)]
    a = Counts(**{n: i + 1 for i, n in enumerate(names)})
    b = Counts(**{n: 100 * (i + 1) for i, n in enumerate(names)})
    merge(a, b)
    assert [getattr(a, n) for n in names] == [101 * (i + 1) for i in range(len(names))]


def test_rollup_matches_adding_tensor_by_tensor():
    """Parameters of every flag state, sub-byte and unknown dtypes, a tied parameter and
    buffers: the rollup equals add_tensor/add_buffer applied one tensor at a time."""
    root = ModuleNode("", "", "Root")
    kid = ModuleNode("a", "a", "Kid", parent=root, depth=1)
    root.children.append(kid)

    def t(name, shape, dtype, rg, kind="parameter"):
        return TensorInfo([name], shape, dtype, kind, rg)

    tied = t("a.w", (3, 5), "float16", True)
    tied.names.append("w2")
    kid.params = [("w", tied), ("x", t("a.x", (7,), "float32", False)),
                  ("y", t("a.y", (2, 3), "quint4x2", None)), ("z", t("a.z", (4,), "mystery", True))]
    kid.buffers = [("b", t("a.b", (6,), "int64", False, "buffer"))]
    root.params = [("w2", tied), ("r", t("r", (0, 9), "bfloat16", True))]
    rollup(root)

    want_kid, want_root = Counts(), Counts()
    for _, x in kid.params:
        add_tensor(want_kid, x, +1)
        add_tensor(want_root, x, +1)
    add_buffer(want_kid, kid.buffers[0][1], +1)
    add_buffer(want_root, kid.buffers[0][1], +1)
    add_tensor(want_root, root.params[1][1], +1)  # the tied one counts once
    assert kid.counts == want_kid
    assert root.counts == want_root
    assert want_kid.nbytes == sum(int(math.prod(x.shape) * DTYPE_SIZES.get(x.dtype, 1))
                                  for _, x in kid.params)


def test_finding_the_model_does_not_queue_a_vocabulary(monkeypatch):
    """A checkpoint holding a tokenizer's vocabulary (200,000 str -> int) beside its
    weights: the search for models looks at containers only (it used to queue every
    int, and to pop the queue from the front: quadratic)."""
    from tui.core.read import reader

    looked: list[int] = []
    real = reader.module_state
    monkeypatch.setattr(reader, "module_state", lambda o: looked.append(1) or real(o))
    rec = TensorRec(StorageRec("0", "float32", "cpu", 4), 0, (4,), (1,), False, "float32")
    ckpt = {"model": {"w": rec}, "vocab": {f"tok{i}": i for i in range(200_000)},
            "merges": [("a", "b")] * 10, "epoch": 3}
    found = reader.find_models(ckpt)
    assert [(c.key, c.kind) for c in found] == [("model", "state_dict")]
    assert len(looked) < 50
