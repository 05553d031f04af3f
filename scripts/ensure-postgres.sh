#!/usr/bin/env bash
# The suite tests against the machine's PostgreSQL (127.0.0.1:5432, trust auth, database
# `test`). If the cluster is installed but stopped (say a chaos test was interrupted while
# it had it down), start it; never install or reconfigure anything.
set -euo pipefail
command -v pg_isready >/dev/null || exit 0
pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
for version in $(ls /etc/postgresql 2>/dev/null); do
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
done
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done
echo "PostgreSQL is not answering on 127.0.0.1:5432; the store tests need it" >&2
exit 1
