#!/bin/bash
# KIWI calls this (microos-rpi profile) after installing grub, outside the image root, with the
# working directory set to the image root:  $1 = disk image file, $2 = root partition device.
# The Pi boot ROM loads its firmware, config.txt and u-boot from the first FAT partition; with
# efiparttable="msdos" that is the EFI partition (partition 1). Copy them there.
set -euxo pipefail
root_part=$2
# /dev/mapper/loop0p3 or /dev/loop0p3 -> partition 1 of the same disk
efi_part=${root_part%p[0-9]*}p1

mnt=$(mktemp -d)
trap 'umount "$mnt" 2>/dev/null || true; rmdir "$mnt"' EXIT
mount "$efi_part" "$mnt"
# raspberrypi-firmware(-config,-dt) install to /boot/vc; u-boot-rpiarm64 ships u-boot.bin,
# which config.txt (kernel=u-boot.bin) starts; u-boot then loads grub from EFI/BOOT.
cp -a boot/vc/. "$mnt/"
cp -a boot/u-boot.bin "$mnt/u-boot.bin"
sync
