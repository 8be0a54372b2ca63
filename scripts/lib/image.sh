# shellcheck shell=bash disable=SC2034,SC2154 # variables set here are used by the scripts that source this file; locked comes from qemu_init
# The steps of scripts/image: Till's OS image from Debian 12's arm64
# packages, Till's device build and the shared image files (image/).
# Sourced after lib/common.sh and lib/qemu.sh, never executed.

# Where Debian's packages come from (the same mirror and keyring as the
# machine's apt; the Pi firmware is in non-free-firmware).
DEBIAN_MIRROR="${TILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY="${TILL_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"

# image_init: IMG (target/image, or $CARGO_TARGET_DIR/image, or
# $TILL_IMAGE_DIR), SOURCE_DATE_EPOCH (the last commit's time: every file
# of the root filesystem gets it), K (the kernel ABI to install).
image_init() {
    IMG="${TILL_IMAGE_DIR:-${CARGO_TARGET_DIR:-$TILL_ROOT/target}/image}"
    mkdir -p "$IMG"
    IMG="$(cd "$IMG" && pwd)"
    SOURCE_DATE_EPOCH="$(git -C "$TILL_ROOT" log -1 --format=%ct 2>/dev/null || echo 1764547200)"
    export SOURCE_DATE_EPOCH
    qemu_kernel_abi_or_die
}

# ---------------------------------------------------------------- binaries
# image_binaries: TILL_BIN and TILLCTL_BIN, the aarch64 programs the image
# ships: till as the device build (README, "till on a device") and tillctl
# without the touchscreen app (the field engineer's console tool).
image_binaries() {
    local cross_env
    cross_env="$("$TILL_ROOT/scripts/cross" env)" || die "scripts/cross env failed"
    (
        eval "$cross_env"
        "$DEB_CARGO" build --profile device --target "$CROSS_TRIPLE" -p till-app --bin till \
            --no-default-features --features device "${locked[@]}" \
            --message-format=json-render-diagnostics >"$IMG/till-build.json" ||
            die "the device build of till for $CROSS_TRIPLE failed"
        "$DEB_CARGO" build --profile device --target "$CROSS_TRIPLE" -p till-app --bin tillctl \
            --no-default-features "${locked[@]}" \
            --message-format=json-render-diagnostics >"$IMG/tillctl-build.json" ||
            die "the build of tillctl for $CROSS_TRIPLE failed"
    ) || exit 1
    TILL_BIN="$(cargo_executable "$IMG/till-build.json" till bin)"
    TILLCTL_BIN="$(cargo_executable "$IMG/tillctl-build.json" tillctl bin)"
    local b
    for b in "$TILL_BIN" "$TILLCTL_BIN"; do
        [[ -n "$b" && -x "$b" ]] || die "cargo reported no executable for till or tillctl (see $IMG/*-build.json)"
        is_aarch64_elf "$b" || die "$b is not an aarch64 executable"
    done
    info "till $(numfmt --to=iec --suffix=B "$(stat -c %s "$TILL_BIN")"), tillctl $(numfmt --to=iec --suffix=B "$(stat -c %s "$TILLCTL_BIN")")"
}

# ---------------------------------------------------------------- base
# What the terminal runs on, from Debian's packages: the init system and
# device manager, name resolution and network time for the wired port, the display stack's libraries (libinput, xkbcommon; till
# draws with its own software renderer), RAUC with D-Bus and U-Boot's
# environment tools, the kernel, and what the data partition's first boot
# needs (growpart, mkfs.ext4, e2fsck).
BASE_PACKAGES=(
    systemd systemd-sysv udev dbus systemd-resolved systemd-timesyncd
    rauc rauc-service libubootenv-tool
    initramfs-tools
    e2fsprogs dosfstools cloud-guest-utils fdisk kmod
    libinput10 libxkbcommon0 xkb-data libgcc-s1
)

# The initrd's modules: the disks (virtio on QEMU; on a Pi 4 / CM4 the SD
# card's controller, its regulators' GPIO expander and the firmware's
# reset line) and the root's filesystem. Their dependencies come along.
INITRD_MODULES=(virtio_pci virtio_blk mmc_block sdhci_iproc gpio_raspberrypi_exp reset_raspberrypi ext4)

# image_base: BASE, a tarball of the Debian root filesystem (cached: a
# changed package list or kernel makes a new one, and one older than a
# week is made again with the mirror's current packages, security updates
# included).
image_base() {
    local pkgs key
    pkgs=("${BASE_PACKAGES[@]}" "linux-image-$K")
    key="$(printf '%s\n' "${pkgs[@]}" "${INITRD_MODULES[@]}" "$DEBIAN_MIRROR" "$DEBIAN_SECURITY" minbase-v2 | sha256sum | cut -c1-16)"
    BASE="$IMG/base-$key.tar"
    if [[ -s "$BASE" && -z "$(find "$BASE" -mtime +7)" ]]; then
        info "cached: ${BASE#"$TILL_ROOT"/} ($(numfmt --to=iec --suffix=B "$(stat -c %s "$BASE")"))"
        return 0
    fi
    rm -f "$IMG"/base-*.tar "$BASE.tmp"
    mkdir -p "$IMG/tmp"
    local include
    include="$(
        IFS=,
        echo "${pkgs[*]}"
    )"
    # Before the kernel is installed: its files go to /boot with
    # /boot/vmlinuz and /boot/initrd.img pointing at them, where U-Boot
    # loads them (image/boot.cmd); the initrd holds only what finds and
    # mounts the root (INITRD_MODULES), not most of the kernel's modules
    # (which takes long under emulation and makes a 30 MB initrd).
    # shellcheck disable=SC2016 # the hooks' $1 is mmdebstrap's, for sh
    TMPDIR="$IMG/tmp" logged "$IMG/mmdebstrap.log" "$PY" "$TILL_ROOT/scripts/lib/binfmt-userns.py" \
        mmdebstrap --arch=arm64 --variant=minbase --mode=root --format=tar \
        --include="$include" \
        --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && printf "do_symlinks = yes\nlink_in_boot = yes\n" >"$1/etc/kernel-img.conf" && printf "MODULES=list\n" >"$1/etc/initramfs-tools/conf.d/till.conf" && printf "%s\n" '"${INITRD_MODULES[*]}"' >"$1/etc/initramfs-tools/modules"' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        bookworm "$BASE.tmp" \
        "deb $DEBIAN_MIRROR bookworm main" \
        "deb $DEBIAN_MIRROR bookworm-updates main" \
        "deb $DEBIAN_SECURITY bookworm-security main"
    mv "$BASE.tmp" "$BASE"
    info "${BASE#"$TILL_ROOT"/}: $(numfmt --to=iec --suffix=B "$(stat -c %s "$BASE")")"
}

