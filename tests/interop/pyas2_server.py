"""A pyas2lib trading partner over HTTP, for the gateway's end-to-end tests.

    python pyas2_server.py serve CONFIG.json                  # receive until killed
    python pyas2_server.py send CONFIG.json FILE [PROFILE]    # send FILE to the gateway, print the result
    python pyas2_server.py send-many CONFIG.json LIST.json    # [{"file", "as2_id", "content_type"}], a result a line

CONFIG.json: {"port", "dir", "name", "key", "cert", "partner": {"name", "cert", "url", "trust"},
"mdn": "SYNC"|"ASYNC", "profiles": {AS2 ID: {"sign", "digest", "sign_alg", "encrypt", "cipher",
"key_enc_alg", "compress", "mdn", "mdn_digest"}}}. pyas2lib answers as whatever AS2 ID it is sent to; a profile (by that
ID, default `name`) says what it expects from the partner and how it sends as that ID (signed
SHA-256, AES-256, compressed and a signed receipt unless the profile says otherwise). What the
server sees goes to <dir>/events.jsonl, one JSON object a line; received payloads to
<dir>/received/<AS2 ID>/. `send` records what it sent under <dir>/sent/ so the server can match
the asynchronous receipt for it.
"""
import json
import logging
import pathlib
import ssl
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pyas2lib import Mdn, Message, Organization, Partner

logging.disable(logging.CRITICAL)


