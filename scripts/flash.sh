#!/usr/bin/env bash
# Writes a Piccolo OS disk image to an SD card or other block device.
#   scripts/flash.sh IMAGE DEVICE        e.g. scripts/flash.sh build/image/out/piccolo-os.aarch64-0.1.0.raw /dev/sdb
# IMAGE may be raw or qcow2 (converted on the fly). Refuses anything that is not a whole block
# device, any device with a mounted partition, and asks the user to type the device name.
# Every write is logged to $PICCOLO_FLASH_LOG (default build/flash.log in the repository).
set -euo pipefail

die() { echo "flash: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 IMAGE DEVICE"
image=$1
device=$(readlink -f "$2")
log=${PICCOLO_FLASH_LOG:-$(cd "$(dirname "$0")/.." && pwd)/build/flash.log}

[ -f "$image" ] || die "no such image: $image"
[ -b "$device" ] || die "$device is not a block device"
case "$(lsblk -dno TYPE "$device")" in disk|loop) ;; *) die "$device is not a whole disk (give /dev/sdX or /dev/mmcblkN, not a partition)" ;; esac
mounted=$(lsblk -nro MOUNTPOINTS "$device" 2>/dev/null || lsblk -nro MOUNTPOINT "$device")
[ -z "$(echo "$mounted" | tr -d '[:space:]')" ] || die "$device has mounted filesystems ($(echo $mounted)); unmount them first"
grep -qs "^$device " /proc/swaps && die "$device is used as swap"

format=$(qemu-img info --output=json "$image" | sed -n 's/.*"format": *"\([a-z0-9]*\)".*/\1/p' | head -1)
echo "Image:  $image (${format:-raw})"
echo "Device: $device  $(lsblk -dno SIZE,MODEL,SERIAL "$device" | tr -s ' ')"
echo "ALL DATA ON $device WILL BE DESTROYED."
read -r -p "Type the device name ($device) to continue: " answer
[ "$answer" = "$device" ] || die "confirmation did not match, nothing written"

mkdir -p "$(dirname "$log")"
echo "$(date -Is) flash start image=$image sha256=$(sha256sum "$image" | cut -d' ' -f1) device=$device user=$(id -un)" >> "$log"
if [ "$format" = qcow2 ]; then
  qemu-img convert -p -O raw "$image" "$device"
else
  dd if="$image" of="$device" bs=4M conv=fsync status=progress
fi
sync
echo "$(date -Is) flash done device=$device" >> "$log"
echo "flash: wrote $image to $device (logged in $log)"
