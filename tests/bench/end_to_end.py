"""`make bench`, end-to-end section: one file of each size (10 MB to 4 GiB, random bytes, which do
not compress) sent between two embedded gateways (`mftg serve`, release builds) on 127.0.0.1 with
the default partnership (sign + compress + AES-256, signed synchronous receipt) until ALPHA's
record says delivered with its receipt. Reported: wall time, each gateway's peak resident memory
(VmHWM), whether BETA's file is byte-identical; against the engine's own time to build and open
the same size in memory, where that was measured in the same run.

BENCH_E2E_SIZES (comma-separated MiB, default 10,100,1024,4096; 0 leaves the section out). A
size the disk has no room for (about six times the file) is skipped and says so. Then the Lambda
sender with BENCH_LAMBDA_MIB (default 1024; 0 leaves it out), through the test that checks it
with 48 MiB in `make test`.

Run alone: .venv/bin/python tests/bench/end_to_end.py [MiB ...] (prints JSON).
"""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import throughput  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "bench-out" / "end-to-end"
MIB = 1024 * 1024


def sizes():
    return [int(s) for s in os.environ.get("BENCH_E2E_SIZES", "10,100,1024,4096").split(",") if int(s) > 0]


def peak_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def write_random(path, size):
    """`size` random bytes in `path`; returns their SHA-256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 16 * MIB))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(16 * MIB):
            h.update(block)
    return h.hexdigest()


def configure(cfg, size):
    """Limits that let the file through: the body and the inflated payload, and the POST's time."""
    text = cfg.read_text()
    room = max(size * 2, 1 << 30)
    for old, new in (("max_body_bytes = 4294967296", f"max_body_bytes = {room}"),
                     ("max_decompressed_bytes = 4294967296", f"max_decompressed_bytes = {room}"),
                     ("timeout_secs = 120", "timeout_secs = 3600")):
        if old not in text:
            sys.exit(f"{cfg}: no {old!r} to change; mftg init writes something else now")
        text = text.replace(old, new)
    cfg.write_text(text)


def one(mib):
    size = mib * MIB
    root = OUT / f"{mib}mib"
    if root.exists():
        shutil.rmtree(root)
    OUT.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(OUT).free
    if free < 6 * size + (2 << 30):
        return {"mib": mib, "skipped": f"{free / (1 << 30):.0f} GiB free, about {6 * size / (1 << 30) + 2:.0f} needed"}
    sites, ports, env = throughput.setup(root, 1)
    for cfg in sites.values():
        configure(cfg, size)
    env = dict(env, RUST_LOG="warn")
    procs = {sid: subprocess.Popen([str(throughput.MFTG), "serve", "-c", str(cfg)], env=env,
                                   stderr=open(root / f"{sid}.log", "w"))
             for sid, cfg in sites.items()}
    try:
        for port in ports.values():
            throughput.wait_health(port)
        rest = {sid: peak_kib(p.pid) for sid, p in procs.items()}
        send = root / "alpha/data/AS2/send/ALPHA/BETA"
        send.mkdir(parents=True, exist_ok=True)
        tmp = send / ".big.tmp"
        digest = write_random(tmp, size)
        db = root / "alpha/data/.mftg/gateway.sqlite"
        start = time.monotonic()
        tmp.rename(send / "big.bin")
        limit = start + 120 + size / (5 * MIB)
        while True:
            records = [r for r in throughput.delivered(db) if r["filename"] == "big.bin"]
            if records and records[0]["status"] in ("delivered", "failed"):
                break
            if time.monotonic() > limit:
                sys.exit(f"{mib} MiB: not delivered in time: {records}")
            time.sleep(0.5)
        wall = time.monotonic() - start
        peaks = {sid: peak_kib(p.pid) for sid, p in procs.items()}
        record = records[0]
        if record["status"] != "delivered":
            sys.exit(f"{mib} MiB: {record['history'][-1]}")
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(timeout=60)
    received = list((root / "beta/data/AS2/files/BETA/ALPHA/inbox").glob("*/big.bin"))
    identical = len(received) == 1 and sha256(received[0]) == digest
    shutil.rmtree(root)
    if not identical:
        sys.exit(f"{mib} MiB: BETA's file is not the one sent")
    return {
        "mib": mib,
        "wall_s": wall,
        "mib_per_s": mib / wall,
        "alpha_rest_mib": rest["ALPHA"] / 1024,
        "beta_rest_mib": rest["BETA"] / 1024,
        "alpha_peak_mib": peaks["ALPHA"] / 1024,
        "beta_peak_mib": peaks["BETA"] / 1024,
        "identical": identical,
    }