# ---------------------------------------------------------------- rootfs
# image_rootfs: ROOTFS, the directory genimage makes slot A's filesystem
# from: the base, image/overlay (the files every Till image shares), the
# binaries, the till user, the services enabled. No keys: provisioning
# writes them to the data partition.
image_rootfs() {
    ROOTFS="$IMG/rootfs"
    rm -rf "$ROOTFS"
    mkdir -p "$ROOTFS"
    tar -C "$ROOTFS" -xf "$BASE" || die "cannot unpack $BASE"
    cp -a "$TILL_ROOT/image/overlay/." "$ROOTFS/"
    install -m 0755 "$TILL_BIN" "$ROOTFS/usr/bin/till"
    install -m 0755 "$TILLCTL_BIN" "$ROOTFS/usr/bin/tillctl"
    local m
    for m in qemu rpi4; do
        install -D -m 0644 "$TILL_ROOT/image/$m/devices.toml" "$ROOTFS/usr/share/till/machines/$m/devices.toml"
    done
    # Users and groups now: the root is read-only on the device.
    logged "$IMG/sysusers.log" systemd-sysusers --root="$ROOTFS"
    logged "$IMG/systemctl.log" systemctl --root="$ROOTFS" enable \
        till.service till-data.service till-machine.service \
        systemd-networkd.service systemd-resolved.service systemd-timesyncd.service
    [[ -e "$ROOTFS/boot/vmlinuz" && -e "$ROOTFS/boot/initrd.img" ]] ||
        die "the base has no /boot/vmlinuz and /boot/initrd.img (see $IMG/mmdebstrap.log)"
    # A machine id per boot (the root is read-only), the boot partition's
    # mount point, a name.
    : >"$ROOTFS/etc/machine-id"
    mkdir -p "$ROOTFS/boot/firmware"
    echo till >"$ROOTFS/etc/hostname"
    image_prune
    find "$ROOTFS" -depth -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch -h -d "@$SOURCE_DATE_EPOCH"
    info "root filesystem: $(du -sh --apparent-size "$ROOTFS" | cut -f1) in $(find "$ROOTFS" | wc -l) files"
}

