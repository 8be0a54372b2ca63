#!/usr/bin/python3
"""The rpi4 image, checked where it cannot boot (QEMU 7.2 has no Pi 4):

    image_layout.py --config image/genimage.cfg --qemu till-qemu.img --rpi4 till-rpi4.img
                    --config-txt image/rpi4/config.txt --boot-cmd image/boot.cmd

- both images' partition tables are what image/genimage.cfg says (MBR,
  its disk signature, each partition's type, offset, size, bootable flag),
  and the same;
- slot A of both holds the same bytes: one root filesystem for both
  machines; slot B is empty and the data partition starts with the
  "unformatted" block (the first boot formats it);
- the rpi4 boot partition holds the Pi 4's firmware, U-Boot, the device
  trees, Till's overlays, config.txt as image/rpi4/config.txt, and
  boot.scr made from image/boot.cmd; the qemu one holds boot.scr.
Prints what it checked; exit status 1 naming every problem.
"""

import argparse
import hashlib
import json
import re
import subprocess
import sys

MiB = 1024 * 1024
RPI4_BOOT = [
    "start4.elf", "fixup4.dat", "u-boot.bin", "config.txt", "boot.scr",
    "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-cm4-io.dtb",
    "overlays/till-spi0.dtbo", "overlays/till-mmc-aliases.dtbo",
]
UNFORMATTED = b"TILL-DATA-UNFORMATTED v1"


def size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)", text.strip())
    return int(m.group(1)) * {"": 1, "K": 1024, "M": MiB, "G": 1024 * MiB}[m.group(2)]


def layout(path):
    """The hdimage's partitions from genimage.cfg: [(name, {key: value})],
    the disk signature, and the images' sizes."""
    text = re.sub(r"#[^\n]*", "", open(path).read())
    sizes = {m.group(1): size(m.group(2).strip('"'))
             for m in re.finditer(r"image\s+(\S+)\s*\{(?:[^{}]|\{[^{}]*\})*?\bsize\s*=\s*(\S+)", text)}
    disk = re.search(r"disk-signature\s*=\s*(0x[0-9a-fA-F]+)", text).group(1)
    parts = [(m.group(1), dict(re.findall(r"([\w-]+)\s*=\s*(\S+)", m.group(2))))
             for m in re.finditer(r"partition\s+(\S+)\s*\{([^}]*)\}", text)]
    return parts, int(disk, 16), sizes


def table(img):
    out = subprocess.run(["sfdisk", "--json", img], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["partitiontable"]


def read(img, offset, length):
    with open(img, "rb") as f:
        f.seek(offset)
        return f.read(length)


def digest(img, offset, length):
    h = hashlib.sha256()
    with open(img, "rb") as f:
        f.seek(offset)
        left = length
        while left:
            chunk = f.read(min(left, 4 * MiB))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def fat_files(img, offset):
    out = subprocess.run(["mdir", "-/", "-b", "-i", f"{img}@@{offset}", "::/"],
                         check=True, capture_output=True, text=True).stdout
    return {line.strip().removeprefix("::/") for line in out.splitlines() if line.strip()}


def fat_read(img, offset, name):
    return subprocess.run(["mtype", "-i", f"{img}@@{offset}", f"::/{name}"],
                          check=True, capture_output=True).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for a in ("--config", "--qemu", "--rpi4", "--config-txt", "--boot-cmd"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    problems = []

    def check(ok, what):
        print(f"  {'ok ' if ok else 'BAD'} {what}")
        if not ok:
            problems.append(what)

    parts, signature, sizes = layout(args.config)
    tables = {m: table(getattr(args, m)) for m in ("qemu", "rpi4")}
    for machine, t in tables.items():
        print(f"{machine}: partition table")
        check(t["label"] == "dos", f"{machine}: MBR (dos) partition table")
        check(int(t["id"], 16) == signature, f"{machine}: disk signature {signature:#010x}")
        check(len(t["partitions"]) == len(parts), f"{machine}: {len(parts)} partitions")
        expected_start = None
        for (name, p), got in zip(parts, t["partitions"]):
            want_type = int(p["partition-type"], 16)
            check(int(got["type"], 16) == want_type, f"{machine}: {name} has type {want_type:#04x}")
            check(bool(got.get("bootable")) == (p.get("bootable") == "true"),
                  f"{machine}: {name} bootable as the layout says")
            start = size(p["offset"]) if "offset" in p else expected_start
            check(got["start"] * 512 == start, f"{machine}: {name} starts at {start // MiB} MiB")
            want = size(p["size"]) if "size" in p else sizes[p["image"].strip('"')]
            check(got["size"] * 512 == want, f"{machine}: {name} is {want // MiB} MiB")
            expected_start = got["start"] * 512 + got["size"] * 512
    q, r = tables["qemu"]["partitions"], tables["rpi4"]["partitions"]
    check([(p["start"], p["size"], p["type"]) for p in q] == [(p["start"], p["size"], p["type"]) for p in r],
          "qemu and rpi4 have the same partitions")

    print("root filesystem, slot B, data")
    a_q, a_r = q[1], r[1]
    dq = digest(args.qemu, a_q["start"] * 512, a_q["size"] * 512)
    dr = digest(args.rpi4, a_r["start"] * 512, a_r["size"] * 512)
    check(dq == dr, f"slot A holds the same bytes in both images (sha256 {dq[:16]})")
    for machine, t in (("qemu", q), ("rpi4", r)):
        b = t[2]
        check(read(getattr(args, machine), b["start"] * 512, MiB) == bytes(MiB), f"{machine}: slot B is empty")
        d = t[3]
        check(read(getattr(args, machine), d["start"] * 512, len(UNFORMATTED)) == UNFORMATTED,
              f"{machine}: the data partition is marked unformatted")

    print("boot partitions")
    boot_q = fat_files(args.qemu, q[0]["start"] * 512)
    boot_r = fat_files(args.rpi4, r[0]["start"] * 512)
    check("boot.scr" in boot_q, "qemu: boot.scr")
    for f in RPI4_BOOT:
        check(f in boot_r, f"rpi4: {f}")
    if "config.txt" in boot_r:
        check(fat_read(args.rpi4, r[0]["start"] * 512, "config.txt") == open(args.config_txt, "rb").read(),
              "rpi4: config.txt is image/rpi4/config.txt")
    script = open(args.boot_cmd, "rb").read()
    for machine, t, files in (("qemu", q, boot_q), ("rpi4", r, boot_r)):
        if "boot.scr" in files:
            scr = fat_read(getattr(args, machine), t[0]["start"] * 512, "boot.scr")
            # A legacy U-Boot script image: 64-byte header, then the length
            # of each part (one), a zero word, the script.
            check(scr[72:72 + len(script)] == script, f"{machine}: boot.scr is image/boot.cmd")

    if problems:
        print(f"{len(problems)} problem(s): " + "; ".join(problems), file=sys.stderr)
        return 1
    print("the rpi4 and qemu images are laid out as image/genimage.cfg says, with one root filesystem")
    return 0


if __name__ == "__main__":
    sys.exit(main())
