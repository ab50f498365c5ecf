#!/bin/sh
# TEST AID, debian-qemu image only (see piccolo-boot-report.service). Waits until the Piccolo
# units stop changing state (bounded), then writes one line per fact to the serial port:
#   PICCOLO-REPORT unit <name> <ActiveState>
#   PICCOLO-REPORT times <name> start=<us> ready=<us>   (CLOCK_MONOTONIC microseconds)
#   PICCOLO-REPORT log <name> <journal line>            (only for units that are not active)
#   PICCOLO-REPORT boot initrd=<us> userspace=<us>      (when the initrd's and the root's systemd started)
#   PICCOLO-REPORT done
units="piccolo-firewall piccolo-health piccolo-daemon piccolo-proxy piccolo-tunnel"
out=/dev/ttyS0
prop() { systemctl show -p "$2" --value "$1.service"; }
uptime_s() { cut -d. -f1 /proc/uptime; }

deadline=$(( $(uptime_s) + 180 ))
while [ "$(uptime_s)" -lt "$deadline" ]; do
    busy=0
    for u in $units; do
        case "$(prop "$u" ActiveState)" in activating|deactivating|reloading) busy=1 ;; esac
    done
    [ "$busy" = 0 ] && break
    sleep 1
done

for u in $units; do
    state=$(prop "$u" ActiveState)
    echo "PICCOLO-REPORT unit $u $state" > "$out"
    echo "PICCOLO-REPORT times $u start=$(prop "$u" ExecMainStartTimestampMonotonic) ready=$(prop "$u" ActiveEnterTimestampMonotonic)" > "$out"
    if [ "$state" != active ]; then
        journalctl -b -u "$u.service" -n 15 --no-pager -o cat 2>&1 | while IFS= read -r line; do
            echo "PICCOLO-REPORT log $u $line" > "$out"
        done
    fi
done
echo "PICCOLO-REPORT boot initrd=$(systemctl show -p InitRDTimestampMonotonic --value) userspace=$(systemctl show -p UserspaceTimestampMonotonic --value)" > "$out"
echo "PICCOLO-REPORT done" > "$out"
