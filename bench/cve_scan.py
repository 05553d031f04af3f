"""Benchmark: scan 1,000 generated repositories against the whole PyPA advisory snapshot.

Goal (issue 6): the full set in under 10 s on the 2-core dev machine, database load included.
Repos mix every manifest format, real vulnerable pins, safe pins and packages drawn from the
whole snapshot, so lazy parsing ends up touching most of the database, as a real fleet would.

    .venv/bin/python bench/cve_scan.py [--repos 1000] [--db PATH] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path

from corral.workflows.cve import OsvDatabase, plan_fixes, scan_repo

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / ".." / "shared" / "data" / "pypa-advisory-db"
GOAL_S = 10.0
VULNERABLE = [
    ("PyYAML", "5.3.1"),
    ("urllib3", "1.26.5"),
    ("urllib3", "2.0.4"),
    ("py", "1.11.0"),
    ("requests", "2.19.0"),
    ("Jinja2", "2.10"),
    ("Pillow", "8.1.0"),
    ("Django", "2.2.0"),
    ("Flask", "0.12"),
    ("lxml", "4.6.2"),
    ("cryptography", "3.2"),
    ("aiohttp", "3.8.1"),
    ("setuptools", "65.0.0"),
    ("numpy", "1.16.0"),
    ("paramiko", "2.4.0"),
]
SAFE = [
    ("PyYAML", "6.0.1"),
    ("urllib3", "2.2.3"),
    ("requests", "2.32.3"),
    ("Jinja2", "3.1.4"),
    ("click", "8.1.7"),
    ("attrs", "24.2.0"),
    ("six", "1.16.0"),
    ("packaging", "24.1"),
    ("idna", "3.10"),
    ("certifi", "2024.8.30"),
    ("Flask-Caching", "1.10.1"),
]


def pins(rng: random.Random, pool_names: list[str]) -> list[tuple[str, str]]:
    out = rng.sample(VULNERABLE, rng.randint(0, 3)) + rng.sample(SAFE, rng.randint(2, 6))
    # Packages from anywhere in the snapshot, at versions old enough to often be affected.
    out += [(n, f"{rng.randint(0, 3)}.{rng.randint(0, 12)}") for n in rng.sample(pool_names, 6)]
    return list(dict(out).items())


def write_repo(path: Path, rng: random.Random, pool_names: list[str]) -> None:
    path.mkdir(parents=True)
    deps = pins(rng, pool_names)
    style = rng.randrange(6)
    if style == 0:
        lines = [f"{n}=={v} --hash=sha256:{'ab' * 32}" for n, v in deps]
        (path / "requirements.txt").write_text("-r requirements-base.txt\n" + "\n".join(lines[1:]))
        (path / "requirements-base.txt").write_text(lines[0] + "\n# base\n")
    elif style == 1:
        body = ",\n".join(f'  "{n}=={v}"' for n, v in deps)
        (path / "pyproject.toml").write_text(
            f'[project]\nname = "r"\ndependencies = [\n{body}\n]\n'
        )
    elif style == 2:
        body = "\n".join(f'{n} = "^{v}"' for n, v in deps)
        (path / "pyproject.toml").write_text(
            f'[tool.poetry.dependencies]\npython = "^3.9"\n{body}\n'
        )
        lock = "\n".join(f'[[package]]\nname = "{n}"\nversion = "{v}"\n' for n, v in deps)
        (path / "poetry.lock").write_text(lock)
    elif style == 3:
        lock = "\n".join(
            f'[[package]]\nname = "{n}"\nversion = "{v}"\n'
            'source = { registry = "https://pypi.org/simple" }\n'
            for n, v in deps
        )
        (path / "uv.lock").write_text("version = 1\n\n" + lock)
    elif style == 4:
        default = {n: {"version": f"=={v}", "hashes": []} for n, v in deps}
        (path / "Pipfile.lock").write_text(
            json.dumps({"_meta": {}, "default": default, "develop": {}}, indent=4)
        )
    else:
        lock = "\n".join(f'[[packages]]\nname = "{n}"\nversion = "{v}"\n' for n, v in deps)
        (path / "pylock.toml").write_text('lock-version = "1.0"\n\n' + lock)
        (path / "requirements.txt").write_text("pyyaml>=5.1,<6\n")


async def scan_all(repos: list[Path], db_path: Path, cache: Path) -> dict[str, float | int]:
    t0 = time.perf_counter()
    db = OsvDatabase.open(db_path, cache_dir=cache)
    t_open = time.perf_counter() - t0
    findings = upgrades = unfixable = errors = 0
    for repo in repos:
        report = await scan_repo(repo, db)
        plan = await plan_fixes(report, db)
        findings += len(report.findings)
        errors += len(report.errors)
        upgrades += len(plan.upgrades)
        unfixable += len(plan.unfixable)
    total = time.perf_counter() - t0
    if not db.cached:
        db.save_cache()  # for the warm run
    return {
        "parse_cache_used": int(db.cached),
        "db_open_s": round(t_open, 3),
        "total_s": round(total, 3),
        "findings": findings,
        "upgrades_planned": upgrades,
        "unfixable": unfixable,
        "errors": errors,
        "advisory_files": len(db),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--db", type=Path, default=SNAPSHOT)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="JSON directory")
    ap.add_argument("--quick", action="store_true", help="20 repos")
    args = ap.parse_args()
    if args.quick:
        args.repos = 20
    rng = random.Random(args.seed)
    pool = sorted(p.name for p in (args.db / "vulns").iterdir() if p.is_dir())
    with tempfile.TemporaryDirectory(prefix="corral-cve-bench-") as tmp:
        t0 = time.perf_counter()
        repos = [Path(tmp, f"repo{i:04d}") for i in range(args.repos)]
        for repo in repos:
            write_repo(repo, rng, pool)
        gen_s = time.perf_counter() - t0
        cache = Path(tmp, "cache")
        cold = asyncio.run(scan_all(repos, args.db, cache))
        warm = asyncio.run(scan_all(repos, args.db, cache))
    total = float(warm["total_s"])
    result = {
        "benchmark": "cve_scan",
        "repos": args.repos,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "generate_s": round(gen_s, 3),
        "cold": cold | {"repos_per_s": round(args.repos / float(cold["total_s"]), 1)},
        "warm": warm | {"repos_per_s": round(args.repos / total, 1)},
        "goal_s": GOAL_S,
        "meets_goal_cold": float(cold["total_s"]) < GOAL_S,
        "meets_goal_warm": total < GOAL_S,
    }
    out = args.out / "cve_scan.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name, run in (("cold (YAML parsed lazily)", cold), ("warm (parse cache)", warm)):
        secs = float(run["total_s"])
        verdict = "met" if secs < GOAL_S else "MISSED"
        print(
            f"{name}: {args.repos} repos scanned + planned in {secs:.2f} s "
            f"({args.repos / secs:.1f} repos/s; db open {run['db_open_s']} s); "
            f"goal < {GOAL_S:.0f} s {verdict}"
        )
    print(
        f"{warm['findings']} findings, {warm['upgrades_planned']} upgrades, "
        f"{warm['unfixable']} unfixable, {warm['errors']} errors; "
        f"load avg {result['load_avg_1m']} on {os.cpu_count()} cpus -> {out}"
    )


if __name__ == "__main__":
    main()
