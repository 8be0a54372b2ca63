#!/usr/bin/python3
"""The host's side of a Till guest in QEMU, for scripts/qemu/image_check.py:
the guest's console read into lines, its screen through QMP `screendump`,
taps through its virtio tablet with QMP input events (the guest has no
keyboard, as a terminal has none: every password is typed on till's
on-screen number pad), and what the screen shows compared with the
reference screenshots in docs/screens/ (rendered by the same Slint
software renderer at 800x480; see app/tests/ui_screens.rs).

Pixels are compared as app/tests/ui_screens.rs does: a pixel differs when
one of its channels differs by more than 24, and a screen matches when at
most 200 of the compared pixels differ. Where the guest's screen cannot be
identical to a reference (the clock, the device list of this guest, the
operator accounts of a first start) only the regions that must be identical
are compared; each region below says why.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

from PIL import Image, ImageChops, ImageDraw, ImageFilter

W, H = 800, 480
THRESHOLD = 24  # per channel, as ui_screens.rs
MAX_DIFFERING = 200  # per screen, as ui_screens.rs
PARK = (782, 6)  # the pointer rests in the clock's box (see Guest.tap)

# Regions (x0, y0, x1, y1) of the 800x480 references.
TOP_LEFT = (0, 0, 400, 40)  # merchant name; right of it: sign-in state, clock
CLOCK = (660, 0, W, 40)  # the time of day (and the parked pointer)
# Boot screen vs boot.png: the title and the device list from the third
# row on depend on the devices (the reference: a failed printer, no
# scanner; this guest: five simulated or working devices, so "Self-test
# passed"); rows one and two (card reader, PIN keypad, both working) must
# be the same pixels.
BOOT = [("merchant", TOP_LEFT), ("reader and keypad rows", (0, 92, W, 200))]
# Login screen vs login.png: the reference has three operators and a
# wrong-password line; a first start has only the administrator.
LOGIN = [
    ("merchant", TOP_LEFT),
    ("heading and admin button", (0, 40, 325, 160)),
    ("name prompt and password field", (325, 40, W, 145)),
    ("empty right column", (325, 175, W, 400)),
    ("log in button", (325, 400, W, 480)),
]
ADMIN_BUTTON_FILL = (30, 104, 60, 114)  # left of the label, inside the button
# The first-login password change (new-password.png): inside "Save and
# continue", left of its label.
SAVE_BUTTON_FILL = (382, 414, 420, 424)
# The on-screen number pad a password field opens (keys-password.png): the
# keys and their centres. The field's name above the pad names the
# operator, so only the pad and the Cancel button are compared.
PAD = [("number pad", (370, 56, W, 464)), ("cancel", (16, 408, 180, 464))]
PAD_KEYS = {
    "1": (419, 104), "2": (524, 104), "3": (630, 104),
    "4": (419, 208), "5": (524, 208), "6": (630, 208),
    "7": (419, 312), "8": (524, 312), "9": (630, 312),
    "0": (524, 416), "done": (735, 364),
}
TYPED = (16, 100, 354, 154)  # the box showing the dots typed so far
NEW_PASSWORD_FIELD = (400, 184)  # "New password" (new-password.png)
# Signed in: the top bar shows the operator and "Signed in" as on home.png.
SIGNED_IN = [("top bar without the clock", (0, 0, 660, 40))]


def differing_mask(a, b):
    """An L image: 255 where a pixel of a and b differs by more than THRESHOLD."""
    d = ImageChops.difference(a, b)
    r, g, bl = (c.point(lambda v: 255 if v > THRESHOLD else 0) for c in d.split())
    return ImageChops.lighter(ImageChops.lighter(r, g), bl)


def count(mask, box=None):
    return (mask.crop(box) if box else mask).histogram()[255]


class Failed(Exception):
    pass


class Guest:
    """QEMU with its console read into lines (and console.log), QMP for the
    screen and the tablet. Lines starting with one of `echo` are printed
    as they come; `typed` gives the console a stdin to type at."""

    def __init__(self, out, qemu_cmd, echo=(), fatal=(), typed=False):
        self.out = out
        self.echo = tuple(echo) + ("panicked", "till:")
        self.fatal = tuple(fatal)
        self.sock = os.path.join(out, "qmp.sock")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        cmd = qemu_cmd + ["-qmp", f"unix:{self.sock},server=on,wait=off"]
        print("+ " + " ".join(cmd), flush=True)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if typed else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = []
        self.lock = threading.Lock()
        self.log = open(os.path.join(out, "console.log"), "w")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.qmp = None
        self.qmp_file = None

    def elapsed(self):
        return time.monotonic() - self.t0

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            stamp = f"[{self.elapsed():7.2f}] {line}"
            self.log.write(stamp + "\n")
            self.log.flush()
            if any(line.startswith(e) or e in line for e in self.echo):
                print(stamp, flush=True)
            with self.lock:
                self.lines.append(line)

    def console(self):
        with self.lock:
            return list(self.lines)

    def marker(self, prefix):
        for line in self.console():
            if line.startswith(prefix):
                return line
        return None

    def check_alive(self):
        """Fails when QEMU ended or the console showed a fatal line."""
        for line in self.console():
            if any(f in line for f in self.fatal):
                raise Failed(f"guest: {line}")
        if self.proc.poll() is not None:
            raise Failed(f"QEMU exited with {self.proc.returncode}")

    def wait_log(self, text, deadline):
        """A line of the console containing text (till's own log)."""
        while time.monotonic() < deadline:
            if any(text in line for line in self.console()):
                return
            self.check_alive()
            time.sleep(0.1)
        raise Failed(f"till did not log '{text}'")

    def wait_marker(self, prefix, deadline):
        while time.monotonic() < deadline:
            found = self.marker(prefix)
            if found:
                return found
            self.check_alive()
            time.sleep(0.1)
        raise Failed(f"no '{prefix}' on the console")

    # -------------------------------------------------------------- QMP
    def connect(self, deadline):
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                break
            except OSError:
                s.close()
                self.check_alive()
                if time.monotonic() > deadline:
                    raise Failed(f"cannot connect to QMP at {self.sock}")
                time.sleep(0.1)
        self.qmp = s
        self.qmp_file = s.makefile("rw")
        self._recv()  # greeting
        self.cmd("qmp_capabilities")

    def _recv(self):
        while True:
            line = self.qmp_file.readline()
            if not line:
                raise Failed("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.qmp_file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.qmp_file.flush()
        reply = self._recv()
        if "error" in reply:
            raise Failed(f"QMP {name}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def screen(self):
        path = os.path.join(self.out, "screendump.png")
        self.cmd("screendump", filename=path, format="png")
        with Image.open(path) as im:
            return im.convert("RGB")

    # -------------------------------------------------------------- input
    def move(self, x, y):
        # The tablet's axes run 0..0x7fff over the screen; libinput scales
        # them back to pixels (value * width / 0x8000): aim at the centre.
        ax = int((x + 0.5) * 0x8000 / W)
        ay = int((y + 0.5) * 0x8000 / H)
        self.cmd("input-send-event", events=[
            {"type": "abs", "data": {"axis": "x", "value": ax}},
            {"type": "abs", "data": {"axis": "y", "value": ay}},
        ])

    def tap(self, x, y):
        self.move(x, y)
        time.sleep(0.05)
        self.cmd("input-send-event", events=[{"type": "btn", "data": {"down": True, "button": "left"}}])
        time.sleep(0.08)
        self.cmd("input-send-event", events=[{"type": "btn", "data": {"down": False, "button": "left"}}])
        time.sleep(0.05)
        # Unlike a finger, the tablet's pointer stays where it tapped: rest
        # it where nothing is compared, so that no hover state depends on
        # the last tap. (Slint 1.18's linuxkms software renderer draws no
        # cursor.)
        self.move(*PARK)

    def tap_digits(self, digits):
        """Digits on the on-screen number pad, then its Done key."""
        for ch in digits:
            self.tap(*PAD_KEYS[ch])
        self.tap(*PAD_KEYS["done"])

    def type_console(self, text):
        """Types text at the guest's console (a Guest made with typed=True)."""
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def quit(self):
        try:
            if self.qmp_file:
                self.cmd("quit")
        except (Failed, OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
        self.log.close()


class Run:
    def __init__(self, args, guest):
        self.args = args
        self.g = guest
        self.refs = {}
        self.shots = os.path.join(args.out, "screens")
        os.makedirs(self.shots, exist_ok=True)
        for f in os.listdir(self.shots):
            os.unlink(os.path.join(self.shots, f))
        self.n = 0
        self.end = time.monotonic() + args.timeout
        self.steps = []
        self.current = None
        self.step_t = 0.0
        self.first_frame = None

    def ref(self, name):
        if name not in self.refs:
            with Image.open(os.path.join(self.args.refs, f"{name}.png")) as im:
                img = im.convert("RGB")
            if img.size != (W, H):
                raise Failed(f"reference {name}.png is {img.size[0]}x{img.size[1]}, not {W}x{H}")
            self.refs[name] = img
        return self.refs[name]

    def step(self, name):
        self.finish_step()
        self.current = name
        self.step_t = time.monotonic()
        print(f"==== [ui {name}] at {self.g.elapsed():.1f} s", flush=True)

    def finish_step(self):
        if self.current:
            self.steps.append((self.current, time.monotonic() - self.step_t))
            self.current = None

    def deadline(self, seconds):
        return min(self.end, time.monotonic() + seconds)

    def save(self, img, label):
        self.n += 1
        path = os.path.join(self.shots, f"{self.n:02d}-{label}.png")
        img.save(path)
        return path

    def save_diff(self, img, ref, regions, label):
        """The reference, dimmed, with the compared regions outlined and the
        differing pixels in red."""
        mask = differing_mask(img, ref)
        keep = Image.new("L", (W, H), 0)
        d = ImageDraw.Draw(keep)
        for _, box in regions:
            d.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=255)
        mask = ImageChops.multiply(mask, keep)
        out = Image.blend(ref, Image.new("RGB", (W, H), (255, 255, 255)), 0.6)
        od = ImageDraw.Draw(out)
        for _, box in regions:
            od.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), outline=(0, 90, 200))
        out.paste((255, 0, 0), (0, 0), mask)
        self.n += 1
        path = os.path.join(self.shots, f"{self.n:02d}-{label}-diff.png")
        out.save(path)
        return path

    def compare(self, img, ref_name, regions):
        """[(region, differing pixels)], total."""
        if img.size != (W, H):
            return None, None
        mask = differing_mask(img, self.ref(ref_name))
        counts = [(name, count(mask, box)) for name, box in regions]
        return counts, sum(c for _, c in counts)

    def until(self, seconds, label, done, failure):
        """Screendumps until done(img); saves the last one as label and
        returns it. After seconds: Failed(failure(path of the last one))."""
        deadline = self.deadline(seconds)
        while True:
            self.g.check_alive()
            img = self.g.screen()
            if done(img):
                self.save(img, label)
                return img
            if time.monotonic() > deadline:
                raise Failed(failure(self.save(img, label)))
            time.sleep(0.3)

    def wait_screen(self, label, ref_name, regions, seconds):
        """Screendumps until the regions match ref_name; fails after seconds."""
        deadline = self.deadline(seconds)
        last = None
        counts = None
        while True:
            self.g.check_alive()
            img = self.g.screen()
            counts, total = self.compare(img, ref_name, regions)
            last = img
            if total is not None and total <= MAX_DIFFERING:
                path = self.save(img, label)
                print(f"  {label}: matches {ref_name}.png ({self.describe(counts)}): {path}", flush=True)
                return img
            if time.monotonic() > deadline:
                break
            time.sleep(0.3)
        path = self.save(last, label)
        if counts is None:
            raise Failed(f"the screen is {last.size[0]}x{last.size[1]}, not {W}x{H} (last screen: {path})")
        diff = self.save_diff(last, self.ref(ref_name), regions, label)
        raise Failed(f"the screen does not match {ref_name}.png after {seconds} s: "
                     f"{self.describe(counts)} (more than {MAX_DIFFERING} differ); "
                     f"screen: {path}, differences: {diff}")

    @staticmethod
    def describe(counts):
        return ", ".join(f"{name}: {c} px differ" for name, c in counts)

    # -------------------------------------------------------------- checks
    def primary_colour(self):
        # The Sale button of home.png is the primary button's fill.
        return self.ref("home").getpixel((40, 70))

    def is_fill(self, img, box, colour):
        region = img.crop(box)
        solid = Image.new("RGB", region.size, colour)
        return count(differing_mask(region, solid)) == 0

    def primary_button(self, img, colour):
        """The centre of the filled primary button on img, if any: pixels of
        the primary colour whose 9x9 neighbourhood is all primary (text
        strokes of that colour are thinner)."""
        solid = Image.new("RGB", img.size, colour)
        same = differing_mask(img, solid).point(lambda v: 0 if v else 255)
        core = same.filter(ImageFilter.MinFilter(9))
        box = core.getbbox()
        if not box:
            return None
        return ((box[0] + box[2]) // 2, (box[1] + box[3]) // 2)

    def login_to_home(self):
        """From till's self-test screen to home: continue, the administrator's
        first login by taps (the provisioned password, then their own), the
        sign-in to the acquirer, home compared with home.png."""
        g = self.g
        self.step("boot-screen")
        self.wait_screen("boot", "boot", BOOT, 90)

        self.step("login-screen")
        g.tap(740, 436)  # "Continue" (boot.png: "Continue anyway", same right edge)
        self.wait_screen("login", "login", LOGIN, 30)

        self.step("choose-admin")
        primary = self.primary_colour()
        g.tap(166, 125)  # "admin · administrator"
        # The name opens the number pad for the password at once.
        self.wait_screen("password-pad", "keys-password", PAD, 20)

        self.step("password")
        before = g.screen().crop(TYPED)
        for ch in self.args.password:
            g.tap(*PAD_KEYS[ch])
        # One dot per digit (the box changes; the digits never show).
        self.until(20, "password-typed",
                   lambda img: count(differing_mask(img.crop(TYPED), before)) > 150,
                   lambda path: f"the password box did not change after tapping the number pad: {path}")

        self.step("log-in")
        g.tap(*PAD_KEYS["done"])  # Done logs in
        # Till's own log says the password was accepted; on the screen the
        # first login's password change follows, whose primary button is
        # "Save and continue".
        g.wait_log("operator logged in", self.deadline(30))
        self.until(20, "new-password",
                   lambda img: not self.is_fill(img, ADMIN_BUTTON_FILL, primary)
                   and self.is_fill(img, SAVE_BUTTON_FILL, primary),
                   lambda path: f"logged in, but no password change screen: {path}")

        self.step("new-password")
        # The first login replaces the provisioned password with one only
        # the administrator knows (app/ui/screens/new-password.slint): a tap
        # on the field opens the number pad; Done there opens it on the
        # second field, and Done again saves.
        g.tap(*NEW_PASSWORD_FIELD)
        self.wait_screen("new-password-pad", "keys-password", PAD, 20)
        empty = g.screen().crop(TYPED)
        g.tap_digits(self.args.new_password)
        # The pad again, on the second field: its box empty of dots.
        self.until(20, "again-pad",
                   lambda img: count(differing_mask(img.crop(TYPED), empty)) == 0
                   and self.is_fill(img, (700, 280, 770, 300), primary),
                   lambda path: f"Done did not open the pad on the second field: {path}")
        g.tap_digits(self.args.new_password)
        try:
            g.wait_log("operator chose a new password", self.deadline(30))
        except Failed as e:
            raise Failed(f"{e}: {self.save(g.screen(), 'new-password-refused')}") from None

        self.step("sign-in")
        img = self.wait_screen("signed-in", "home", SIGNED_IN, 60)
        button = self.primary_button(img, primary)
        if not button:
            raise Failed("signed in, but no primary ('Continue') button on the sign-in screen: "
                         f"{self.save(img, 'signed-in')}")

        self.step("home-screen")
        g.tap(*button)
        full = [("whole screen but the clock", (0, 0, W, H))]
        deadline = self.deadline(30)
        while True:
            img = g.screen()
            mask = differing_mask(img, self.ref("home"))
            mask.paste(0, CLOCK)
            n = count(mask)
            if n <= MAX_DIFFERING:
                path = self.save(img, "home")
                print(f"  home: matches home.png but for the clock ({n} px differ): {path}", flush=True)
                break
            if time.monotonic() > deadline:
                path = self.save(img, "home")
                diff = self.save_diff(img, self.ref("home"), full, "home")
                raise Failed(f"the screen does not match home.png (clock excluded) after 30 s: {n} px "
                             f"differ (more than {MAX_DIFFERING}); screen: {path}, differences: {diff}")
            g.check_alive()
            time.sleep(0.3)
        g.check_alive()
        self.finish_step()


def drive(run, guest, timer):
    """Runs run.run(), reports a failed step with the console's last
    lines, ends QEMU and the watchdog timer, prints the steps' times;
    returns the exit status."""
    rc = 0
    try:
        run.run()
    except Failed as e:
        rc = 1
        failed = run.current or "ui"
        run.finish_step()
        print(f"step {failed} failed: {e}", file=sys.stderr, flush=True)
        tail = guest.console()[-25:]
        print("---- last console lines (all in console.log):\n" + "\n".join(tail), file=sys.stderr)
    except (OSError, ValueError) as e:
        rc = 1
        failed = run.current or "ui"
        run.finish_step()
        print(f"step {failed} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    finally:
        timer.cancel()
        guest.quit()
    print("\n==== display guest steps")
    for name, secs in run.steps:
        print(f"  {name:<14} {secs:6.1f} s")
    if run.first_frame is not None:
        print(f"  {'first frame':<14} {run.first_frame:6.1f} s after QEMU started")
    return rc

