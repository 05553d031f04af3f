"""A seccomp filter for sandboxes, as classic BPF for bwrap and as a Docker JSON profile.

Why our own: bwrap's `--seccomp FD` wants a compiled program and libseccomp's Python
binding is not always installed; the program is small enough to assemble here. The
same deny list feeds the Docker profile, so both backends refuse the same calls:
debugging other processes, kernel attack surface that unprivileged code never needs
(io_uring, bpf, perf, keyrings), mount and namespace games, and typing into a terminal.

Layout of the program: foreign architectures are killed (a 32-bit syscall table would
bypass every number below); x32 calls are refused; then one jump per denied number.
`clone` is refused only with namespace flags; `clone3` answers ENOSYS so libc falls back
to `clone`, whose flags we can inspect; `ioctl` is refused only for TIOCSTI/TIOCLINUX.
"""

from __future__ import annotations

import errno
import json
import platform
import struct

# Syscalls refused outright: name -> (x86_64 number, aarch64 number).
DENIED: dict[str, tuple[int, int]] = {
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427), "bpf": (321, 280), "perf_event_open": (298, 241),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41),
    "unshare": (272, 97), "setns": (308, 268), "open_tree": (428, 428),
    "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442),
    "userfaultfd": (323, 282), "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "reboot": (169, 142), "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89),
    "quotactl": (179, 60), "name_to_handle_at": (303, 264),
    "open_by_handle_at": (304, 265), "kcmp": (312, 272),
}  # fmt: skip
CLONE = (56, 220)
CLONE3 = (435, 435)
IOCTL = (16, 29)
# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: no new namespaces at all.
CLONE_NS_FLAGS = 0x7E020000
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_BIT = 0x40000000

# classic BPF opcodes
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_ERRNO = 0x00050000
# offsets in struct seccomp_data (little endian: the low word of an arg comes first)
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24


def machine() -> str:
    """The kernel's architecture name, normalised (arm64 -> aarch64)."""
    arch = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def supported(arch: str | None = None) -> bool:
    return (arch or machine()) in _AUDIT_ARCH


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def bpf_program(arch: str | None = None) -> bytes:
    """The filter as bytes of `struct sock_filter[]`, ready for `bwrap --seccomp FD`."""
    arch = arch or machine()
    if arch not in _AUDIT_ARCH:
        raise ValueError(f"no seccomp syscall table for architecture {arch!r}")
    col = 0 if arch == "x86_64" else 1
    eperm = _ERRNO | errno.EPERM
    denied = sorted({nums[col] for nums in DENIED.values()})
    # Tail blocks, addressed by their index from the end of the program.
    tail = [
        _insn(_RET_K, _ALLOW),  # -4 allow
        _insn(_RET_K, eperm),  # -3 deny
        _insn(_RET_K, _ERRNO | errno.ENOSYS),  # -2 clone3
        _insn(_RET_K, _KILL_PROCESS),  # -1 foreign arch
    ]
    body: list[tuple[int, int, str, str]] = []  # (code, k, true target, false target)
    body.append((_LD_W_ABS, _ARCH, "", ""))
    body.append((_JEQ_K, _AUDIT_ARCH[arch], "next", "kill"))
    body.append((_LD_W_ABS, _NR, "", ""))
    if arch == "x86_64":
        body.append((_JGE_K, _X32_BIT, "deny", "next"))
    for nr in denied:
        body.append((_JEQ_K, nr, "deny", "next"))
    body.append((_JEQ_K, CLONE3[col], "enosys", "next"))
    body.append((_JEQ_K, CLONE[col], "next", "skip_clone"))
    body.append((_LD_W_ABS, _ARG0, "", ""))
    body.append((_JSET_K, CLONE_NS_FLAGS, "deny", "allow"))
    clone_end = len(body)
    body.append((_JEQ_K, IOCTL[col], "next", "allow"))
    body.append((_LD_W_ABS, _ARG1, "", ""))
    body.append((_JEQ_K, TIOCSTI, "deny", "next"))
    body.append((_JEQ_K, TIOCLINUX, "deny", "allow"))
    total = len(body) + len(tail)
    where = {"allow": total - 4, "deny": total - 3, "enosys": total - 2, "kill": total - 1}
    out = []
    for i, (code, k, jt, jf) in enumerate(body):

        def off(target: str, i: int = i) -> int:
            if target in ("next", ""):
                return 0
            dest = clone_end if target == "skip_clone" else where[target]
            return dest - i - 1

        out.append(_insn(code, k, off(jt), off(jf)))
    return b"".join(out) + b"".join(tail)


def docker_profile() -> str:
    """The same policy as a Docker seccomp profile (allow by default, deny the list).

    Docker ORs the rules of a syscall, so "flags & NS != 0" becomes one rule per flag bit;
    arguments are masked to 32 bits, as the kernel reads them.
    """
    eperm: dict[str, object] = {"action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM}

    def masked(index: int, mask: int, value: int) -> dict[str, object]:
        return {"index": index, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"}

    rules: list[dict[str, object]] = [
        {"names": sorted(DENIED), **eperm},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
    ]
    for bit in range(32):
        if CLONE_NS_FLAGS & (1 << bit):
            rules.append({"names": ["clone"], **eperm, "args": [masked(0, 1 << bit, 1 << bit)]})
    for cmd in (TIOCSTI, TIOCLINUX):
        rules.append({"names": ["ioctl"], **eperm, "args": [masked(1, 0xFFFFFFFF, cmd)]})
    arches = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]
    return json.dumps(
        {"defaultAction": "SCMP_ACT_ALLOW", "architectures": arches, "syscalls": rules}
    )
