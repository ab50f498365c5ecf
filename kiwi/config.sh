#!/bin/bash
# KIWI runs this inside the image root at the end of `system prepare`. Piccolo's own units are
# enabled by symlinks in the root overlay, so this only sets what the distribution leaves open.
# It must not depend on the root overlay: the build driver caches the prepared root without it.
test -f /.kconfig && . /.kconfig
test -f /.profile && . /.profile
# After sourcing: KIWI's helper functions are not written for nounset.
set -euxo pipefail

systemctl set-default multi-user.target

# Podman at boot: the daemon is Podman's only client and reaches it through podman.socket, which
# starts podman.service on demand; it supervises the apps itself (their containers have restart
# policy "no") and updates them itself. Debian's package enables podman.service,
# podman-restart.service and podman-auto-update.service (which also prunes images) at boot: three
# podman runs that competed with the Piccolo units for the CPU (trial boots under TCG: ~6 s of
# emulated CPU to ready, health's start 5.6 -> 4.7 s).
for unit in podman.service podman-restart.service podman-auto-update.service; do
    if [ -e "/usr/lib/systemd/system/$unit" ]; then systemctl disable "$unit"; fi
done

# Every flashed device must get its own identity: the machine-id (journal, DHCP client id, D-Bus)
# is created at first boot from an empty file, and the random seed is not shipped at all, so no
# two devices start from the same entropy.
: > /etc/machine-id
rm -f /var/lib/systemd/random-seed
# Debian's D-Bus keeps its own copy unless it is the usual symlink to /etc/machine-id.
if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
    rm -f /var/lib/dbus/machine-id
fi

case ",${kiwi_profiles:-}," in
    *,debian-qemu,* | *,debian-qemu-aarch64,*)
        # QEMU's user network hands out its address by DHCP (see debian-qemu/etc/systemd/network).
        systemctl enable systemd-networkd.service
        ;;
    *,microos-*)
        # zypper's per-install id would be shared by every device as well.
        rm -f /var/lib/zypp/AnonymousUniqueId
        # transactional-update and rollback need snapper to know the read-only root snapshot.
        if [ "${kiwi_btrfs_root_is_snapshot:-false}" = true ]; then
            cp /usr/share/snapper/config-templates/default /etc/snapper/configs/root
            baseUpdateSysConfig /etc/sysconfig/snapper SNAPPER_CONFIGS root
            sed -i 's/^TIMELINE_CREATE=.*/TIMELINE_CREATE="no"/' /etc/snapper/configs/root
        fi
        # KIWI writes "ro" for the read-only root snapshot. A plain ro mount makes the whole btrfs
        # read-only, so /etc, /var, /home (subvolumes of the same filesystem) could not be mounted
        # read-write. ro=vfs keeps only the root's mount read-only. KIWI runs /etc/fstab.script
        # chrooted once it has written /etc/fstab (during `system create`), then deletes it.
        # test/unit/kiwi-profiles.test.ts runs the text between the markers on sample fstabs.
        cat > /etc/fstab.script <<'FSTAB_SCRIPT'
#!/bin/sh
set -eu
fstab=${FSTAB:-/etc/fstab}
awk '$2 == "/" && $1 !~ /^#/ {
    n = split($4, opts, ","); out = ""
    for (i = 1; i <= n; i++) { if (opts[i] == "ro") opts[i] = "ro=vfs"; out = out (i > 1 ? "," : "") opts[i] }
    $4 = out
} { print }' "$fstab" > "$fstab.new"
mv "$fstab.new" "$fstab"
FSTAB_SCRIPT
        chmod 0755 /etc/fstab.script
        systemctl enable NetworkManager.service
        ;;
esac
