"""Host patterns, address checks, profile files and the ClientHello parser."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from corral.domain import ConfigError
from corral.sandbox.egress import EgressProfile, address_problem, host_matches, load_profiles
from corral.sandbox.egress.tls import NotTLS, server_name


@pytest.mark.parametrize(
    ("pattern", "host", "ok"),
    [
        ("*.example.org", "a.example.org", True),
        ("*.example.org", "a.b.example.org", True),
        ("*.example.org", "A.Example.ORG.", True),
        ("*.example.org", "example.org", False),
        ("*.example.org", "badexample.org", False),
        ("*.example.org", "example.org.evil.com", False),
        ("*.example.org", ".example.org", False),
        ("pypi.org", "pypi.org", True),
        ("pypi.org", "files.pypi.org", False),
        ("pypi.org", "pypi.org.evil.com", False),
        ("pypi.org", "pypi.org:443", False),
        ("pypi.org", "pypi..org", False),
    ],
)
def test_host_matching(pattern: str, host: str, ok: bool) -> None:
    assert host_matches(pattern, host) is ok


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"),
        ("192.168.0.5", "private"), ("172.16.9.9", "private"), ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("fd12::1", "private"),
        ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unicast"), ("100.64.0.1", "public"),
        ("224.0.0.1", "unicast"),
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    problem = address_problem(address)
    assert problem is not None and why in problem


def test_public_addresses_pass_and_the_test_override_keeps_metadata_out() -> None:
    assert address_problem("151.101.0.223") is None
    assert address_problem("2a04:4e42::223") is None
    assert address_problem("127.0.0.1", allow_private=True) is None
    assert "metadata" in str(address_problem("169.254.169.254", allow_private=True))


def test_profiles_refuse_ip_rules_and_read_credentials_from_env(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no IP addresses"):
        EgressProfile(allow=("10.0.0.1",))
    with pytest.raises(ValueError, match="no bare wildcards"):
        EgressProfile(allow=("*",))
    f = tmp_path / "egress.yaml"
    f.write_text(
        "profiles:\n  pypi:\n    allow: [pypi.org, '*.pythonhosted.org']\n"
        "    credentials: [{host: pypi.org, value_env: IDX_TOKEN}]\n"
    )
    profiles = load_profiles(f, env={"IDX_TOKEN": "Bearer abc"})
    assert profiles["default"].closed and not profiles["pypi"].closed
    assert profiles["pypi"].rule_for("files.pythonhosted.org") == "*.pythonhosted.org"
    assert profiles["pypi"].rule_for("127.0.0.1") is None
    cred = profiles["pypi"].credential_for("pypi.org")
    assert cred is not None and cred.value == "Bearer abc"
    assert "abc" not in repr(cred)
    with pytest.raises(ConfigError, match="IDX_TOKEN is not set"):
        load_profiles(f, env={})


def _client_hello(sni: str | None) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = sni is not None
    if sni is None:
        ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_server_name_is_read_from_a_real_client_hello() -> None:
    raw = _client_hello("Docs.Example.org")
    assert raw[0] == 22
    assert server_name(raw[9:]) == "docs.example.org"
    assert server_name(_client_hello(None)[9:]) is None
    with pytest.raises(NotTLS):
        server_name(b"\x03\x03" + b"\x00" * 32 + b"\x20")  # a session id that is not there
