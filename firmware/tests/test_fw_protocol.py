"""Codec tests that run on CPython (pytest) and on the MicroPython unix port (run.py)."""

try:
    from firmware import protocol as P
except ImportError:
    import protocol as P


def test_crc16_ccitt_false_check_value():
    assert P.crc16(b"123456789") == 0x29B1


def test_every_message_round_trips():
    samples = {
        P.HELLO: (1,),
        P.SET_OUTPUTS: (-1000, 5, 100),
        P.PING: (),
        P.CLEAR: (),
        P.ACK: (7,),
        P.NAK: (7, 3),
        P.HELLO_ACK: (2, 2, 0, -8000, 6000, 800, 800, 300, 200, 4711, 9),
        P.STATUS: (65535, -32768, 32767, 4000, 0x7FF, 3, -1000, 7, 255),
    }
    for mtype, values in samples.items():
        frame = P.pack_s(200, mtype, 0xBEEF, *values)
        d = P.Decoder()
        out = d.feed(frame)
        assert len(out) == 1
        seq, t, payload = out[0]
        assert seq == 200 and t == mtype
        assert P.unpack(t, payload) == values and P.session_of(payload) == 0xBEEF


def test_frames_split_anywhere_are_reassembled():
    frame = P.pack(9, P.SET_OUTPUTS, 250, 1, 100) + P.pack(10, P.PING)
    for cut in range(len(frame) + 1):
        d = P.Decoder()
        out = d.feed(frame[:cut]) + d.feed(frame[cut:])
        assert [(s, t) for s, t, _ in out] == [(9, P.SET_OUTPUTS), (10, P.PING)]


def test_every_single_bit_flip_is_rejected():
    frames = [
        P.pack(3, P.SET_OUTPUTS, 123, 1, 100),
        P.pack(250, P.STATUS, 1, 2, 3, 4, 5, 1, 6, 7, 8),
        P.pack(0, P.PING),
    ]
    good = P.pack(11, P.ACK, 3)
    for frame in frames:
        for bit in range(len(frame) * 8):
            bad = bytearray(frame)
            bad[bit // 8] ^= 1 << (bit % 8)
            d = P.Decoder()
            assert d.feed(bytes(bad)) == []
            # ... and the decoder finds the next good frame right after it.
            assert [(s, t) for s, t, _ in d.feed(good)] == [(11, P.ACK)]


def test_truncated_frames_yield_nothing_and_do_not_swallow_the_next():
    frame = P.pack(5, P.SET_OUTPUTS, -400, 0, 100)
    good = P.pack(6, P.PING)
    for n in range(1, len(frame)):
        d = P.Decoder()
        assert d.feed(frame[:n]) == []
        out = d.feed(good)
        assert [(s, t) for s, t, _ in out] == [(6, P.PING)]


def test_garbage_between_frames_is_skipped():
    a, b = P.pack(1, P.PING), P.pack(2, P.CLEAR)
    d = P.Decoder()
    out = d.feed(b"\x00\x01junk" + a + b"\xff\x7e\x7e\x03" + b)
    assert [(s, t) for s, t, _ in out] == [(1, P.PING), (2, P.CLEAR)]
    assert d.dropped > 0


def test_oversized_length_is_rejected_at_once():
    d = P.Decoder()
    assert d.feed(bytes((P.SYNC, P.MAX_PAYLOAD + 1, 0, 0))) == []
    assert d.feed(P.pack(4, P.PING)) != []


def test_unpack_rejects_wrong_sizes_and_unknown_types():
    assert P.unpack(P.SET_OUTPUTS, b"\x00") is None
    assert P.unpack(0x55, b"") is None
    assert P.unpack(P.PING, b"\x00") is None


def test_sequence_order_wraps():
    assert P.seq_newer(1, 0) and P.seq_newer(0, 255) and not P.seq_newer(5, 5)
    assert not P.seq_newer(4, 5) and not P.seq_newer(200, 50)


def test_sequence_window_refuses_far_ahead_and_replayed():
    assert P.seq_within(1, 0, 16) and P.seq_within(3, 250, 16) and P.seq_within(16, 0, 16)
    assert (
        not P.seq_within(17, 0, 16) and not P.seq_within(0, 0, 16) and not P.seq_within(100, 0, 16)
    )
    assert not P.seq_within(255, 0, 16)  # behind


def test_every_payload_starts_with_its_session_word():
    assert P.session_of(b"\x12") is None and P.unpack(P.PING, b"\x00") is None
    assert P.session_of(P.pack_s(1, P.PING, 0x0102)[4:-2]) == 0x0102


def _frames_read(chunks):
    """What FrameReader (the board's allocation-free decoder) makes of a byte stream."""
    r = P.FrameReader()
    out = []
    for chunk in chunks:
        r.push(chunk, len(chunk))
        while r.next():
            out.append((r.seq, r.mtype, bytes(r.payload[: r.plen])))
    return out, r.crc_errors


def test_frame_reader_decides_as_the_decoder_on_noisy_streams():
    """Same frames, same CRC error count, whatever the noise and the chunking: the board's
    reader follows the host decoder's rules (resynchronisation, the later-frame rule)."""
    seed = 12345
    for trial in range(40):
        stream = bytearray()
        for i in range(12):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            kind = seed % 5
            frame = P.pack_s(i, P.SET_OUTPUTS, 0xBEEF, (seed % 2000) - 1000, 5, 100)
            if kind == 0:
                stream += bytes(((seed >> 8) & 0xFF, 0x7E, (seed >> 16) & 0xFF))  # noise
            elif kind == 1:
                frame = bytearray(frame)
                frame[4 + seed % 5] ^= 0x10  # a flipped bit: a bad CRC
            elif kind == 2:
                frame = frame[: 3 + seed % 6]  # a cut frame
            stream += frame
        d = P.Decoder()
        step = 1 + trial % 17
        chunks = [bytes(stream[i : i + step]) for i in range(0, len(stream), step)]
        expected = []
        for chunk in chunks:
            expected += [(s, t, bytes(p)) for s, t, p in d.feed(chunk)]
        got, crc_errors = _frames_read(chunks)
        assert got == expected, (trial, got, expected)
        assert crc_errors == d.crc_errors


def test_replies_built_in_place_equal_the_packed_ones():
    buf = bytearray(P.SIZES[P.NAK] + 6)
    P.struct.pack_into(P.FULL_FORMATS[P.NAK], buf, 4, 0xBEEF, 9, P.NAK_SESSION)
    assert bytes(P.frame_into(buf, 33, P.NAK, P.SIZES[P.NAK])) == P.pack_s(
        33, P.NAK, 0xBEEF, 9, P.NAK_SESSION
    )
