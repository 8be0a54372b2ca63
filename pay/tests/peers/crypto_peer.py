"""Independent implementations that tests/crypto_peers.rs checks Till against.

One process serves a whole test run: it reads one JSON request per line on
stdin and answers each with one JSON line on stdout, in order. Binary values
travel as hex. A request that the peer library rejects gets {"err": "..."}
so the Rust side can assert that both sides refuse the same inputs.

The peers are psec (PIN blocks, retail MAC, TDES KCV, TDES and AES ECB)
and cryptography (AES-CMAC, RFC 3394 key wrap); the UnionPay MAC, which no
library offers, is transcribed here from its specification. The first line
written is {"ready": ...} or, if a module is missing, {"fatal": "..."}.
"""

import json
import sys
import warnings

# psec still calls TripleDES through cryptography's old path; the warnings
# would only clutter the test output.
warnings.simplefilter("ignore")

try:
    import cryptography
    import psec
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.cmac import CMAC
    from cryptography.hazmat.primitives.keywrap import (
        InvalidUnwrap,
        aes_key_unwrap,
        aes_key_wrap,
    )
    from psec import aes as psec_aes
    from psec import des as psec_des
    from psec import mac as psec_mac
    from psec import pinblock as psec_pinblock
except ImportError as exc:  # pragma: no cover - reported to the Rust side
    print(json.dumps({"fatal": f"{exc} (python {sys.executable})"}), flush=True)
    sys.exit(1)


def short_pan(pan):
    """psec wants at least 13 PAN digits for formats 0 and 3 and takes
    pan[-13:-1]. ISO 9564-1 right-justifies a shorter PAN field with zeros,
    so a leading "0" on a 12-digit PAN gives psec exactly the ISO field."""
    return pan if len(pan) >= 13 else "0" + pan


def pin_encipher(req):
    fmt, pin, pan = req["format"], req["pin"], short_pan(req["pan"])
    key = bytes.fromhex(req["key"])
    if fmt == 0:
        clear = psec_pinblock.encode_pinblock_iso_0(pin, pan)
    else:
        clear = psec_pinblock.encode_pinblock_iso_3(pin, pan)
    return psec_des.encrypt_tdes_ecb(key, clear).hex()


def pin_decipher(req):
    fmt, pan = req["format"], short_pan(req["pan"])
    clear = psec_des.decrypt_tdes_ecb(bytes.fromhex(req["key"]), bytes.fromhex(req["block"]))
    if fmt == 0:
        return psec_pinblock.decode_pinblock_iso_0(clear, pan)
    return psec_pinblock.decode_pinblock_iso_3(clear, pan)


def cup_mac(req):
    """The UnionPay POS MAC transcribed from the UnionPay POS terminal
    specification's description, on psec's DES. Not an independent
    library, but written apart from the Rust code."""
    key, data = bytes.fromhex(req["key"]), bytes.fromhex(req["data"])
    if len(data) % 8:
        data += b"\x00" * (8 - len(data) % 8)
    folded = bytes(8)
    for i in range(0, len(data), 8):
        folded = bytes(a ^ b for a, b in zip(folded, data[i : i + 8]))
    text = folded.hex().upper().encode()
    left = psec_des.encrypt_tdes_ecb(key, text[:8])
    left = bytes(a ^ b for a, b in zip(left, text[8:]))
    out = psec_des.encrypt_tdes_ecb(key, left)
    return out.hex().upper().encode()[:8].hex()


def aes_cmac(req):
    c = CMAC(algorithms.AES(bytes.fromhex(req["key"])))
    c.update(bytes.fromhex(req["data"]))
    return c.finalize().hex()


def aes_unwrap(req):
    try:
        return aes_key_unwrap(bytes.fromhex(req["kek"]), bytes.fromhex(req["wrapped"])).hex()
    except InvalidUnwrap:
        raise ValueError("InvalidUnwrap")


OPS = {
    "pin0_clear": lambda r: psec_pinblock.encode_pinblock_iso_0(
        r["pin"], short_pan(r["pan"])
    ).hex(),
    "pin_encipher": pin_encipher,
    "pin_decipher": pin_decipher,
    "pin4_encipher": lambda r: psec_pinblock.encipher_pinblock_iso_4(
        bytes.fromhex(r["key"]), r["pin"], r["pan"]
    ).hex(),
    "pin4_decipher": lambda r: psec_pinblock.decipher_pinblock_iso_4(
        bytes.fromhex(r["key"]), bytes.fromhex(r["block"]), r["pan"]
    ),
    "retail_mac": lambda r: psec_mac.generate_retail_mac(
        bytes.fromhex(r["key"])[:8],
        bytes.fromhex(r["key"])[8:],
        bytes.fromhex(r["data"]),
        r["padding"],
    ).hex(),
    "tdes_kcv": lambda r: psec_des.generate_kcv(bytes.fromhex(r["key"]), r["len"]).hex(),
    "tdes_ecb": lambda r: psec_des.encrypt_tdes_ecb(
        bytes.fromhex(r["key"]), bytes.fromhex(r["data"])
    ).hex(),
    "aes_ecb": lambda r: psec_aes.encrypt_aes_ecb(
        bytes.fromhex(r["key"]), bytes.fromhex(r["data"])
    ).hex(),
    "aes_cmac": aes_cmac,
    "aes_wrap": lambda r: aes_key_wrap(bytes.fromhex(r["kek"]), bytes.fromhex(r["key"])).hex(),
    "aes_unwrap": aes_unwrap,
    "cup_mac": cup_mac,
}


def main():
    versions = {"psec": getattr(psec, "__version__", "?"), "cryptography": cryptography.__version__}
    print(json.dumps({"ready": versions}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = {"ok": OPS[req["op"]](req)}
        except Exception as exc:  # every refusal goes back as data
            reply = {"err": f"{type(exc).__name__}: {exc}"}
        # Flushed per answer: the Rust side writes the whole batch from
        # another thread, so this never stalls it, and nothing is held back.
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
