"""No network (with or without an egress profile), no debugging of neighbours, no terminal
injection, no Docker socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from corral.sandbox import BaseSandbox

from .helpers import py


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A TCP service on the host (all interfaces), so "cannot connect" means something."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen(16)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


def _connect(host: str, port: int) -> str:
    code = (
        "import socket\n"
        "try:\n"
        f'    socket.create_connection(({host!r}, {port}), 3); print("CONNECTED")\n'
        "except OSError as e:\n"
        '    print("refused", e.errno)'
    )
    return py(code.replace("'", '"'))


def _host_ip() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


async def test_no_network(net_box: BaseSandbox, host_listener: int) -> None:
    targets = [("127.0.0.1", host_listener), (_host_ip(), host_listener),
               ("127.0.0.1", 5432), ("127.0.0.1", 6379), ("169.254.169.254", 80),
               ("1.1.1.1", 443), ("8.8.8.8", 53)]  # fmt: skip
    for host, port in targets:
        result = await net_box.exec(_connect(host, port), timeout=15)
        assert "CONNECTED" not in result.output, (host, port)
        assert "refused" in result.output
    bash = await net_box.exec("exec 3<>/dev/tcp/127.0.0.1/5432 && echo CONNECTED", timeout=10)
    assert "CONNECTED" not in bash.output and bash.exit_code != 0


async def test_no_dns(net_box: BaseSandbox) -> None:
    result = await net_box.exec(
        py('import socket\nfor n in ("pypi.org", "example.com", "metadata.google.internal"):\n'
           '    try:\n        print("RESOLVED", socket.getaddrinfo(n, 443)[0][4])\n'
           "    except OSError as e:\n        print(\"no\", n)"),
        timeout=30,
    )  # fmt: skip
    assert "RESOLVED" not in result.output
    assert result.output.count("no ") == 3


async def test_docker_socket_is_absent(net_box: BaseSandbox) -> None:
    result = await net_box.exec(
        "ls -la /var/run/docker.sock /run/docker.sock /run/containerd 2>&1; "
        + py('import socket\ns = socket.socket(socket.AF_UNIX)\n'
             'try:\n    s.connect("/var/run/docker.sock"); print("CONNECTED")\n'
             "except OSError as e:\n    print(\"refused\", e.errno)"),
        timeout=10,
    )  # fmt: skip
    assert "CONNECTED" not in result.output and "refused" in result.output


async def test_ptrace_of_a_sibling_is_denied(box: BaseSandbox) -> None:
    result = await box.exec(
        "sleep 30 & victim=$!; "
        + py("import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
             "pid = int(sys.argv[1])\n"
             "r = libc.ptrace(16, pid, 0, 0)\nprint(\"ptrace\", r, ctypes.get_errno())\n"
             "buf = ctypes.create_string_buffer(8)\n"
             "iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 8)\n"
             "r = libc.process_vm_readv(pid, iov, 1, iov, 1, 0)\n"
             "print(\"vm_readv\", r, ctypes.get_errno())") + " $victim; kill $victim",
        timeout=10,
    )  # fmt: skip
    assert "ptrace -1 1" in result.output, result.output
    assert "vm_readv -1 1" in result.output, result.output


async def test_tiocsti_and_tioclinux_are_denied(box: BaseSandbox) -> None:
    result = await box.exec(
        py("import fcntl, os, termios\nfd = os.open(\"/dev/null\", os.O_RDONLY)\n"
           "for name, req in ((\"TIOCSTI\", termios.TIOCSTI), (\"TIOCLINUX\", 0x541C)):\n"
           "    try:\n        fcntl.ioctl(fd, req, b\"x\"); print(name, \"ok\")\n"
           "    except OSError as e:\n        print(name, e.errno)"),
        timeout=10,
    )  # fmt: skip
    # EPERM (1) from the filter, not ENOTTY (25) from the device.
    assert result.output.split("\n")[:2] == ["TIOCSTI 1", "TIOCLINUX 1"], result.output


async def test_no_new_namespaces(box: BaseSandbox) -> None:
    result = await box.exec(
        "unshare -U true 2>&1; echo rc=$?; unshare -n true 2>&1; echo rc=$?; "
        + py("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
             "print(\"unshare\", libc.unshare(0x10000000), ctypes.get_errno())"),
        timeout=10,
    )  # fmt: skip
    assert "rc=0" not in result.output
    assert "unshare -1 1" in result.output