def lambda_sender(mib):
    """as2-sender (the real binary, under the Lambda Runtime API emulator, against moto) sending
    `mib` MiB to an embedded gateway: the test that checks 48 MiB in `make test`, at this size,
    release builds (the embedded gateway runs in the test's process)."""
    if mib <= 0:
        return None
    env = dict(os.environ, MFTG_LAMBDA_LARGE_MIB=str(mib))
    p = subprocess.run(
        ["tests/with-moto.sh", "cargo", "test", "--quiet", "--release", "-p", "gateway-lambdas", "--test",
         "embedded_partner", "--", "--nocapture"],
        cwd=ROOT, env=env, capture_output=True, text=True)
    line = next((l for l in p.stderr.splitlines() if l.startswith("as2-sender: peak")), None)
    if p.returncode != 0 or line is None:
        return {"mib": mib, "failed": (p.stdout + p.stderr)[-2000:]}
    words = line.split()
    return {"mib": mib, "rest_mib": int(words[2]) / 1024, "peak_mib": int(words[8]) / 1024}


def measure(which=None):
    throughput.sh("cargo", "build", "--quiet", "--release", "-p", "mftg-cli", "--no-default-features", cwd=ROOT)
    runs = []
    for mib in which or sizes():
        runs.append(one(mib))
        print(f"end to end, {mib} MiB done", flush=True)
    lam = lambda_sender(int(os.environ.get("BENCH_LAMBDA_MIB", "1024")))
    if lam:
        runs.append(dict(lam, lambda_sender=True))
        print(f"Lambda sender, {lam['mib']} MiB done", flush=True)
    return runs


def report(runs, engine=None):
    """`engine`: {MiB: seconds the engine took to build and open that size in memory}."""
    engine = engine or {}
    lines = [
        "## End to end: one large file between two embedded gateways",
        "",
        "One file of random bytes (they do not compress) dropped into ALPHA's send folder and sent to",
        "BETA on 127.0.0.1 with the default partnership (sign + compress + AES-256, signed synchronous",
        "receipt), until ALPHA's record says delivered; both gateways are `mftg serve` release builds,",
        "both streaming (past `stream_above_bytes`, 8 MiB, the sender reads, builds and posts a part",
        "at a time; the receiver stores the body and opens it as it reads it back). Peak memory is",
        "each process's VmHWM; at rest is its figure before the file. BETA's file is checked byte for",
        "byte (SHA-256). The engine column is `pipeline build` plus `pipeline open` of the same size in",
        "memory, from the first section of this run.",
        "",
        "| size | wall time | MiB/s | vs engine | ALPHA peak (rest) | BETA peak (rest) | identical |",
        "|---|---|---|---|---|---|---|",
    ]
    lam = next((r for r in runs if r.get("lambda_sender")), None)
    runs = [r for r in runs if not r.get("lambda_sender")]
    for r in runs:
        if "skipped" in r:
            lines.append(f"| {r['mib']} MiB | skipped: {r['skipped']} | | | | | |")
            continue
        e = engine.get(r["mib"])
        vs = f"{r['wall_s'] / e:.1f}x" if e else "-"
        lines.append(
            f"| {r['mib']} MiB | {r['wall_s']:.1f} s | {r['mib_per_s']:.0f} | {vs} | "
            f"{r['alpha_peak_mib']:.0f} MiB ({r['alpha_rest_mib']:.0f}) | "
            f"{r['beta_peak_mib']:.0f} MiB ({r['beta_rest_mib']:.0f}) | {'yes' if r['identical'] else 'NO'} |"
        )
    big = [r for r in runs if "skipped" not in r and r["mib"] >= 1024]
    lines.append("")
    if big:
        worst = max(max(r["alpha_peak_mib"], r["beta_peak_mib"]) for r in big)
        sizes_ = ", ".join(f"{r['mib'] // 1024} GiB" for r in big)
        lines.append(f"- Peak RSS of each gateway at most 64 MiB for {sizes_}: {worst:.0f} MiB at most, "
                     + ("met." if worst <= 64 else "NOT met."))
    if lam and "failed" in lam:
        lines.append(f"- The Lambda sender with {lam['mib']} MiB: the run failed:")
        lines += ["", "```", lam["failed"], "```", ""]
    elif lam:
        lines.append(
            f"- The Lambda sender (as2-sender under the Runtime API emulator, against moto, to an embedded "
            f"gateway) sends {lam['mib']} MiB with at most 128 MiB resident: {lam['peak_mib']:.0f} MiB "
            f"({lam['rest_mib']:.0f} after a small message), " + ("met." if lam["peak_mib"] <= 128 else "NOT met."))
    if not any(r["mib"] == 4096 and "skipped" not in r for r in runs):
        lines.append("- 4 GiB end to end: not run here (see the table).")
    else:
        lines.append("- 4 GiB end to end, byte-identical: met.")
    lines.append("")
    return lines


if __name__ == "__main__":
    which = [int(a) for a in sys.argv[1:]] or None
    print(json.dumps(measure(which), indent=2))
