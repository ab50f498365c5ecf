#!/bin/bash
# KIWI runs this inside the image root at the end of `system prepare`. Piccolo's own units are
# enabled by symlinks in the root overlay, so this only sets what the distribution leaves open.
# It must not depend on the root overlay: the build driver caches the prepared root without it.
test -f /.kconfig && . /.kconfig
test -f /.profile && . /.profile
# After sourcing: KIWI's helper functions are not written for nounset.
set -euxo pipefail

systemctl set-default multi-user.target

case ",${kiwi_profiles:-}," in
    *,debian-qemu,*)
        # QEMU's user network hands out its address by DHCP (see debian-qemu/etc/systemd/network).
        systemctl enable systemd-networkd.service
        ;;
    *,microos-*)
        # transactional-update and rollback need snapper to know the read-only root snapshot.
        if [ "${kiwi_btrfs_root_is_snapshot:-false}" = true ]; then
            cp /usr/share/snapper/config-templates/default /etc/snapper/configs/root
            baseUpdateSysConfig /etc/sysconfig/snapper SNAPPER_CONFIGS root
            sed -i 's/^TIMELINE_CREATE=.*/TIMELINE_CREATE="no"/' /etc/snapper/configs/root
        fi
        ;;
esac
