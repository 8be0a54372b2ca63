"""Independent ISO 8583 peer for Till's codec tests, built on pyiso8583.

Reads a Till dialect file (TOML), translates its frame and field table into
a pyiso8583 specification, and answers JSON-line requests on stdin:

  {"op": "load", "name": N, "path": P}                 -> {"ok": true, "fields": count}
  {"op": "decode", "name": N, "hex": H}                -> {"ok": true, "header", "mti", "fields"}
  {"op": "encode", "name": N, "header", "mti", "fields"} -> {"ok": true, "hex": H}
  {"op": "random", "name": N, "seed": S, "count": C}   -> {"ok": true, "messages": [...]}

Field values use Till's JSON representation: text as is (track 2 with '='),
binary as uppercase hex. Errors come back as {"ok": false, "error": "..."}.
"""
import json
import random
import sys
import tomllib

import iso8583

ENC = {"ascii": "ascii", "ebcdic": "cp500", "binary": "b", "bcd": "b"}
LEN_ENC = {"ascii": "ascii", "ebcdic": "cp500", "binary": "b", "bcd": "bcd"}
DIGITS = {"lvar": 1, "llvar": 2, "lllvar": 3, "llllvar": 4}
PRINTABLE = [chr(c) for c in range(0x20, 0x7F)]
CHARSETS = {
    "a": [c for c in PRINTABLE if c.isalpha()],
    "n": [c for c in PRINTABLE if c.isdigit()],
    "s": [c for c in PRINTABLE if not c.isalnum()],
    "an": [c for c in PRINTABLE if c.isalnum()],
    "as": [c for c in PRINTABLE if not c.isdigit()],
    "ns": [c for c in PRINTABLE if not c.isalpha()],
    "ans": PRINTABLE,
    "z": list("0123456789="),
}


def prefix_bytes(length, length_encoding):
    digits = DIGITS[length]
    if length_encoding in ("ascii", "ebcdic"):
        return digits
    if length_encoding == "bcd":
        return (digits + 1) // 2
    return 1 if digits <= 2 else 2


class Dialect:
    def __init__(self, path):
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        d = doc["dialect"]
        self.fields = {int(k): v for k, v in doc.get("fields", {}).items()}
        header = d.get("header")
        self.header_len = header["length"] if header else 0
        spec = {
            "h": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": self.header_len, "desc": "Header"},
        }
        if d["mti"] == "bcd":
            spec["t"] = {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 2, "desc": "MTI"}
        else:
            spec["t"] = {"data_enc": ENC[d["mti"]], "len_enc": "ascii", "len_type": 0, "max_len": 4, "desc": "MTI"}
        for key in ("p", "1"):
            if d["bitmap"] == "binary":
                spec[key] = {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 8, "desc": "Bitmap"}
            else:
                spec[key] = {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 16, "desc": "Bitmap"}
        for n in range(2, 129):
            f = self.fields.get(n)
            if f is None:
                # pyiso8583 needs every key; an undefined field must never appear.
                spec[str(n)] = {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "undefined"}
                continue
            fixed = f["length"] == "fixed"
            lenc = f.get("length_encoding", "ascii")
            s = {
                "data_enc": ENC[f["encoding"]],
                "len_enc": LEN_ENC[lenc],
                "len_type": 0 if fixed else prefix_bytes(f["length"], lenc),
                "max_len": f["max"],
                "desc": f["name"],
            }
            if f["encoding"] == "bcd":
                s["len_count"] = "nibbles"
                pad = f.get("pad")
                if pad:
                    side, ch = pad.split("-")
                    s["left_pad" if side == "left" else "right_pad"] = ch.upper()
            spec[str(n)] = s
        self.spec = spec

    def to_peer(self, n, value):
        """Till's representation -> pyiso8583's."""
        if self.fields[n]["encoding"] == "bcd":
            return value.replace("=", "D")
        return value

    def from_peer(self, n, value):
        if self.fields[n]["encoding"] == "bcd":
            return value.upper().replace("D", "=")
        if self.fields[n]["encoding"] == "binary":
            return value.upper()
        return value

    def decode(self, raw):
        doc, _ = iso8583.decode(raw, self.spec)
        fields = {}
        for key, value in doc.items():
            if key.isdigit() and key != "1":
                fields[key] = self.from_peer(int(key), value)
        mti = doc["t"]
        header = doc.get("h", "")
        return {"header": header.upper(), "mti": mti, "fields": dict(sorted(fields.items(), key=lambda kv: int(kv[0])))}

    def encode(self, header, mti, fields):
        doc = {"t": mti}
        if self.header_len:
            doc["h"] = header
        for key, value in fields.items():
            doc[key] = self.to_peer(int(key), value)
        raw, _ = iso8583.encode(doc, self.spec)
        return bytes(raw)

    def random_value(self, rng, f):
        if f["length"] == "fixed":
            length = f["max"]
        else:
            length = rng.randint(0, min(f["max"], 24)) if rng.random() < 0.7 else rng.randint(0, f["max"])
        kind = f["type"]
        if kind == "b":
            return bytes(rng.randrange(256) for _ in range(length)).hex().upper()
        if kind == "x+n":
            return rng.choice("CD") + "".join(rng.choice("0123456789") for _ in range(length - 1))
        charset = CHARSETS["n"] if (f["encoding"] == "bcd" and kind == "n") else CHARSETS[kind]
        return "".join(rng.choice(charset) for _ in range(length))

    def random_messages(self, seed, count):
        rng = random.Random(seed)
        out = []
        for _ in range(count):
            fields = {}
            for n in sorted(self.fields):
                if rng.random() < 0.3:
                    fields[str(n)] = self.random_value(rng, self.fields[n])
            mti = "".join(rng.choice("0123456789") for _ in range(4))
            header = bytes(rng.randrange(256) for _ in range(self.header_len)).hex().upper()
            raw = self.encode(header, mti, fields)
            out.append({"hex": raw.hex().upper(), "header": header, "mti": mti, "fields": fields})
        return out


def main():
    dialects = {}
    for line in sys.stdin:
        req = json.loads(line)
        try:
            op = req["op"]
            if op == "load":
                dialects[req["name"]] = Dialect(req["path"])
                resp = {"ok": True, "fields": len(dialects[req["name"]].fields)}
            elif op == "decode":
                resp = {"ok": True, **dialects[req["name"]].decode(bytes.fromhex(req["hex"]))}
            elif op == "encode":
                d = dialects[req["name"]]
                resp = {"ok": True, "hex": d.encode(req.get("header", ""), req["mti"], req["fields"]).hex().upper()}
            elif op == "random":
                resp = {"ok": True, "messages": dialects[req["name"]].random_messages(req["seed"], req["count"])}
            else:
                resp = {"ok": False, "error": f"unknown op {op}"}
        except Exception as e:  # report, keep serving
            resp = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
