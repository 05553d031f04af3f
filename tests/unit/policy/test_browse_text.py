"""HTML reduced to readable text for the browse tool."""

from __future__ import annotations

from corral.tools.browse import html_to_text


def test_html_becomes_headings_paragraphs_lists_and_code() -> None:
    html = """<html><head><title>Docs</title><style>p{color:red}</style>
    <script>var secret = 1;</script></head><body><nav><a href="/">Home</a></nav>
    <h2>Usage</h2><p>Call   <code>run()</code> with a
    <a href="https://example.org/api">token</a>.</p>
    <ol><li>first</li><li>second</li></ol><pre>def f():\n    return 1</pre>
    <noscript>enable js</noscript><p>End &amp; done</p></body></html>"""
    text = html_to_text(html)
    assert text.startswith("# Docs")
    assert "## Usage" in text and "Call `run()` with a [token](https://example.org/api)." in text
    assert "- first\n- second" in text
    assert "```\ndef f():\n    return 1\n```" in text
    assert "End & done" in text
    for gone in ("color:red", "secret", "enable js"):
        assert gone not in text


def test_broken_html_still_gives_text() -> None:
    assert "still here" in html_to_text("<div><p>still here<b></i></table>")
