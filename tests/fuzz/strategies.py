"""Hypothesis strategies over the seed corpus: a corpus input plus a few
byte-level edits chosen by hypothesis (set, insert, delete, truncate, extend),
the CRC re-sealed or not; recordings through the seeded structural mutator
with a hypothesis-chosen seed, plus hypothesis edits."""

from __future__ import annotations

from hypothesis import strategies as st

from .mutator import Mutator, reseal

_EDIT = st.tuples(st.integers(0, 4), st.integers(0, 400), st.integers(0, 255))


def apply_edits(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, pos, val in edits:
        n = len(buf)
        if op == 0 and n:
            buf[pos % n] = val
        elif op == 1:
            buf.insert(pos % (n + 1), val)
        elif op == 2 and n:
            del buf[pos % n]
        elif op == 3:
            del buf[pos % (n + 1) :]
        elif op == 4:
            buf.extend(bytes([val]) * (pos % 33))
    return bytes(buf)


def frames(pool: list[bytes]) -> st.SearchStrategy[bytes]:
    @st.composite
    def edited(draw):
        f = apply_edits(draw(st.sampled_from(pool)), draw(st.lists(_EDIT, max_size=4)))
        return reseal(f) if draw(st.booleans()) else f

    return st.one_of(edited(), st.binary(max_size=260))


def streams(pool: list[bytes]) -> st.SearchStrategy[tuple[bytes, list[bytes]]]:
    @st.composite
    def item(draw):
        data = apply_edits(draw(st.sampled_from(pool)), draw(st.lists(_EDIT, max_size=4)))
        cuts = sorted(set(draw(st.lists(st.integers(0, max(0, len(data))), max_size=6))))
        bounds = [0] + cuts + [len(data)]
        return data, [data[a:b] for a, b in zip(bounds, bounds[1:])]

    return item()


def recordings(pool: list[bytes], frame_pool: list[bytes]) -> st.SearchStrategy[tuple[bytes, bytes]]:
    @st.composite
    def item(draw):
        original = draw(st.sampled_from(pool))
        data = original
        if draw(st.booleans()):
            data = Mutator(draw(st.integers(0, 2**32 - 1))).recording(original, pool, frame_pool)
        return original, apply_edits(data, draw(st.lists(_EDIT, max_size=3)))

    return item()
