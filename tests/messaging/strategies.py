"""Hypothesis strategies for valid messages, derived from the field specs."""

from __future__ import annotations

from hypothesis import strategies as st

from messaging.messages import KINDS, MAX_TEXT_CHARS, FieldSpec, Message

#: Most rows drawn for a table field (the limit itself is checked by the codec tests).
MAX_DRAWN_ROWS = 12


def values_for(spec: FieldSpec) -> st.SearchStrategy:
    """Valid values of one field spec."""
    if spec.base is float:
        return st.floats(spec.lo, spec.hi, allow_nan=False, exclude_min=spec.lo_open)
    if spec.base is int:
        return st.integers(int(spec.lo), int(spec.hi))
    if spec.base is bool:
        return st.booleans()
    if spec.base is tuple:
        row = st.tuples(*(values_for(column) for _, column in spec.columns))
        rows = st.lists(row, max_size=MAX_DRAWN_ROWS, unique_by=lambda r: r[0])
        return rows.map(tuple)
    if spec.choices is not None:
        return st.sampled_from(sorted(spec.choices))
    if spec.pattern is not None:
        return st.from_regex(spec.pattern, fullmatch=True)
    return st.text(max_size=MAX_TEXT_CHARS)


def messages_of(cls: type[Message]) -> st.SearchStrategy[Message]:
    """Valid messages of one kind."""
    return st.tuples(*(values_for(spec) for _, spec in cls.FIELDS)).map(lambda v: cls(*v))


def messages() -> st.SearchStrategy[Message]:
    """Valid messages of any registered kind."""
    return st.sampled_from(sorted(KINDS)).flatmap(lambda name: messages_of(KINDS[name]))
