"""The serial protocol under hypothesis: whatever bytes arrive, the decoder never raises
and never hands over a frame that was not sent whole, and the board never acts on a frame
that is bad, replayed or out of order."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import protocol as P
from firmware.board import Board, Sensors
from tests.conftest import examples


def hello(b: Board, seq: int, nonce: int = 0x1234) -> int:
    """Open a session on the board; returns the token its frames must then carry."""
    reply = P.Decoder().feed(
        b.on_frame(seq, P.HELLO, P.pack_s(seq, P.HELLO, nonce, P.PROTO_VERSION)[4:-2], 0)[0]
    )
    return P.unpack(P.HELLO_ACK, reply[0][2])[10]


MESSAGES = st.one_of(
    st.tuples(
        st.just(P.SET_OUTPUTS),
        st.tuples(st.integers(-1000, 1000), st.integers(0, 7), st.integers(0, 65535)),
    ),
    st.tuples(st.just(P.PING), st.just(())),
    st.tuples(st.just(P.CLEAR), st.just(())),
    st.tuples(st.just(P.ACK), st.tuples(st.integers(0, 255))),
    st.tuples(
        st.just(P.STATUS),
        st.tuples(
            st.integers(0, 65535),
            st.integers(-32768, 32767),
            st.integers(-32768, 32767),
            st.integers(0, 65535),
            st.integers(0, 65535),
            st.integers(0, 4),
            st.integers(-1000, 1000),
            st.integers(0, 7),
            st.integers(0, 255),
        ),
    ),
)


@settings(max_examples=examples(300))
@given(
    st.lists(st.tuples(st.integers(0, 255), MESSAGES), min_size=1, max_size=10),
    st.lists(st.binary(max_size=20), min_size=11, max_size=11),
)
def test_frames_survive_garbage_between_them(frames: list, garbage: list) -> None:
    stream = b""
    for i, (seq, (mtype, values)) in enumerate(frames):
        stream += bytes(b for b in garbage[i] if b != P.SYNC) + P.pack(seq, mtype, *values)
    stream += bytes(b for b in garbage[-1] if b != P.SYNC)
    out = P.Decoder().feed(stream)
    assert [(s, t, P.unpack(t, p)) for s, t, p in out] == [(s, m, v) for s, (m, v) in frames]


@settings(max_examples=examples(500))
@given(st.binary(max_size=400), st.integers(1, 17))
def test_arbitrary_bytes_never_raise_and_only_whole_sent_frames_come_out(
    data: bytes, chunk: int
) -> None:
    d = P.Decoder()
    out = []
    for i in range(0, len(data), chunk):
        out += d.feed(data[i : i + chunk])
    for seq, mtype, payload in out:
        assert P.encode(seq, mtype, payload) in data  # it was really there, CRC and all


@settings(max_examples=examples(300))
@given(st.binary(max_size=300))
def test_the_board_never_acts_on_fuzz(data: bytes) -> None:
    """Random bytes on the board's UART after a handshake: whatever the decoder lets
    through is either answered with NAK or is a well-formed frame (then it may act)."""
    b = Board(0)
    token = hello(b, 1)
    b.step(0, Sensors(-80.0, -80.0, upright=True))
    before = (b.cmd_duty, b.cmd_flags, b.state)
    for seq, mtype, payload in P.Decoder().feed(data):
        well_formed = (
            P.unpack(mtype, payload) is not None
            and P.seq_newer(seq, b.last_seq)
            and P.session_of(payload) == token
        )
        b.on_frame(seq, mtype, payload, 1)
        if not well_formed:
            assert (b.cmd_duty, b.cmd_flags, b.state) == before
        before = (b.cmd_duty, b.cmd_flags, b.state)


@settings(max_examples=examples(200))
@given(st.lists(st.integers(0, 255), min_size=2, max_size=30))
def test_out_of_order_and_replayed_sequence_numbers_never_execute(seqs: list) -> None:
    b = Board(0)
    token = hello(b, seqs[0])
    last, expected = seqs[0], b.cmd_duty
    for i, seq in enumerate(seqs[1:]):
        duty = i + 1
        replies = [
            t
            for f in b.on_frame(
                seq, P.SET_OUTPUTS, struct.pack(">HhBH", token, duty, P.FLAG_POWER, 100), 0
            )
            for _, t, _ in P.Decoder().feed(f)
        ]
        if P.seq_newer(seq, last):
            expected, last = duty / 1000.0, seq
            assert replies == [P.ACK]
        else:  # a replay of the last (ACKed again) or an older frame (NAK): not executed
            assert replies == ([P.ACK] if seq == last else [P.NAK])
        assert b.cmd_duty == expected


def test_every_single_bit_flip_of_every_message_type_is_detected() -> None:
    frames = [
        P.pack(7, P.HELLO, 1),
        P.pack(8, P.SET_OUTPUTS, -350, 5, 100),
        P.pack(9, P.PING),
        P.pack(10, P.CLEAR),
        P.pack(11, P.ACK, 10),
        P.pack(12, P.NAK, 10, 3),
        P.pack(13, P.HELLO_ACK, 2, 2, 0, -8000, 6000, 800, 800, 300, 200, 7, 9),
        P.pack(14, P.STATUS, 100, -8000, -7990, 50, 0x3F, 1, -200, 3, 12),
    ]
    for frame in frames:
        for bit in range(len(frame) * 8):
            bad = bytearray(frame)
            bad[bit // 8] ^= 1 << (bit % 8)
            assert P.Decoder().feed(bytes(bad)) == [], (frame, bit)
