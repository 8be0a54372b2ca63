#!/usr/bin/python3
"""Host side of scripts/image-test: boots the Till OS image (the qemu
machine, through U-Boot and its A/B boot script) and drives it as a shop
would, by taps on its screen alone (a virtio tablet; the guest has no
keyboard), comparing what it shows with docs/screens/.

    image_check.py --out DIR --refs DIR --stick IMG [--timeout S] -- QEMU-COMMAND...

Steps: U-Boot (the console adds journal forwarding to the kernel command
line through U-Boot's prompt, for this log only), the boot script's slot
choice, the first boot's data partition and machine, till's
not-provisioned screen (an image carries no keys; unavailable.png), a
provisioning USB stick plugged in over QMP (usb-storage on the xHCI
controller; its TILL-PROV filesystem holds till-provision/), till starting
by itself as a provisioned terminal; the self-test, the administrator's
first login on the number pad, the sign-in to the acquirer (on the host,
through a loopback-only port forward), home (ui_check.Run.login_to_home).
Writes DIR/console.log and DIR/screens/ as ui_check.py does; exit status
0 when every step passed.
"""

import argparse
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ui_check  # noqa: E402
from ui_check import Guest, Run, W  # noqa: E402

# What the console shows of the boot: the boot script, the data
# partition's and the machine's services, provisioning, till itself.
ECHO = ("TILL-BOOT:", "till-data:", "till-machine:", "till-provision", "tillctl",
        "till[", "Kernel panic", "Failed to start")
# The not-provisioned screen vs unavailable.png: the title and what to do,
# in both languages (below them the list of missing files differs).
UNAVAILABLE = [("title and what to do", (0, 40, W, 250))]
# The kernel command line's additions for this run, typed at U-Boot's
# prompt (image/boot.cmd appends till_extra_args): the journal on the
# console, so that console.log shows till's own log.
EXTRA_ARGS = "systemd.journald.forward_to_console=1 systemd.show_status=1"


class ImageRun(Run):
    def run(self):
        g = self.g
        self.step("u-boot")
        g.connect(self.deadline(30))
        # Any key stops U-Boot's autoboot (the key waits in the UART until
        # U-Boot looks); then one variable and the normal boot.
        g.type_console(f"\nsetenv till_extra_args {EXTRA_ARGS}\nboot\n")
        g.wait_marker("TILL-BOOT: slot A", self.deadline(60))

        self.step("first-boot")
        g.wait_log("till-data: mounted", self.deadline(240))
        g.wait_log("till-machine: qemu", self.deadline(60))

        self.step("not-provisioned")
        self.wait_screen("not-provisioned", "unavailable", UNAVAILABLE, 180)
        self.first_frame = g.elapsed()

        self.step("provisioning")
        g.cmd("blockdev-add", **{"node-name": "stick", "driver": "raw", "read-only": True,
                                 "file": {"driver": "file", "filename": self.args.stick}})
        g.cmd("device_add", driver="usb-storage", id="stick0", drive="stick", bus="xhci.0")
        g.wait_log("provisioned", self.deadline(90))
        self.login_to_home()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--refs", required=True)
    ap.add_argument("--stick", required=True, help="the provisioning stick's image (FAT, TILL-PROV)")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--password", required=True)
    ap.add_argument("--new-password", required=True)
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    qemu = args.qemu[1:] if args.qemu[:1] == ["--"] else args.qemu
    os.makedirs(args.out, exist_ok=True)
    guest = Guest(args.out, qemu, echo=ECHO, fatal=("Kernel panic",), typed=True)

    def terminated(signum, _frame):
        guest.proc.kill()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    run = ImageRun(args, guest)
    timer = threading.Timer(args.timeout + 30, guest.proc.kill)
    timer.daemon = True
    timer.start()
    rc = ui_check.drive(run, guest, timer)
    print(f"  {'total':<14} {guest.elapsed():6.1f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
