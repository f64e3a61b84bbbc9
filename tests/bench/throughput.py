"""`make bench`, throughput section. Out: two embedded gateways (`mftg serve`, release build) on
127.0.0.1; a burst of small files dropped into ALPHA's send folder at once, each sent to BETA
(sign + compress + AES-256, signed synchronous receipt, the default partnership), until every one
is delivered. In: messages built beforehand (`pipeline build-set`) POSTed to one gateway by 1, 8
and 32 clients at once, each answered with its signed receipt. Reported: messages per second,
each gateway's CPU per message, and latencies (p50, p99), against the engine's own CPU for
building and opening the same message, measured in the same run (`pipeline build-many`). The
burst is run once more with both gateways' data on tmpfs (`/dev/shm`, where a flush to disk costs
nothing): the difference is what the disk's flushes and folders cost each message.

Run alone: .venv/bin/python tests/bench/throughput.py [files] (prints JSON).
"""
import json
import os
import pathlib
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "bench-out" / "throughput"
MFTG = ROOT / "target/release/mftg"
PIPELINE = ROOT / "target/release/examples/pipeline"
PASSWORD = "Bench-Keystore-1"
TICK = os.sysconf("SC_CLK_TCK")


def sh(*args, cwd=None, env=None):
    p = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{p.stdout}{p.stderr}")
    return p.stdout


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu(pid):
    """CPU seconds (user + system) the process has used."""
    f = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def setup(root, partner_concurrency):
    env = dict(os.environ, MFTG_KEYSTORE_PASSWORD=PASSWORD)
    ports = {"ALPHA": free_port(), "BETA": free_port()}
    sites = {}
    for sid in ("ALPHA", "BETA"):
        d = root / sid.lower()
        d.mkdir(parents=True)
        cfg = d / "mftg.toml"
        sh(MFTG, "init", "-c", cfg, "--station", sid, "--listen", f"127.0.0.1:{ports[sid]}", env=env)
        sh(MFTG, "keys", "generate", "-c", cfg, "--alias", sid.lower(), env=env)
        (root / f"{sid}.crt").write_text(sh(MFTG, "keys", "export", "-c", cfg, "--alias", sid.lower(), env=env))
        sites[sid] = cfg
    for sid, other in (("ALPHA", "BETA"), ("BETA", "ALPHA")):
        cfg = sites[sid]
        sh(MFTG, "keys", "trust", "-c", cfg, "--alias", other.lower(), "--cert", root / f"{other}.crt", env=env)
        sh(MFTG, "partners", "add", "-c", cfg, "--station", sid, "--partner", other, "--url",
           f"http://127.0.0.1:{ports[other]}/as2", "--cert-alias", other.lower(), env=env)
        text = cfg.read_text()
        # Files are complete when written (renamed into place): no need to wait for stillness.
        for old, new in (("upload_quiet_ms = 5000", "upload_quiet_ms = 200"),
                         ("partner_concurrency = 1", f"partner_concurrency = {partner_concurrency}")):
            if old not in text:
                sys.exit(f"{cfg}: no {old!r} to change; mftg init writes something else now")
            text = text.replace(old, new)
        cfg.write_text(text)
    return sites, ports, env


# Where an earlier run's folders are moved, to be removed once this run has measured: on ext4
# without a journal (this machine's disk), creating a file right after thousands were deleted
# costs up to a millisecond more (the allocator passes over inodes freed within the last minutes),
# which a burst measured just after removing the last run's files would count as the gateway's.
OLD = OUT / "old"


# tmpfs, where the burst runs once more: memory, no disk (None where there is none).
IN_MEMORY = pathlib.Path("/dev/shm/mftg-bench-throughput")


def in_memory():
    """IN_MEMORY, made afresh, if /dev/shm is a tmpfs here."""
    mounts = pathlib.Path("/proc/mounts").read_text().split("\n")
    if not any(m.split()[1:3] == ["/dev/shm", "tmpfs"] for m in mounts if m.strip()):
        return None
    shutil.rmtree(IN_MEMORY, ignore_errors=True)
    IN_MEMORY.mkdir(parents=True)
    return IN_MEMORY