# What a terminal never reads, out of the root filesystem: documentation,
# translations of other programs, Perl's library and glibc's iconv
# modules (nothing runs Perl or iconv on the device; dpkg never runs on a
# read-only root), and the kernel modules of hardware neither machine has
# (sound, video capture, InfiniBand, other vendors' GPUs, network cards
# and Wi-Fi). What stays of the kernel: storage, USB, HID, input, GPIO,
# SPI, serial, DRM for vc4/v3d and virtio, Broadcom Ethernet and Wi-Fi,
# virtio, filesystems, the device-mapper and crypto RAUC's verity bundles
# need, networking.
PRUNE_MODULES=(
    sound drivers/media drivers/infiniband drivers/staging drivers/iio drivers/isdn
    drivers/atm drivers/firewire drivers/gnss drivers/nfc drivers/target drivers/xen
    drivers/gpu/drm/{amd,arm,ast,etnaviv,hisilicon,hyperv,imx,lima,meson,msm,mxsfb,nouveau,panfrost,qxl,radeon,rockchip,sun4i,tegra,vmwgfx}
    drivers/net/wireless/{admtek,ath,atmel,intel,intersil,marvell,mediatek,ralink,realtek,rsi,ti,zydas}
    drivers/net/{appletalk,can,fddi,hamradio,hyperv,ieee802154,wwan,xen-netback}
    drivers/net/ethernet/{3com,8390,adaptec,agere,alteon,amazon,amd,apm,aquantia,atheros,brocade,cadence,cavium,chelsio,cisco,dec,dlink,emulex,freescale,google,hisilicon,huawei,intel,marvell,mellanox,myricom,natsemi,neterion,netronome,packetengines,qlogic,qualcomm,rdc,sfc,silan,sis,socionext,sun,tehuti,ti,via}
    net/{6lowpan,appletalk,atm,ax25,batman-adv,bluetooth,can,ceph,dccp,ieee802154,mac802154,mpls,netrom,nfc,openvswitch,phonet,rds,rose,rxrpc,sctp,smc,sunrpc,tipc}
)

