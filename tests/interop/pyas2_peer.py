"""A pyas2lib peer for the interoperability tests: builds, parses and answers AS2 messages in batch.

    python pyas2_peer.py build       CASES.json   # pyas2lib sends: writes <dir>/<id>.msg and .json
    python pyas2_peer.py parse       CASES.json   # pyas2lib receives: writes payload, result, MDN
    python pyas2_peer.py verify-mdn  CASES.json   # pyas2lib checks receipts we built

CASES.json: {"dir": ..., "alpha": {...keys}, "beta": {...}, "cases": [...]}. pyas2lib plays
ALPHA (the sender of messages it builds) or BETA (the receiver of messages it parses); the Rust
side plays the other station. Each case is processed independently and reports its own error.
"""
import json
import logging
import pathlib
import sys
import traceback

from pyas2lib import Mdn, Message, Organization, Partner

logging.disable(logging.CRITICAL)


def read(path):
    return pathlib.Path(path).read_bytes()


def org(station, mdn_url=None):
    pem = read(station["cert"]) + read(station["key"])
    return Organization(
        as2_name=station["as2_id"],
        sign_key=pem,
        decrypt_key=pem,
        mdn_url=mdn_url,
        domain="pyas2.example",
    )


def partner(station, case):
    return Partner(
        as2_name=station["as2_id"],
        verify_cert=read(station["cert"]),
        encrypt_cert=read(station["cert"]),
        sign=bool(case.get("digest")),
        digest_alg=case.get("digest") or "sha256",
        sign_alg=case.get("sign_alg") or "rsassa_pkcs1v15",
        encrypt=bool(case.get("cipher")),
        enc_alg=case.get("cipher") or "tripledes_192_cbc",
        key_enc_alg=case.get("key_enc_alg") or "rsaes_pkcs1v15",
        compress=bool(case.get("compress")),
        mdn_mode=case.get("mdn_mode"),
        mdn_digest_alg=case.get("mdn_digest"),
    )


def capture(headers_str, content):
    return headers_str + b"\r\n" + content


def build(spec, out):
    for case in spec["cases"]:
        name = case["name"]
        try:
            sender = org(spec["alpha"], mdn_url=case.get("mdn_url"))
            receiver = partner(spec["beta"], case)
            msg = Message(sender, receiver)
            msg.build(
                read(case["payload"]),
                filename=case.get("filename"),
                content_type=case.get("content_type", "application/edi-consent"),
                disposition_notification_to="as2@alpha.example",
            )
            (out / f"{name}.msg").write_bytes(capture(msg.headers_str, msg.content))
            result = {
                "ok": True,
                "message_id": msg.message_id,
                "mic": msg.mic.decode() if msg.mic else None,
                "digest": msg.digest_alg,
            }
        except Exception:  # each case reports its own failure
            result = {"ok": False, "error": traceback.format_exc()}
        (out / f"{name}.json").write_text(json.dumps(result))


def parse(spec, out):
    for case in spec["cases"]:
        name = case["name"]
        try:
            receiver = org(spec["beta"])
            sender = partner(spec["alpha"], case)
            msg = Message()
            status, (exc, _tb), mdn = msg.parse(
                read(out / f"{name}.msg"),
                find_org_cb=lambda _id: receiver,
                find_partner_cb=lambda _id: sender,
            )
            result = {
                "ok": True,
                "status": status,
                "error": str(exc) if exc else None,
                "mic": msg.mic.decode() if msg.mic else None,
                "digest": msg.digest_alg,
                "signed": msg.signed,
                "encrypted": msg.encrypted,
                "compressed": msg.compressed,
                "enc_alg": msg.enc_alg,
                "filename": msg.payload.get_filename() if msg.payload is not None else None,
            }
            if status == "processed":
                (out / f"{name}.payload").write_bytes(msg.content)
            if mdn is not None:
                (out / f"{name}.mdn").write_bytes(capture(mdn.headers_str, mdn.content))
                result["mdn_mode"] = mdn.mdn_mode
                result["mdn_url"] = mdn.mdn_url
        except Exception:
            result = {"ok": False, "error": traceback.format_exc()}
        (out / f"{name}.json").write_text(json.dumps(result))


def verify_mdn(spec, out):
    for case in spec["cases"]:
        name = case["name"]
        try:
            sent = json.loads((out / f"{name}.json").read_text())
            original = Message(org(spec["alpha"]), partner(spec["beta"], case))
            original.message_id = sent["message_id"]
            original.mic = sent["mic"].encode() if sent.get("mic") else None
            mdn = Mdn()
            status, detail = mdn.parse(
                read(out / f"{name}.mdn"),
                find_message_cb=lambda _mid, _rcpt: original,
            )
            result = {
                "ok": True,
                "status": status,
                "detail": detail,
                "orig_message_id": mdn.orig_message_id,
                "mdn_digest": mdn.digest_alg,
            }
        except Exception:
            result = {"ok": False, "error": traceback.format_exc()}
        (out / f"{name}.mdn.json").write_text(json.dumps(result))


def main():
    command, spec_path = sys.argv[1], sys.argv[2]
    spec = json.loads(pathlib.Path(spec_path).read_text())
    out = pathlib.Path(spec["dir"])
    {"build": build, "parse": parse, "verify-mdn": verify_mdn}[command](spec, out)


if __name__ == "__main__":
    main()
