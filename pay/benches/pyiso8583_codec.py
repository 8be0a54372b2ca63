"""pyiso8583 side of benches/pyiso8583_ratio.rs: decode+encode of the given
message, best of 7 timeit repeats, printed as nanoseconds per round trip.

usage: pyiso8583_codec.py DIALECT.toml HEX ROUNDS
"""
import os
import sys
import timeit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "peers"))
import iso8583  # noqa: E402
from iso8583_peer import Dialect  # noqa: E402

dialect = Dialect(sys.argv[1])
raw = bytes.fromhex(sys.argv[2])
rounds = int(sys.argv[3])
doc, _ = iso8583.decode(raw, dialect.spec)
fields = {k: v for k, v in doc.items() if k not in ("p", "1")}
assert bytes(iso8583.encode(dict(fields), dialect.spec)[0]) == raw, "pyiso8583 re-encodes other bytes"


def round_trip():
    # Same work as the Rust side: encode the message, decode the result.
    out, _ = iso8583.encode(dict(fields), dialect.spec)
    iso8583.decode(out, dialect.spec)


best = min(timeit.repeat(round_trip, number=rounds, repeat=7)) / rounds
print(f"{best * 1e9:.0f}")
