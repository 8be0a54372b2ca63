# U-Boot boot script of every Till image (the qemu and rpi4 machines, the
# Debian-built image, Buildroot and Yocto): A/B slots with RAUC's boot
# counting. Compiled to boot.scr (mkimage -T script) on the boot partition,
# where U-Boot's distro boot finds it and runs it with devtype/devnum set
# (virtio 0 on QEMU, mmc 0 on a Pi).
#
# RAUC's U-Boot convention (rauc's "uboot" bootloader backend):
#   BOOT_ORDER      the slots to try, in order ("A B")
#   BOOT_A_LEFT     tries left for slot A; RAUC sets 3 when it installs or
#   BOOT_B_LEFT     marks a slot good, 0 when it marks one bad
# Each boot takes one try from the first slot that has any and saves the
# environment (uboot.env on the boot partition) before starting Linux; a
# slot that never reaches "mark good" runs out of tries and the next one
# boots. The partitions: 2 is slot A, 3 is slot B (image/genimage.cfg).
# The kernel and initrd live in the slot, so an update changes them too.

test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 0

setenv till_part
setenv till_slot
for slot in "${BOOT_ORDER}"; do
  if test -n "${till_part}"; then
    true
  elif test "x${slot}" = "xA" && test ${BOOT_A_LEFT} -gt 0; then
    setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
    setenv till_part 2
    setenv till_slot A
  elif test "x${slot}" = "xB" && test ${BOOT_B_LEFT} -gt 0; then
    setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
    setenv till_part 3
    setenv till_slot B
  fi
done

if test -z "${till_part}"; then
  # Every slot used up its tries: start over with three each rather than
  # leave the terminal dead (RAUC and the health check decide again).
  echo "TILL-BOOT: no slot has tries left; giving each three again"
  setenv BOOT_A_LEFT 3
  setenv BOOT_B_LEFT 3
  saveenv
  reset
fi
saveenv

# The kernel's device tree: the one the Pi firmware prepared (its
# config.txt overlays applied) or QEMU's.
if test -n "${fdt_addr}"; then
  setenv till_fdt ${fdt_addr}
else
  setenv till_fdt ${fdtcontroladdr}
fi

# The console: the PL011 on QEMU; a Pi's GPIO 14/15 UART is the receipt
# printer's (image/rpi4/devices.toml), so there only the screen's.
if test -z "${till_console}"; then
  if test "${board}" = "rpi"; then
    setenv till_console tty1
  else
    setenv till_console ttyAMA0,115200
  fi
fi

part uuid ${devtype} ${devnum}:${till_part} till_root
setenv bootargs "root=PARTUUID=${till_root} ro rootwait rauc.slot=${till_slot} systemd.volatile=state console=${till_console} quiet loglevel=3 panic=5 ${till_extra_args}"
echo "TILL-BOOT: slot ${till_slot} (partition ${till_part}), tries left A=${BOOT_A_LEFT} B=${BOOT_B_LEFT}"
load ${devtype} ${devnum}:${till_part} ${kernel_addr_r} /boot/vmlinuz
load ${devtype} ${devnum}:${till_part} ${ramdisk_addr_r} /boot/initrd.img
booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${till_fdt}
echo "TILL-BOOT: slot ${till_slot} could not be started"
reset
