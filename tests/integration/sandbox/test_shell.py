"""The persistent shell, on both backends: state, timeouts, output, files, diff."""

from __future__ import annotations

import time
from pathlib import Path

from corral.sandbox import BaseSandbox


async def test_cd_and_export_persist(sandbox: BaseSandbox) -> None:
    first = await sandbox.exec("cd /tmp; export FOO=bar42", timeout=5)
    assert first.exit_code == 0
    second = await sandbox.exec("pwd; echo $FOO", timeout=5)
    assert second.output == "/tmp\nbar42\n"


async def test_exit_codes_and_stderr_merged(sandbox: BaseSandbox) -> None:
    result = await sandbox.exec("echo out; echo err >&2; false", timeout=5)
    assert result.exit_code == 1
    assert "out\n" in result.output and "err\n" in result.output
    assert (await sandbox.exec("exit 7", timeout=5)).exit_code == 7
    again = await sandbox.exec("echo alive", timeout=5)
    assert again.output == "alive\n" and again.exit_code == 0


async def test_command_cannot_read_the_next_instruction(sandbox: BaseSandbox) -> None:
    result = await sandbox.exec("cat; read -r line; echo read=$?", timeout=5)
    assert result.output == "read=1\n"
    assert (await sandbox.exec("echo next", timeout=5)).output == "next\n"


async def test_sleep_times_out_and_shell_stays_usable(sandbox: BaseSandbox) -> None:
    began = time.monotonic()
    result = await sandbox.exec("sleep 1000", timeout=2)
    assert time.monotonic() - began < 5
    assert result.timed_out and result.exit_code is None
    assert "timed out" in result.output
    assert (await sandbox.exec("echo ok", timeout=5)).output == "ok\n"


async def test_builtin_infinite_loop_recovers_with_cwd_and_env(sandbox: BaseSandbox) -> None:
    await sandbox.exec("mkdir -p sub && cd sub && export KEEP=yes", timeout=5)
    result = await sandbox.exec("while :; do :; done", timeout=1)
    assert result.timed_out
    after = await sandbox.exec('echo "$KEEP"; basename "$PWD"', timeout=5)
    assert after.output == "yes\nsub\n"


async def test_huge_output_is_capped(sandbox: BaseSandbox) -> None:
    result = await sandbox.exec("yes | head -c 50000000", timeout=30)
    assert result.exit_code == 0
    assert result.truncated
    assert "bytes omitted" in result.output
    assert len(result.output) <= sandbox.limits.output_bytes + 200


async def test_binary_output_is_printable(sandbox: BaseSandbox) -> None:
    result = await sandbox.exec("head -c 1000 /dev/urandom", timeout=5)
    assert result.output.isprintable() or result.output.startswith("[binary output")
    assert "\x00" not in result.output


async def test_files_and_diff(sandbox: BaseSandbox, repo: Path) -> None:
    assert await sandbox.read_file("app.py") == b"x = 1\n"
    await sandbox.write_file("app.py", b"x = 2\n")
    await sandbox.exec("mkdir -p pkg && echo 'y = 3' > pkg/new.py", timeout=5)
    shown = await sandbox.exec("cat app.py", timeout=5)
    assert shown.output == "x = 2\n"
    diff = await sandbox.diff()
    assert "-x = 1" in diff and "+x = 2" in diff
    assert "pkg/new.py" in diff and "+y = 3" in diff
    assert (repo / "app.py").read_text() == "x = 1\n"  # the original is untouched


async def test_write_file_is_editable_inside(sandbox: BaseSandbox) -> None:
    await sandbox.write_file("deep/dir/f.txt", b"one\n")
    result = await sandbox.exec("echo two >> deep/dir/f.txt && cat deep/dir/f.txt", timeout=5)
    assert result.output == "one\ntwo\n"


async def test_state_persists_when_last_command_is_external(sandbox: BaseSandbox) -> None:
    """Regression: bash 5.2 exec()s the last command of a file sourced in a subshell."""
    await sandbox.exec("cd /tmp; export BAR=2; sleep 0.1", timeout=5)
    after = await sandbox.exec("pwd; echo $BAR", timeout=5)
    assert after.output == "/tmp\n2\n"


async def test_commands_travel_whole_over_the_pipe(sandbox: BaseSandbox) -> None:
    """Big, multi-line, non-ASCII and NUL-holding commands arrive byte for byte."""
    body = "x" * 300_000
    big = await sandbox.exec(f"cat > big.txt <<'EOF'\n{body}\nEOF\nwc -c < big.txt", timeout=20)
    assert big.output.strip() == str(len(body) + 1)
    uni = await sandbox.exec("printf '%s\\n' 'héllo ✓'; echo a\x00b", timeout=5)
    assert uni.output == "héllo ✓\nab\n"
    bad = await sandbox.exec("echo before\nif then", timeout=5)
    assert bad.exit_code != 0 and "before\n" in bad.output
    assert (await sandbox.exec("echo next", timeout=5)).output == "next\n"


async def test_killing_the_shell_from_inside_recovers(sandbox: BaseSandbox) -> None:
    await sandbox.exec("export KEEP=1", timeout=5)
    term = await sandbox.exec("kill $$; echo after", timeout=5)
    assert term.output == "after\n"  # $$ is the supervisor, which shrugs TERM off
    killed = await sandbox.exec("kill -9 $BASHPID", timeout=5)  # the worker itself
    assert killed.exit_code == 137
    assert (await sandbox.exec("echo $KEEP", timeout=5)).output == "1\n"