def load(path):
    cfg = json.loads(pathlib.Path(path).read_text())
    d = pathlib.Path(cfg["dir"])
    for sub in ("received", "sent"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    return cfg, d


def profile(cfg, as2_id):
    p = {"sign": True, "digest": "sha256", "sign_alg": "rsassa_pkcs1v15", "encrypt": True,
         "cipher": "aes_256_cbc", "key_enc_alg": "rsaes_pkcs1v15", "compress": True,
         "mdn": cfg.get("mdn", "SYNC"), "mdn_digest": "sha256"}
    p.update(cfg.get("profiles", {}).get(as2_id, {}))
    return p


def org(cfg, as2_id):
    pem = pathlib.Path(cfg["cert"]).read_bytes() + pathlib.Path(cfg["key"]).read_bytes()
    return Organization(
        as2_name=as2_id,
        sign_key=pem,
        decrypt_key=pem,
        mdn_url=f"http://127.0.0.1:{cfg['port']}/as2",
        domain="pyas2.test",
    )


def partner(cfg, as2_id):
    """The gateway's station, as pyas2lib playing `as2_id` trades with it."""
    p = profile(cfg, as2_id)
    pcert = pathlib.Path(cfg["partner"]["cert"]).read_bytes()
    return Partner(
        as2_name=cfg["partner"]["name"],
        verify_cert=pcert,
        encrypt_cert=pcert,
        sign=p["sign"],
        digest_alg=p["digest"],
        sign_alg=p["sign_alg"],
        encrypt=p["encrypt"],
        enc_alg=p["cipher"],
        key_enc_alg=p["key_enc_alg"],
        compress=p["compress"],
        mdn_mode=p["mdn"],
        mdn_digest_alg=p["mdn_digest"],
    )


def event(d, **kw):
    with open(d / "events.jsonl", "a") as f:
        f.write(json.dumps(kw) + "\n")


def sent_message(cfg, d, message_id):
    path = d / "sent" / (message_id.strip("<>").replace("/", "_") + ".json")
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    m = Message(org(cfg, info["as2_id"]), partner(cfg, info["as2_id"]))
    m.message_id = info["message_id"]
    m.mic = info["mic"].encode() if info.get("mic") else None
    return m


def serve(cfg_path):
    cfg, d = load(cfg_path)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            raw = b"".join(f"{k}: {v}\r\n".encode() for k, v in self.headers.items()) + b"\r\n" + body
            mdn = Mdn()
            status, detail = mdn.parse(raw, find_message_cb=lambda mid, _r: sent_message(cfg, d, mid))
            if detail != "mdn-not-found":
                event(d, kind="mdn", status=status, detail=detail, original=mdn.orig_message_id)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            msg = Message()
            status, (exc, _), mdn = msg.parse(
                raw, find_org_partner_cb=lambda to, frm: (org(cfg, to), partner(cfg, to)))
            name = None
            to = msg.receiver.as2_name if msg.receiver else None
            if status == "processed":
                name = msg.payload.get_filename() or "payload.bin"
                (d / "received" / to).mkdir(parents=True, exist_ok=True)
                (d / "received" / to / name).write_bytes(msg.content)
            event(d, kind="message", status=status, error=str(exc) if exc else None,
                  message_id=msg.message_id, to=to, filename=name, signed=msg.signed,
                  encrypted=msg.encrypted, compressed=msg.compressed,
                  mic=msg.mic.decode() if msg.mic else None, digest=msg.digest_alg)
            if mdn is None or mdn.mdn_mode == "ASYNC":
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if mdn is not None:
                    threading.Thread(target=post_async_mdn, args=(d, mdn), daemon=True).start()
                return
            content = mdn.content
            self.send_response(200)
            for k, v in mdn.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

    server = ThreadingHTTPServer(("127.0.0.1", cfg["port"]), Handler)
    event(d, kind="listening", port=cfg["port"])
    server.serve_forever()


def post_async_mdn(d, mdn):
    req = urllib.request.Request(mdn.mdn_url, data=mdn.content, headers=dict(mdn.headers), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            event(d, kind="async-mdn-posted", status=r.status)
    except Exception as e:  # reported, not raised: the test reads the events
        event(d, kind="async-mdn-posted", status=None, error=str(e))


def send(cfg_path, file, as2_id=None):
    cfg, d = load(cfg_path)
    print(json.dumps(send_one(cfg, d, file, as2_id)))


def send_many(cfg_path, list_path):
    """Sends each {"file", "as2_id"} of the list in one process; prints a JSON report a line."""
    cfg, d = load(cfg_path)
    for item in json.loads(pathlib.Path(list_path).read_text()):
        try:
            result = send_one(cfg, d, item["file"], item["as2_id"], item.get("content_type"))
        except Exception as e:  # each send reports its own failure
            result = {"error": f"{type(e).__name__}: {e}"}
        result["as2_id"] = item["as2_id"]
        print(json.dumps(result), flush=True)


def send_one(cfg, d, file, as2_id, content_type=None):
    as2_id = as2_id or cfg["name"]
    path = pathlib.Path(file)
    msg = Message(org(cfg, as2_id), partner(cfg, as2_id))
    msg.build(path.read_bytes(), filename=path.name, disposition_notification_to="pyas2@pyas2.test",
              content_type=content_type or "application/edi-consent")
    (d / "sent" / (msg.message_id.replace("/", "_") + ".json")).write_text(
        json.dumps({"message_id": msg.message_id, "as2_id": as2_id,
                    "mic": msg.mic.decode() if msg.mic else None}))
    req = urllib.request.Request(cfg["partner"]["url"], data=msg.content, headers=dict(msg.headers), method="POST")
    tls = ssl.create_default_context(cafile=cfg["partner"]["trust"]) if cfg["partner"].get("trust") else None
    with urllib.request.urlopen(req, timeout=60, context=tls) as r:
        body = r.read()
        raw = b"".join(f"{k}: {v}\r\n".encode() for k, v in r.headers.items()) + b"\r\n" + body
        result = {"http": r.status, "message_id": msg.message_id,
                  "mic": msg.mic.decode() if msg.mic else None}
        if profile(cfg, as2_id)["mdn"] == "SYNC":
            status, detail = Mdn().parse(raw, find_message_cb=lambda _m, _r: msg)
            result.update(mdn_status=status, mdn_detail=detail)
    return result


if __name__ == "__main__":
    {"serve": lambda: serve(sys.argv[2]),
     "send": lambda: send(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None),
     "send-many": lambda: send_many(sys.argv[2], sys.argv[3])}[sys.argv[1]]()
