#!/usr/bin/python3
"""binfmt-userns.py COMMAND [ARGS...]: run COMMAND where aarch64 programs
run through qemu-aarch64-static, without touching the machine's own
binfmt_misc: in a new user and mount namespace with a binfmt_misc instance
of its own (Linux 6.7 and later mount binfmt_misc per user namespace).

mmdebstrap needs this to run the arm64 packages' maintainer scripts when it
builds the image's root filesystem (scripts/image). Run as root: the
namespace maps ids 0-65535 onto the same ids outside, so the files it
creates belong to root (and the till user) as on the device.
"""

import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
RULE = "/usr/lib/binfmt.d/qemu-aarch64.conf"  # from qemu-user-static

libc = ctypes.CDLL(None, use_errno=True)


def must(result, what):
    if result != 0:
        err = ctypes.get_errno()
        sys.exit(f"binfmt-userns: {what}: {os.strerror(err)}")


def child(ready_w, mapped_r):
    must(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare (user and mount namespace)")
    os.write(ready_w, b"1")
    if os.read(mapped_r, 1) != b"1":
        sys.exit("binfmt-userns: the parent did not map the namespace's ids")
    must(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make the mounts private")
    must(libc.mount(b"binfmt_misc", b"/proc/sys/fs/binfmt_misc", b"binfmt_misc", 0, None),
         "mount a private binfmt_misc (Linux 6.7 or later is needed)")
    with open(RULE) as f:
        rule = f.read().strip()
    with open("/proc/sys/fs/binfmt_misc/register", "w") as f:
        f.write(rule)
    os.execvp(sys.argv[1], sys.argv[1:])


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if not os.path.exists(RULE):
        sys.exit(f"binfmt-userns: {RULE} is missing: install qemu-user-static (scripts/setup)")
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(mapped_w)
        child(ready_w, mapped_r)
    os.close(ready_w)
    os.close(mapped_r)
    if os.read(ready_r, 1) != b"1":
        os.waitpid(pid, 0)
        sys.exit("binfmt-userns: the child could not make its namespace")
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write("0 0 65536\n")
    os.write(mapped_w, b"1")
    os.close(mapped_w)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


main()