def fresh(root):
    """`root`, not there: an earlier run's is moved under OLD, not deleted now."""
    if root.exists():
        OLD.mkdir(parents=True, exist_ok=True)
        root.rename(OLD / f"{root.name}-{time.time_ns()}")
    return root


def wait_health(port):
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"no gateway on port {port}")


def delivered(db):
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT json FROM records WHERE direction = 'outbox'").fetchall()
    finally:
        con.close()
    return [json.loads(r[0]) for r in rows]


def burst(files, size, partner_concurrency, under=OUT):
    root = fresh(under / f"burst-{partner_concurrency}")
    sites, ports, env = setup(root, partner_concurrency)
    env = dict(env, RUST_LOG="warn")
    procs = {sid: subprocess.Popen([str(MFTG), "serve", "-c", str(cfg)], env=env,
                                   stderr=open(root / f"{sid}.log", "w"))
             for sid, cfg in sites.items()}
    try:
        for sid, port in ports.items():
            wait_health(port)
        send = root / "alpha/data/AS2/send/ALPHA/BETA"
        send.mkdir(parents=True, exist_ok=True)
        db = root / "alpha/data/.mftg/gateway.sqlite"
        body = (b"ISA*00*BENCH~ST*850*0001~" * (size // 25 + 1))[:size]
        cpu0 = {sid: cpu(p.pid) for sid, p in procs.items()}
        start = time.monotonic()
        for n in range(files):
            tmp = send / f".po-{n}.tmp"
            tmp.write_bytes(body)
            tmp.rename(send / f"po-{n:05d}.x12")
        limit = start + 60 + files
        while True:
            records = delivered(db)
            done = [r for r in records if r["status"] == "delivered"]
            failed = [r for r in records if r["status"] == "failed"]
            if failed:
                sys.exit(f"{len(failed)} failed: {failed[0]['history'][-1]}")
            if len(done) == files:
                break
            if time.monotonic() > limit:
                sys.exit(f"only {len(done)} of {files} delivered in time")
            time.sleep(0.2)
        wall = time.monotonic() - start
        used = {sid: cpu(p.pid) - cpu0[sid] for sid, p in procs.items()}
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(timeout=30)
    latencies = sorted((r["history"][-1]["at"] - r["history"][0]["at"]) / 1000 for r in done)
    received = list((root / "beta/data/AS2/files/BETA/ALPHA/inbox").glob("*/*"))
    if len(received) != files or any(f.read_bytes() != body for f in received):
        sys.exit("BETA did not receive every file as sent")
    return {
        "files": files,
        "size": size,
        "partner_concurrency": partner_concurrency,
        "wall_s": wall,
        "per_s": files / wall,
        "send_cpu_s": used["ALPHA"] / files,
        "receive_cpu_s": used["BETA"] / files,
        "p50_s": statistics.median(latencies),
        "p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def post_all(port, messages, clients):
    """POSTs every message (headers, blank line, body files) with `clients` keep-alive
    connections at once; returns each request's seconds."""
    import concurrent.futures
    import http.client
    import threading

    local = threading.local()

    def one(path):
        data = path.read_bytes()
        head, body = data.split(b"\r\n\r\n", 1)
        headers = {}
        last = None
        for line in head.decode("latin-1").split("\r\n"):
            if line[:1] in (" ", "\t") and last:
                headers[last] += " " + line.strip()
                continue
            name, value = line.split(":", 1)
            last = name.strip()
            headers[last] = value.strip()
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start = time.monotonic()
        local.conn.request("POST", "/as2", body=body, headers=headers)
        r = local.conn.getresponse()
        answer = r.read()
        took = time.monotonic() - start
        if r.status != 200 or b"processed" not in answer:
            sys.exit(f"{path.name}: HTTP {r.status}: {answer[:300]!r}")
        return took

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, messages))


def inbound(messages, size, clients):
    root = fresh(OUT / f"in-{clients}")
    (root / "beta").mkdir(parents=True)
    env = dict(os.environ, MFTG_KEYSTORE_PASSWORD=PASSWORD)
    cfg = root / "beta/mftg.toml"
    port = free_port()
    sh(MFTG, "init", "-c", cfg, "--station", "BETA", "--listen", f"127.0.0.1:{port}", env=env)
    sh(MFTG, "keys", "import", "-c", cfg, "--alias", "beta", "--key", OUT / "b.key", "--cert", OUT / "b.crt", env=env)
    sh(MFTG, "keys", "trust", "-c", cfg, "--alias", "alpha", "--cert", OUT / "a.crt", env=env)
    sh(MFTG, "partners", "add", "-c", cfg, "--station", "BETA", "--partner", "ALPHA", "--url",
       "http://127.0.0.1:9/as2", "--cert-alias", "alpha", env=env)
    proc = subprocess.Popen([str(MFTG), "serve", "-c", str(cfg)], env=dict(env, RUST_LOG="warn"),
                            stderr=open(root / "beta.log", "w"))
    try:
        wait_health(port)
        cpu0 = cpu(proc.pid)
        start = time.monotonic()
        took = sorted(post_all(port, messages, clients))
        wall = time.monotonic() - start
        used = cpu(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    inbox = list((root / "beta/data/AS2/files/BETA/ALPHA/inbox").glob("*/*"))
    if len(inbox) != len(messages):
        sys.exit(f"{len(inbox)} of {len(messages)} messages in BETA's inbox")
    return {
        "messages": len(messages),
        "size": size,
        "clients": clients,
        "wall_s": wall,
        "per_s": len(messages) / wall,
        "cpu_s": used / len(messages),
        "p50_s": statistics.median(took),
        "p99_s": took[min(len(took) - 1, int(len(took) * 0.99))],
    }


def engine(size):
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("a", "b"):
        if not (OUT / f"{name}.key").exists():
            sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", OUT / f"{name}.key",
               "-out", OUT / f"{name}.crt", "-subj", f"/CN={name.upper()}", "-days", "30")
    payload = OUT / "payload.x12"
    payload.write_bytes((b"ISA*00*BENCH~ST*850*0001~" * (size // 25 + 1))[:size])
    out = sh(PIPELINE, "build-many", 500, payload, OUT / "a.crt", OUT / "a.key", OUT / "b.crt")
    return json.loads(out)


def measure(files=500, size=10 * 1024):
    sh("cargo", "build", "--quiet", "--release", "-p", "mftg-cli", "--no-default-features", cwd=ROOT)
    sh("cargo", "build", "--quiet", "--release", "-p", "as2", "--example", "pipeline", cwd=ROOT)
    result = {"engine": engine(size), "bursts": [burst(files, size, c) for c in (1, 4)]}
    memory = in_memory()
    if memory:
        try:
            result["in_memory"] = burst(files, size, 1, memory)
        finally:
            shutil.rmtree(memory, ignore_errors=True)
    incoming = fresh(OUT / "incoming")
    count = max(1, files * 2 // 5)
    sh(PIPELINE, "build-set", count, incoming, OUT / "payload.x12", OUT / "a.crt", OUT / "a.key", OUT / "b.crt")
    messages = sorted(incoming.glob("*.as2"))
    result["inbound"] = [inbound(messages, size, c) for c in (1, 8, 32)]
    subprocess.run(["rm", "-rf", str(OLD)], check=True)
    return result


def report(t):
    e = t["engine"]
    lines = [
        "## Throughput: small files between two embedded gateways",
        "",
        f"A burst of {t['bursts'][0]['files']} files of {t['bursts'][0]['size'] // 1024} KB dropped into ALPHA's send folder at once,",
        "sent to BETA on 127.0.0.1 (sign + compress + AES-256, signed synchronous receipt) until every",
        "one is delivered; both gateways are `mftg serve` release builds. CPU per message is each",
        "gateway process's CPU over the burst divided by the files; the engine's own figures are",
        f"`pipeline build-many` in the same run: {e['build_cpu_s'] * 1000:.2f} ms to build, {e['open_cpu_s'] * 1000:.2f} ms to open one,",
        f"{e['receipt_build_cpu_s'] * 1000:.2f} ms to build its signed receipt and {e['receipt_check_cpu_s'] * 1000:.2f} ms to read and check it.",
        "The columns \"with receipt\" compare with the engine's whole share of the exchange: the",
        "sender's build plus the receipt's check, the receiver's open plus the receipt's build.",
        "",
        "| partner_concurrency | messages/s | sender CPU/msg | vs engine build | with receipt | receiver CPU/msg | vs engine open | with receipt | p50 | p99 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    send_engine = e["build_cpu_s"] + e["receipt_check_cpu_s"]
    receive_engine = e["open_cpu_s"] + e["receipt_build_cpu_s"]

    def row(label, b):
        return (
            f"| {label} | {b['per_s']:.1f} | {b['send_cpu_s'] * 1000:.2f} ms | "
            f"{b['send_cpu_s'] / e['build_cpu_s']:.1f}x | {b['send_cpu_s'] / send_engine:.1f}x | "
            f"{b['receive_cpu_s'] * 1000:.2f} ms | {b['receive_cpu_s'] / e['open_cpu_s']:.1f}x | "
            f"{b['receive_cpu_s'] / receive_engine:.1f}x | {b['p50_s']:.2f} s | {b['p99_s']:.2f} s |"
        )

    lines += [row(b["partner_concurrency"], b) for b in t["bursts"]]
    m = t.get("in_memory")
    if m:
        disk = t["bursts"][0]
        lines.append(row(f"{m['partner_concurrency']}, data on tmpfs", m))

        def share(k):
            return max(0.0, disk[k] - m[k]) / disk[k]

        lines += [
            "",
            "The last row is the first burst again with both gateways' data on tmpfs (`/dev/shm`),",
            "where flushing a file or a folder to disk costs nothing: the disk's flushes and new",
            f"folders are {share('send_cpu_s') * 100:.0f}% of the sender's CPU per message and "
            f"{share('receive_cpu_s') * 100:.0f}% of the receiver's. What is left",
            "(the engine, the receipt, HTTP, the message log, the queue) is still "
            f"{m['send_cpu_s'] / e['build_cpu_s']:.1f}x the engine's build and {m['receive_cpu_s'] / e['open_cpu_s']:.1f}x its open.",
        ]
    if t.get("inbound"):
        first = t["inbound"][0]
        lines += [
            "",
            f"In: {first['messages']} messages of {first['size'] // 1024} KB (built beforehand by the engine, ALPHA to BETA,",
            "signed, compressed, encrypted, asking for a signed synchronous receipt) POSTed to one",
            "gateway by 1, 8 and 32 clients at once over keep-alive connections; each answered with",
            "its receipt and stored.",
            "",
            "| clients | messages/s | CPU/msg | vs engine open | with receipt | p50 | p99 |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in t["inbound"]:
            lines.append(
                f"| {b['clients']} | {b['per_s']:.1f} | {b['cpu_s'] * 1000:.2f} ms | "
                f"{b['cpu_s'] / e['open_cpu_s']:.1f}x | {b['cpu_s'] / receive_engine:.1f}x | "
                f"{b['p50_s'] * 1000:.0f} ms | {b['p99_s'] * 1000:.0f} ms |"
            )
    worst_send = max(b["send_cpu_s"] / e["build_cpu_s"] for b in t["bursts"])
    worst_recv = max(b["receive_cpu_s"] / e["open_cpu_s"] for b in t["bursts"])
    lines += [
        "",
        f"- Sending a small message costs at most 1.5x the engine's build: {worst_send:.1f}x, "
        + ("met." if worst_send <= 1.5 else "NOT met."),
        f"- Receiving one costs at most 1.5x the engine's open: {worst_recv:.1f}x, "
        + ("met." if worst_recv <= 1.5 else "NOT met."),
        f"- Against the engine's whole share of the exchange (receipt included): sending "
        f"{max(b['send_cpu_s'] for b in t['bursts']) / send_engine:.1f}x, receiving "
        f"{max(b['receive_cpu_s'] for b in t['bursts']) / receive_engine:.1f}x (what the gateway adds: its log, "
        "its files, HTTP, the queue).",
        "",
        "`partner_concurrency = 1` (the default) keeps one partnership's messages in order, one",
        "in flight at a time; the sender's CPU per message includes its share of the receipt it",
        "checks, the message log and the files it writes (payload, raw message, headers, receipt),",
        "which the engine alone does not do.",
        "",
    ]
    return lines


if __name__ == "__main__":
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    print(json.dumps(measure(files), indent=2))
