"""Output capping and printable text."""

from __future__ import annotations

from corral.sandbox.output import OutputCollector, printable


def test_small_output_is_kept_whole() -> None:
    c = OutputCollector(100)
    c.feed(b"hello\n")
    assert c.render() == "hello\n"
    assert not c.truncated


def test_50mb_stream_keeps_head_and_tail_within_cap() -> None:
    cap = 30_000
    c = OutputCollector(cap)
    chunk = b"y\n" * 32_768
    fed = 0
    while fed < 50_000_000:
        piece = chunk[: min(len(chunk), 50_000_000 - fed)]
        c.feed(piece)
        fed += len(piece)
        assert len(c._head) + len(c._tail) <= cap
    c.feed(b"THE END\n")
    text = c.render()
    assert c.truncated
    assert c.total == 50_000_008
    assert text.startswith("y\ny\n")
    assert text.endswith("THE END\n")
    assert "[... 49,970,008 bytes omitted ...]" in text
    assert len(text) < cap + 100


def test_exact_cap_is_not_truncated() -> None:
    c = OutputCollector(10)
    c.feed(b"0123456789")
    assert not c.truncated
    assert c.render() == "0123456789"
    c.feed(b"x")
    assert c.truncated
    assert c.render().endswith("6789x")


def test_binary_is_summarised() -> None:
    data = bytes(range(256)) * 4
    assert printable(data) == "[binary output: 1,024 bytes]"


def test_control_characters_made_visible_and_ansi_stripped() -> None:
    text = printable(b"a\x07b\tc\n\x1b[31mred\x1b[0m\r\nend")
    assert text == "a\\x07b\tc\nred\nend"


def test_utf8_text_survives_and_bad_bytes_are_replaced() -> None:
    assert printable("héllo wörld, ok\n".encode()) == "héllo wörld, ok\n"
    assert "\ufffd" in printable(b"plain text with one bad byte \xff here")
