#!/usr/bin/env bash
# `make image`: builds the Piccolo OS disk image with KIWI (root needed; see image/build.ts).
#   scripts/build-image.sh [--profile debian-qemu|debian-qemu-aarch64|microos-x86_64|microos-rpi] [--verbose]
# Output: build/image/out/*.qcow2. Package cache: $PICCOLO_CACHE_DIR (default /var/cache/piccolo-image).
set -euo pipefail
cd "$(dirname "$0")/.."
exec npx --no-install tsx image/build.ts "$@"
