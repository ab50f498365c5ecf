#!/bin/bash
# KIWI calls this (microos-rpi profile) after installing grub, outside the image root, with the
# working directory set to the image root:  $1 = disk image file, $2 = root partition device.
# The Pi boot ROM loads its firmware, config.txt, the armstub and u-boot from the first FAT
# partition of an MBR disk; with efiparttable="msdos" that is the EFI partition (partition 1).
# Copy them there, check that everything config.txt names is present, and mark the partition
# as FAT32 (LBA), type 0x0c: KIWI's msdos partitioner leaves the EFI partition at 83 (Linux),
# which the Pi firmware does not read.
set -euxo pipefail
root_part=$2
# /dev/mapper/loop0p3 or /dev/loop0p3 -> /dev/loop0 (the disk) and its partition 1
disk=${root_part%p[0-9]*}
efi_part=${disk}p1
case $disk in /dev/mapper/*) disk=/dev/${disk#/dev/mapper/} ;; esac

# raspberrypi-firmware(-config,-dt) and u-boot-rpiarm64 all install under /boot/vc: the
# firmware blobs, config.txt (kernel=u-boot.bin) and u-boot.bin; u-boot then starts grub from
# EFI/BOOT, which KIWI has already put on the partition.
if [ ! -f boot/vc/config.txt ] || [ ! -f boot/vc/u-boot.bin ]; then
    echo "editbootinstall_rpi.sh: boot/vc/config.txt or boot/vc/u-boot.bin missing" >&2
    exit 1
fi

mnt=$(mktemp -d)
trap 'umount "$mnt" 2>/dev/null || true; rmdir "$mnt"' EXIT
mount "$efi_part" "$mnt"
cp -a boot/vc/. "$mnt/"

# The Pi 4 needs the ARM trusted firmware stub config.txt names (armstub=...); it comes from
# arm-trusted-firmware-rpi4. Copy it from where that package put it when it is not under
# boot/vc, and refuse to finish an image whose config.txt names a file that is not there.
for name in $(sed -n 's/^[[:space:]]*\(armstub\|kernel\)[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\2/p' "$mnt/config.txt" | sort -u); do
    [ -e "$mnt/$name" ] && continue
    found=$(find boot usr/share/arm-trusted-firmware-rpi4 -name "$name" -type f 2>/dev/null | head -n1 || true)
    if [ -z "$found" ]; then
        echo "editbootinstall_rpi.sh: config.txt names $name, which is not in the image" >&2
        exit 1
    fi
    cp "$found" "$mnt/$name"
done
sync
umount "$mnt"

# Only the table entry changes; the partitions stay mapped, so do not ask the kernel to re-read.
sfdisk --no-reread --no-tell-kernel --part-type "$disk" 1 c
