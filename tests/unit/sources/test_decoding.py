"""Range answers read straight into numpy (sources.results.decode, sources.points), checked against
hand-written arrays and against Python's own `float` (an independent, correctly rounded reader).

The bodies are written here byte for byte, as Prometheus writes them (compact JSON, timestamps as
numbers, values as strings: "NaN", "+Inf", "-Inf"), so that the cut-out path is the one exercised;
the same answers spaced out (`json.dumps` with spaces) must give the same series by the plain path.
"""

from __future__ import annotations

import gc
import json
import math
import random
import struct

import numpy as np
import pytest

from kubetally.sources.points import Misshapen, _evaluation_times, parse_decimals, parse_points
from kubetally.sources.results import Decoded, decode, parse_matrix, parse_matrix_answer

T = 1748736000


def answer(result: str) -> bytes:
    return ('{"status":"success","data":{"resultType":"matrix","result":[' + result + "]}}").encode()


def series_of(body: bytes) -> list[tuple[dict[str, str], list[int], list[float]]]:
    decoded = decode(body)
    data = Decoded(document=decoded.document["data"], arrays=decoded.arrays, body=body)
    return [(s.labels, s.timestamps.tolist(), s.values.tolist()) for s in parse_matrix_answer(data)]


def same(got: list[float], expected: list[float]) -> bool:
    """Equal bit for bit (so -0.0 ≠ 0.0), NaN equal to NaN."""
    return [struct.pack("<d", x) for x in got] == [struct.pack("<d", x) for x in expected]


def test_points_of_several_arrays_with_nan_infinities_and_an_empty_one() -> None:
    arrays = [
        b'[1748736000,"1.5"],[1748736060,"NaN"],[1748736120,"+Inf"],[1748736180,"-Inf"]',
        b"",
        b'[1748736000.5,"-0"],[1748736060.25,"0.1"]',
        b'[1748736240,"123456789012345678901"]',
    ]
    times, values, offsets = parse_points(arrays)
    assert offsets.tolist() == [0, 4, 4, 6, 7]
    # 1748736000.5 rounds half to even (as np.rint) → …000; .25 → …060.
    assert times.tolist() == [T, T + 60, T + 120, T + 180, T, T + 60, T + 240]
    assert same(values.tolist(), [1.5, math.nan, math.inf, -math.inf, -0.0, 0.1, 1.2345678901234568e20])


def test_times_matched_against_the_evaluation_times_of_the_query() -> None:
    """Asked for T..T+180 by 60: every time is one of the four texts, so they are matched, not
    parsed; a time between steps (T+30), with decimals, or before 2001 (8 digits) is parsed instead."""
    arrays = [b'[1748736000,"1"],[1748736120,"2"]', b'[1748736180,"3"],[1748736060,"4"]']
    u = np.frombuffer(b" " * 16 + b",".join(arrays), dtype=np.uint8)
    marks = np.flatnonzero((u == ord("[")) | (u == ord('"')) | (u == ord("]")))
    matched = _evaluation_times(u, marks[0::4] + 1, marks[1::4] - 1, (T, T + 180, 60))
    assert matched is not None
    assert matched.tolist() == [T, T + 120, T + 180, T + 60]
    times, values, offsets = parse_points(arrays, (T, T + 180, 60))
    assert (times.tolist(), values.tolist(), offsets.tolist()) == ([T, T + 120, T + 180, T + 60], [1, 2, 3, 4], [0, 2, 4])
    for text, evaluations, expected in [
        (b'[1748736030,"1"]', (T, T + 180, 60), [T + 30]),
        (b'[1748736060.5,"1"]', (T, T + 180, 60), [T + 60]),  # half to even
        (b'[99999960,"1"]', (99_999_960, 100_000_020, 60), [99_999_960]),
        (b'[1748736000,"1"]', (T + 60, T + 180, 60), [T]),
    ]:
        assert parse_points([text], evaluations)[0].tolist() == expected


def test_no_arrays_and_only_empty_arrays_give_no_points() -> None:
    for arrays in ([], [b"", b""]):
        times, values, offsets = parse_points(arrays)
        assert (times.tolist(), values.tolist(), offsets.tolist()) == ([], [], [0] * (len(arrays) + 1))


@pytest.mark.parametrize(
    "text",
    [
        b'[1,"2"],',  # a trailing comma
        b'[1,"2"][3,"4"]',  # no comma between points
        b'[1,"2",3]',  # three elements
        b"[1]",  # one element
        b'["1","2"]',  # a quoted time
        b'[1,"abc"]',  # not a number
        b'[1,"1_000"]',  # float() would read it; Prometheus never writes it
        b'[1," 2"]',  # nor spaces
        b'[,"2"]',  # no time
        b'[1,"2"',  # not closed
    ],
)
def test_misshapen_arrays_are_refused(text: bytes) -> None:
    with pytest.raises(Misshapen):
        parse_points([text])


