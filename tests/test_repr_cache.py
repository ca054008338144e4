"""ReprCache: modules with equal settings share one computation, unequal ones never do."""

from __future__ import annotations

from tui.core.read.layer_repr import attributes_json, extra_repr
from tui.core.read.repr_cache import ReprCache, _key

LINEAR = "torch.nn.modules.linear.Linear"


def _state(**attrs: object) -> dict:
    return {"training": True, "_parameters": {"weight": object(), "bias": None}, "_buffers": {},
            "_modules": {}, **attrs}


def test_equal_settings_share_a_key_and_unequal_ones_do_not() -> None:
    a, b = _state(in_features=4, out_features=2), _state(in_features=4, out_features=2)
    assert _key(LINEAR, a) == _key(LINEAR, b)
    for other in (_state(in_features=True, out_features=2), _state(in_features=4.0, out_features=2),
                  _state(in_features=4, out_features=3), _state(out_features=2, in_features=4)):
        assert _key(LINEAR, other) != _key(LINEAR, a)
    assert _key("x.Other", a) != _key(LINEAR, a)
    assert _key(LINEAR, _state(in_features=-0.0)) != _key(LINEAR, _state(in_features=0.0))


def test_the_cached_text_is_the_computed_one() -> None:
    cache = ReprCache()
    cases = [(LINEAR, _state(in_features=4, out_features=2)),
             (LINEAR, _state(in_features=4, out_features=2)),
             (LINEAR, {**_state(in_features=4, out_features=2),
                       "_parameters": {"weight": object(), "bias": object()}}),
             ("my.Block", _state(scale=1.0, names=("a", "b"))),
             ("my.Block", _state(scale=1, names=("a", "b"))),
             ("my.Block", _state(scale=True, names=("a", "b"))),
             ("my.Block", _state(scale=True, names=["a", "b"]))]
    for type_, state in cases:
        assert cache.texts(type_, state) == (extra_repr(type_, state), attributes_json(state))
    assert len(cache._done) == 6


def test_unhashable_or_object_values_are_not_cached() -> None:
    assert _key("my.Block", _state(table={"a": 1})) is None
    assert _key("my.Block", _state(obj=object())) is None
    assert _key("torch.nn.modules.container.ParameterList", _state()) is None