image_prune() {
    local before modules="$ROOTFS/usr/lib/modules/$K"
    before="$(du -s --apparent-size -B1M "$ROOTFS" | cut -f1)"
    rm -rf "$ROOTFS"/usr/share/{doc,man,info,lintian,bug,locale} "$ROOTFS"/var/log/* "$ROOTFS"/var/cache/* \
        "$ROOTFS"/usr/share/perl "$ROOTFS"/usr/lib/aarch64-linux-gnu/perl "$ROOTFS"/usr/lib/aarch64-linux-gnu/gconv
    local d
    for d in "${PRUNE_MODULES[@]}"; do
        rm -rf "${modules:?}/kernel/$d"
    done
    logged "$IMG/depmod.log" depmod -b "$ROOTFS" "$K"
    info "pruned $((before - $(du -s --apparent-size -B1M "$ROOTFS" | cut -f1))) MiB (documentation, translations, Perl, iconv, kernel modules for other hardware)"
}

# ---------------------------------------------------------------- boot
# image_boot MACHINE: the machine's boot partition in ROOTFS/boot/firmware
# (genimage makes the FAT image from there and keeps it out of the root
# filesystem, which stays the same for both machines).
image_boot() {
    local machine=$1 boot="$ROOTFS/boot/firmware"
    rm -rf "$boot"
    mkdir -p "$boot"
    logged "$IMG/mkimage.log" mkimage -A arm64 -O linux -T script -C none -n "Till A/B boot" \
        -d "$TILL_ROOT/image/boot.cmd" "$boot/boot.scr"
    case "$machine" in
        qemu) image_uboot_qemu ;;
        rpi4) image_boot_rpi4 "$boot" ;;
    esac
    info "boot partition: $(find "$boot" -type f | wc -l) files, $(du -sh --apparent-size "$boot" | cut -f1)"
    # The mount point stays in the root filesystem: dated like the rest.
    touch -h -d "@$SOURCE_DATE_EPOCH" "$boot"
}

# image_uboot_qemu: $IMG/u-boot-qemu.bin, Debian's U-Boot (the u-boot
# source package, Debian's patches, u-boot-qemu's qemu_arm64 configuration)
# with its environment in uboot.env on the first FAT partition of the
# virtio disk, as Debian's rpi_arm64 U-Boot keeps it on the SD card: one
# convention on both machines (RAUC's fw_setenv, image/boot.cmd).
image_uboot_qemu() {
    local out="$IMG/u-boot-qemu.bin" src build cfg ver
    ver="$(dpkg-query -W -f '${Version}' u-boot-qemu 2>/dev/null)" || die "u-boot-qemu is not installed: run scripts/setup"
    if [[ -s "$out" && "$(cat "$out.version" 2>/dev/null)" == "$ver-env-fat-1" ]]; then
        info "cached: ${out#"$TILL_ROOT"/} (u-boot $ver)"
        return 0
    fi
    local apt="$IMG/apt-src"
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/src"
    printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bookworm main\ndeb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bookworm-updates main\ndeb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bookworm-security main\n' \
        "$DEBIAN_MIRROR" "$DEBIAN_MIRROR" "$DEBIAN_SECURITY" >"$apt/sources.list"
    cat >"$apt/apt.conf" <<EOF
Dir::Etc::SourceList "$apt/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::State::Lists "$apt/lists";
Dir::Cache "$apt";
Dir::Cache::Archives "$apt/archives";
APT::Sandbox::User "root";
EOF
    logged "$IMG/uboot-apt.log" env APT_CONFIG="$apt/apt.conf" apt-get -q update
    src="$(find "$apt/src" -maxdepth 1 -type d -name 'u-boot-*' | head -n 1)"
    if [[ -z "$src" ]]; then
        (cd "$apt/src" && APT_CONFIG="$apt/apt.conf" apt-get -q source "u-boot=$ver") >"$IMG/uboot-source.log" 2>&1 ||
            die "apt-get source u-boot=$ver failed (see $IMG/uboot-source.log)"
        src="$(find "$apt/src" -maxdepth 1 -type d -name 'u-boot-*' | head -n 1)"
    fi
    [[ -n "$src" ]] || die "no u-boot source under $apt/src"
    build="$IMG/uboot-build"
    rm -rf "$build"
    mkdir -p "$build"
    cfg="$build/.config"
    zcat /usr/share/doc/u-boot-qemu/configs/config.qemu_arm64.gz >"$cfg" ||
        die "no qemu_arm64 configuration in u-boot-qemu"
    sed -i -e 's/^CONFIG_ENV_IS_IN_FLASH=y/# CONFIG_ENV_IS_IN_FLASH is not set/' \
        -e '/^CONFIG_ENV_IS_IN_FAT/d' -e '/^# CONFIG_ENV_IS_IN_FAT /d' \
        -e '/^CONFIG_ENV_SIZE=/d' -e '/^CONFIG_ENV_ADDR=/d' -e '/^CONFIG_ENV_SECT_SIZE=/d' \
        -e '/^CONFIG_ENV_FAT_/d' -e '/^CONFIG_FAT_WRITE/d' -e '/^# CONFIG_FAT_WRITE/d' "$cfg"
    cat >>"$cfg" <<'EOF'
CONFIG_ENV_IS_IN_FAT=y
CONFIG_ENV_FAT_INTERFACE="virtio"
CONFIG_ENV_FAT_DEVICE_AND_PART="0:1"
CONFIG_ENV_FAT_FILE="uboot.env"
CONFIG_ENV_SIZE=0x4000
CONFIG_FAT_WRITE=y
EOF
    logged "$IMG/uboot-config.log" make -C "$src" O="$build" CROSS_COMPILE=aarch64-linux-gnu- olddefconfig
    grep -q '^CONFIG_ENV_IS_IN_FAT=y' "$cfg" || die "U-Boot's configuration lost CONFIG_ENV_IS_IN_FAT (see $cfg)"
    logged "$IMG/uboot-build.log" make -C "$src" O="$build" CROSS_COMPILE=aarch64-linux-gnu- -j"$(nproc)" u-boot.bin
    cp "$build/u-boot.bin" "$out"
    printf '%s\n' "$ver-env-fat-1" >"$out.version"
    info "${out#"$TILL_ROOT"/}: $(numfmt --to=iec --suffix=B "$(stat -c %s "$out")")"
}

# image_boot_rpi4 DIR: the Pi's boot files — its firmware (Debian's
# raspi-firmware), U-Boot (u-boot-rpi, rpi_arm64), the device trees of
# Debian's kernel, Till's config.txt and device-tree overlays.
image_boot_rpi4() {
    local boot=$1 fw uboot dtbs f
    fetch_debs raspi-firmware u-boot-rpi:arm64
    fw="$IMG/raspi-firmware"
    uboot="$IMG/u-boot-rpi"
    extract "$fw" "${DEB_PATH[raspi-firmware]}"
    extract "$uboot" "${DEB_PATH[u-boot-rpi:arm64]}"
    for f in start4.elf fixup4.dat start4cd.elf fixup4cd.dat start4x.elf fixup4x.dat start4db.elf fixup4db.dat; do
        cp "$fw/usr/lib/raspi-firmware/$f" "$boot/" || die "raspi-firmware has no $f"
    done
    cp "$uboot/usr/lib/u-boot/rpi_arm64/u-boot.bin" "$boot/u-boot.bin" || die "u-boot-rpi has no rpi_arm64/u-boot.bin"
    dtbs="$ROOTFS/usr/lib/linux-image-$K/broadcom"
    [[ -d "$dtbs" ]] || die "the kernel has no device trees in ${dtbs#"$ROOTFS"}"
    # Debian's device trees carry no labels (__symbols__); Till's SPI
    # overlay needs the GPIO controller's ("gpio") for its chip select.
    for f in "$dtbs"/bcm2711-*.dtb; do
        cp "$f" "$boot/"
        if ! fdtput -c "$boot/${f##*/}" /__symbols__ ||
            ! fdtput -t s "$boot/${f##*/}" /__symbols__ gpio /soc/gpio@7e200000; then
            die "fdtput could not label the GPIO controller in ${f##*/}"
        fi
    done
    cp "$TILL_ROOT/image/rpi4/config.txt" "$boot/config.txt"
    mkdir -p "$boot/overlays"
    local overlays=()
    for f in "$TILL_ROOT"/image/rpi4/overlays/*.dts; do
        logged "$IMG/dtc.log" dtc -@ -Hepapr -I dts -O dtb -o "$boot/overlays/$(basename "$f" .dts).dtbo" "$f"
        overlays+=("$boot/overlays/$(basename "$f" .dts).dtbo")
    done
    # Every overlay config.txt names must apply to every device tree, as
    # the firmware will apply them.
    for f in "$boot"/bcm2711-*.dtb; do
        logged "$IMG/fdtoverlay.log" fdtoverlay -i "$f" -o "$IMG/overlaid.dtb" "${overlays[@]}"
    done
    rm -f "$IMG/overlaid.dtb"
}

# ---------------------------------------------------------------- genimage
# What a new image's data partition starts with (data-partition reads it).
DATA_UNFORMATTED="TILL-DATA-UNFORMATTED v1"

# image_assemble MACHINE: $IMG/till-MACHINE.img from image/genimage.cfg;
# also keeps slot A's filesystem as $IMG/rootfs-MACHINE.ext4 (the same
# bytes for both machines).
image_assemble() {
    local machine=$1 tmp="$IMG/genimage-tmp" out="$IMG/genimage-out"
    rm -rf "$tmp" "$out"
    mkdir -p "$out"
    # The data partition's first block (till-data.service: "unformatted").
    printf '%s\n' "$DATA_UNFORMATTED" | dd of="$out/data-unformatted.img" bs=4096 conv=sync status=none
    # mke2fs and the e2fsck genimage runs after it date what they write
    # by these, not by the clock: the same files make the same bytes.
    export E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH" E2FSCK_TIME="$SOURCE_DATE_EPOCH"
    logged "$IMG/genimage-$machine.log" \
        genimage --config "$TILL_ROOT/image/genimage.cfg" --rootpath "$ROOTFS" \
        --tmppath "$tmp" --inputpath "$out" --outputpath "$out"
    mv "$out/till.img" "$IMG/till-$machine.img"
    mv "$out/rootfs.ext4" "$IMG/rootfs-$machine.ext4"
    # mke2fs copies each file's times, which building changes (a change
    # time cannot even be set on the source): give every inode the commit's,
    # in slot A of the image (found through its partition table) and in the
    # kept copy.
    local start
    start="$(sfdisk --json "$IMG/till-$machine.img" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][1]["start"] * 512)')" ||
        die "cannot read the partition table of till-$machine.img"
    (
        cd "$ROOTFS" || exit 1
        { echo; echo lost+found; find . -mindepth 1 -path ./boot/firmware/\* -prune -o -printf '%P\n'; } |
            sed -e 's/"/\\"/g' \
                -e "s|.*|sif \"/&\" ctime @$SOURCE_DATE_EPOCH\nsif \"/&\" atime @$SOURCE_DATE_EPOCH\nsif \"/&\" mtime @$SOURCE_DATE_EPOCH|"
    ) >"$IMG/ctime.debugfs"
    logged "$IMG/debugfs-$machine.log" debugfs -w -f "$IMG/ctime.debugfs" "$IMG/till-$machine.img?offset=$start"
    logged "$IMG/debugfs-$machine.log" debugfs -w -f "$IMG/ctime.debugfs" "$IMG/rootfs-$machine.ext4"
    cmp -s "$IMG/rootfs-$machine.ext4" <(dd if="$IMG/till-$machine.img" bs=1M iflag=skip_bytes,count_bytes skip="$start" count="$(stat -c %s "$IMG/rootfs-$machine.ext4")" status=none) ||
        die "slot A of till-$machine.img is not rootfs-$machine.ext4"
    rm -rf "$tmp" "$out"
    info "${IMG#"$TILL_ROOT"/}/till-$machine.img: $(numfmt --to=iec --suffix=B "$(stat -c %s "$IMG/till-$machine.img")") ($(du -h "$IMG/till-$machine.img" | cut -f1) written)"
}

# ---------------------------------------------------------------- running it
# What scripts/image-test and scripts/image-run share: a development
# terminal and acquirer on this machine, a provisioning stick for the
# image, the QEMU machine.

# image_host_tools: HOST_BIN, where till-acquirer and tillctl for this
# machine are (debug builds).
image_host_tools() {
    select_host_toolchain
    cargo build -q "${locked[@]}" -p till-acquirer --bin till-acquirer
    cargo build -q "${locked[@]}" -p till-app --bin tillctl --no-default-features
    HOST_BIN="${CARGO_TARGET_DIR:-$TILL_ROOT/target}/debug"
}

# image_dev_pki DIR: DIR/pki, a development PKI for terminal TILL0001 whose
# acquirer certificate names 10.0.2.100, where the guest finds it.
image_dev_pki() {
    rm -rf "$1/pki"
    logged "$1/pki.log" "$HOST_BIN/tillctl" pki init "$1/pki" --terminal-id TILL0001 --host 10.0.2.100
}

# image_provisioning_stick DIR PASSWORD: DIR/stick.img, a FAT filesystem
# labelled TILL-PROV with till-provision/: the terminal's files from
# DIR/pki, the administrator's first password, settings with the
# acquirer's address as the guest sees it.
image_provisioning_stick() {
    local d=$1 p="$1/stick/till-provision"
    rm -rf "$d/stick" "$d/stick.img"
    mkdir -p "$p"
    cp "$d/pki/ca.crt" "$d/pki"/terminal.{crt,key,tmk,datakey} "$p/"
    printf '%s\n' "$2" >"$p/admin-password"
    printf '%s\n' 'merchant_name = "Till Demo Shop 演示商店"' 'merchant_id = "123456789012345"' \
        'host = "10.0.2.100:7000"' >"$p/settings.toml"
    logged "$d/stick.log" mkfs.vfat -C -n TILL-PROV "$d/stick.img" 8192
    logged "$d/stick.log" mcopy -s -i "$d/stick.img" "$p" ::/
}

# image_acquirer DIR: till-acquirer on a free loopback port (ACQUIRER_PORT,
# ACQUIRER_PID) with DIR/pki, its ledger in DIR/ledger.jsonl.
image_acquirer() {
    local d=$1 _
    ACQUIRER_PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$HOST_BIN/till-acquirer" --listen "127.0.0.1:$ACQUIRER_PORT" --pki "$d/pki" --ledger "$d/ledger.jsonl" \
        >"$d/acquirer.log" 2>&1 </dev/null &
    ACQUIRER_PID=$!
    for _ in $(seq 100); do
        grep -q 'listening' "$d/acquirer.log" && break
        kill -0 "$ACQUIRER_PID" 2>/dev/null || die "till-acquirer ended (see $d/acquirer.log)"
        sleep 0.1
    done
    grep -q 'listening' "$d/acquirer.log" || die "till-acquirer is not listening after 10 s (see $d/acquirer.log)"
    info "acquirer on 127.0.0.1:$ACQUIRER_PORT, the guest's 10.0.2.100:7000"
}

# image_qemu_command DIR [QEMU-OPTION...]: QEMU, the qemu machine as the
# terminal: U-Boot, DIR/disk.qcow2, virtio-gpu at 800x480, a virtio
# tablet (no keyboard), an xHCI controller for USB sticks, a 16550 whose
# bytes go to DIR/printer.bin, and user networking restricted to one
# forward, the guest's 10.0.2.100:7000 to the acquirer.
image_qemu_command() {
    local d=$1
    shift
    # shellcheck disable=SC2054 # commas inside QEMU's option values
    QEMU=(
        qemu-system-aarch64 -M virt -cpu cortex-a72 -smp "${TILL_QEMU_SMP:-2}" -m 1024
        -bios "$IMG/u-boot-qemu.bin"
        -drive "if=none,id=disk,format=qcow2,file=$d/disk.qcow2" -device virtio-blk-pci,drive=disk
        -device "virtio-gpu-pci,xres=800,yres=480"
        -device virtio-tablet-pci
        -device qemu-xhci,id=xhci
        -chardev "file,id=printer,path=$d/printer.bin" -device pci-serial,chardev=printer
        # A relay per connection (guestfwd's cmd:): a chardev would be one
        # connection, opened when QEMU starts.
        -netdev "user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:7000-cmd:socat - TCP:127.0.0.1:$ACQUIRER_PORT"
        -device virtio-net-pci,netdev=net0,romfile=
        "$@"
    )
}