def test_decimals_are_read_as_float_reads_them() -> None:
    """A seeded campaign against `float`: shortest round-trip texts (Go's 'f', -1 format, as
    Prometheus writes values), fixed decimals, integers, huge and tiny magnitudes, signs."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    texts: list[bytes] = []
    for _ in range(20_000):
        kind = rng.randrange(6)
        if kind == 0:
            number = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
            if not math.isfinite(number):
                number = rng.random()
            text = np.format_float_positional(number, unique=True, trim="-")
        elif kind == 1:
            text = np.format_float_positional(rng.random() * 10 ** rng.randint(-8, 12), unique=True, trim="-")
        elif kind == 2:
            text = f"{rng.randint(-(10**18), 10**18)}"
        elif kind == 3:
            text = f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 9)}f}"
        elif kind == 4:
            text = rng.choice(["NaN", "+Inf", "-Inf", "0", "-0", "1e300", "5e-324", "9007199254740993", ".5", "7."])
        else:
            text = f"{rng.randint(0, 2**53)}.{rng.randint(0, 999)}"
        texts.append(text.encode())
    buffer = b",".join(texts)
    starts = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]]).astype(np.int64)
    ends = starts + np.array([len(t) for t in texts], dtype=np.int64)
    got = parse_decimals(np.frombuffer(buffer, dtype=np.uint8), starts, ends)
    assert same(got.tolist(), [float(t) for t in texts])


def test_an_answer_is_cut_and_read_with_labels_that_look_like_values() -> None:
    """A label value holding `"values":[[` (escaped in JSON) and `]]` must not be taken for an array."""
    body = answer(
        '{"metric":{"pod":"web-1","note":"\\"values\\":[[1,\\"2\\"]]"},"values":[[1748736000,"1"],[1748736060,"2.5"]]},'
        '{"metric":{},"values":[]},'
        '{"metric":{"pod":"db-0"},"histograms":[[1748736000,{"count":"1","sum":"2"}]]},'
        '{"metric":{"pod":"job-1"},"values":[[1748736120,"NaN"]]}'
    )
    decoded = decode(body)
    assert len(decoded.arrays) == 3
    assert series_of(body)[0] == ({"pod": "web-1", "note": '"values":[[1,"2"]]'}, [T, T + 60], [1.0, 2.5])
    rest = series_of(body)[1:]
    assert rest[:2] == [({}, [], []), ({"pod": "db-0"}, [], [])]
    assert rest[2][:2] == ({"pod": "job-1"}, [T + 120])
    assert math.isnan(rest[2][2][0])


def test_a_spaced_out_answer_is_read_the_plain_way_with_the_same_series() -> None:
    compact = answer('{"metric":{"pod":"a"},"values":[[1748736000,"1"],[1748736060,"-Inf"]]},{"metric":{"pod":"b"},"values":[]}')
    spaced = json.dumps(json.loads(compact), indent=1).encode()
    assert decode(spaced).arrays == ()
    assert series_of(spaced) == series_of(compact) == [
        ({"pod": "a"}, [T, T + 60], [1.0, -math.inf]),
        ({"pod": "b"}, [], []),
    ]


def test_an_empty_result_and_other_answers_decode() -> None:
    assert series_of(answer("")) == []
    assert decode(b'{"status":"error","errorType":"bad_data","error":"x"}').document["errorType"] == "bad_data"
    with pytest.raises(ValueError, match="unexpected character"):
        decode(b"<html>502</html>")


def test_a_misshapen_array_falls_back_to_the_plain_reader_and_its_error() -> None:
    """The cut path refuses `[[0]]`; the plain reader then says what is wrong, as it always did."""
    body = answer('{"metric":{},"values":[[0]]}')
    with pytest.raises(IndexError):
        series_of(body)
    quoted = answer('{"metric":{},"values":[["1748736000","3"]]}')  # odd, but the plain reader reads it
    assert series_of(quoted) == [({}, [T], [3.0])]


def test_non_string_label_values_are_made_strings() -> None:
    body = answer('{"metric":{"a":1,"b":"x"},"values":[[1748736000,"1"]]}')
    assert series_of(body)[0][0] == {"a": "1", "b": "x"}


def test_series_arrays_are_read_only_views() -> None:
    body = answer('{"metric":{},"values":[[1748736000,"1"]]},{"metric":{},"values":[[1748736000,"2"]]}')
    decoded = decode(body)
    for item in parse_matrix(decoded.document["data"], decoded.arrays):
        assert not item.values.flags.writeable
        assert not item.timestamps.flags.writeable


@pytest.mark.parametrize("enabled", [True, False])
def test_decoding_leaves_the_garbage_collector_as_it_found_it(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        series_of(answer('{"metric":{},"values":[[1748736000,"1"]]}'))
        with pytest.raises(ValueError, match="unexpected character"):
            decode(b"<html>502</html>")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
