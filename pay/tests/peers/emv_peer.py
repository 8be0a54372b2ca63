"""pyemv, the independent implementation tests/emv_peers.rs checks Till's
EMV code (terminal kernel, issuer side and the virtual cards) against.

One process serves a whole test run: one JSON request per line on stdin,
one JSON answer per line on stdout, in order. Binary values travel as
uppercase hex. A request pyemv refuses gets {"err": "..."}. The first line
written is {"ready": ...} or, if pyemv is missing, {"fatal": "..."}.
"""

import json
import sys
import warnings

# pyemv calls TripleDES through cryptography's deprecated path; the
# warnings would only clutter the test output.
warnings.simplefilter("ignore")

try:
    import pyemv
    from pyemv import ac, cvn, kd, tlv
except ImportError as exc:  # pragma: no cover - reported to the Rust side
    print(json.dumps({"fatal": f"{exc} (python {sys.executable})"}), flush=True)
    sys.exit(1)


def b(text):
    return bytes.fromhex(text)


def card(req):
    """The pyemv CVN object for the card: the same issuer master key for
    AC, SMI and SMC (only AC is used here)."""
    imk = b(req["imk"])
    cls = {"visa10": cvn.VisaCVN10, "mc20": cvn.MasterCardCVN20}[req["version"]]
    return cls(imk, imk, imk, req["pan"], f'{req["psn"]:02d}')


def cvr(version, iad):
    """The card verification results inside 9F10, per the CVN's layout:
    Visa format 0/1 bytes 4-7, M/Chip bytes 3-8."""
    return iad[3:7] if version == "visa10" else iad[2:8]


def generate_ac(req):
    t = {k: b(v) for k, v in req["tags"].items()}
    return (
        card(req)
        .generate_ac(
            tag_9f02=t["9F02"],
            tag_9f03=t["9F03"],
            tag_9f1a=t["9F1A"],
            tag_95=t["95"],
            tag_5f2a=t["5F2A"],
            tag_9a=t["9A"],
            tag_9c=t["9C"],
            tag_9f37=t["9F37"],
            tag_82=t["82"],
            tag_9f36=t["9F36"],
            cvr=cvr(req["version"], t["9F10"]),
        )
        .hex()
        .upper()
    )


def generate_arpc(req):
    c = card(req)
    if req["version"] == "visa10":
        out = c.generate_arpc(tag_9f26=b(req["arqc"]), arpc_rc=b(req["arc"]))
    else:
        out = c.generate_arpc(
            tag_9f26=b(req["arqc"]), tag_9f36=b(req["atc"]), arpc_rc=b(req["arc"])
        )
    return out.hex().upper()


OPS = {
    "tlv_decode": lambda r: tlv.decode(b(r["data"]), convert=lambda t, v: v.hex().upper()),
    "tlv_encode": lambda r: tlv.encode(r["tree"]).hex().upper(),
    "icc_mk": lambda r: kd.derive_icc_mk_a(b(r["imk"]), r["pan"], f'{r["psn"]:02d}').hex().upper(),
    "common_sk": lambda r: kd.derive_common_sk(b(r["mk"]), b(r["r"])).hex().upper(),
    "ac": generate_ac,
    "arpc": generate_arpc,
}


def main():
    print(json.dumps({"ready": {"pyemv": getattr(pyemv, "__version__", "?")}}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = {"ok": OPS[req["op"]](req)}
        except Exception as exc:  # every refusal goes back as data
            reply = {"err": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
