#!/bin/sh
# TEST AID, debian-qemu image only (see piccolo-listen-report.timer): the guest's listening
# sockets on the serial port, one block per run, for the first-boot story test; and, for its
# diagnosis, the journal tail of a Piccolo unit that restarted since the last run:
#   PICCOLO-LISTEN <run> <tcp|udp> <local address:port> <process>
#   PICCOLO-JOURNAL <unit> <journal line>
#   PICCOLO-LISTEN-END <run>
out=/dev/ttyS0
run=$(cut -d' ' -f1 /proc/uptime)
ss -Hlntup | while read -r proto _state _recvq _sendq local _peer process; do
    echo "PICCOLO-LISTEN $run $proto $local $process" > "$out"
done
for u in piccolo-health piccolo-daemon piccolo-proxy piccolo-tunnel; do
    restarts=$(systemctl show -p NRestarts --value "$u.service")
    seen=/run/piccolo-test-restarts-$u
    if [ "$restarts" != "$(cat "$seen" 2>/dev/null || echo 0)" ]; then
        journalctl -b -u "$u.service" -n 40 --no-pager -o cat 2>&1 | while IFS= read -r line; do
            echo "PICCOLO-JOURNAL $u $line" > "$out"
        done
    fi
    echo "$restarts" > "$seen"
done
echo "PICCOLO-LISTEN-END $run" > "$out"
