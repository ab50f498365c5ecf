#!/bin/bash
# KIWI runs this chrooted in the synced disk image (all volumes mounted) during `system create`,
# for every profile; KIWI passes the profile settings (kiwi_profiles, ...) in the environment.
set -euxo pipefail

case ",${kiwi_profiles:-}," in
    *,microos-*)
        # The root is a read-only btrfs snapshot, but /etc must stay writable (machine-id, the
        # admin's network settings, snapper configs). setup-etc-subvol (read-only-root-fs) moves
        # /etc into its own subvolume and adds its fstab line, as openSUSE's MicroOS images do.
        # Missing tool = an image whose /etc is frozen: fail the build instead.
        if [ ! -x /usr/libexec/setup-etc-subvol ]; then
            echo "disk.sh: /usr/libexec/setup-etc-subvol missing (package read-only-root-fs)" >&2
            exit 1
        fi
        /usr/libexec/setup-etc-subvol
        ;;
    *)
        # debian-qemu: ext4 read-write root, nothing to do.
        ;;
esac
