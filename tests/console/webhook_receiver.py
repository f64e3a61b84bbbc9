"""A webhook receiver on 127.0.0.1 for crates/cli/tests/webhooks.rs: checks each POST's
HMAC-SHA256 signature with Python's own hmac module, and writes one JSON line per request to
OUT: {"ok": bool, "delivery": ..., "event": {...}, "answered": status, "late": bool}
(late: answered after SLOW_SECS, which the sender may no longer be waiting for). Its first FAIL requests
are answered 500, and the next SLOW ones only after SLOW_SECS seconds (to look like a partner
that is down, then one that hangs); the rest 204.

Usage: webhook_receiver.py PORT SECRET OUT FAIL SLOW SLOW_SECS
"""
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, SECRET, OUT = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
FAIL, SLOW, SLOW_SECS = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
lock = threading.Lock()
seen = {"n": 0}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        stamp = self.headers.get("X-MFTG-Timestamp", "")
        given = self.headers.get("X-MFTG-Signature", "")
        want = "sha256=" + hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(given, want)
        with lock:
            seen["n"] += 1
            n = seen["n"]
        late = False
        if n <= FAIL:
            status = 500
        elif n <= FAIL + SLOW:
            time.sleep(SLOW_SECS)
            status, late = 204, True
        else:
            status = 204 if ok else 401
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        with lock, open(OUT, "a") as f:
            f.write(json.dumps({"ok": ok, "delivery": self.headers.get("X-MFTG-Delivery"),
                                "kind": self.headers.get("X-MFTG-Event"), "event": event,
                                "answered": status, "late": late}) + "\n")
        try:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass  # the gateway gave up waiting

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
