#!/bin/bash
# MicroOS health-checker plugin. After an update, health-checker rolls back to the previous
# snapshot if a plugin's `check` fails, so `check` fails only when Piccolo never gets ready.
# PICCOLO_HEALTH_URL / PICCOLO_HEALTH_WAIT exist for tests and debugging.
url=${PICCOLO_HEALTH_URL:-http://127.0.0.1:4040/health/ready}
# Seconds: the services may still be starting (TimeoutStartSec and a restart or two).
max_wait=${PICCOLO_HEALTH_WAIT:-180}

# One GET over bash's /dev/tcp; succeeds on status 200. Args: host port path.
probe() {
	exec 3<>"/dev/tcp/$1/$2" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1" >&3
	local proto code
	read -r proto code _ <&3
	[ "${code%$'\r'}" = 200 ]
}
export -f probe

# Succeeds when $url answers 200. curl where present, else /dev/tcp (MicroOS may lack curl).
ready() {
	if command -v curl >/dev/null 2>&1; then
		[ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url")" = 200 ]
		return
	fi
	local rest=${url#http://}
	local hostport=${rest%%/*} path=/${rest#*/}
	[ "$rest" = "$hostport" ] && path=/
	local host=${hostport%:*} port=${hostport##*:}
	[ "$host" = "$hostport" ] && port=80
	# timeout bounds connect and read; the child shell keeps a failed redirection contained.
	timeout 5 bash -c 'probe "$@"' _ "$host" "$port" "$path" 2>/dev/null
}

run_checks() {
	local deadline=$((SECONDS + max_wait))
	until ready; do
		if ((SECONDS >= deadline)); then
			echo "piccolo: $url not ready after ${max_wait}s" >&2
			exit 1
		fi
		sleep 2
	done
}

# health-checker calls `stop` when it can neither roll back nor reboot its way out. Stop what
# exposes apps to the network; keep daemon and health so the owner can still see what is wrong.
stop_services() {
	systemctl stop piccolo-proxy.service piccolo-tunnel.service
}

case "$1" in
	check) run_checks ;;
	stop) stop_services ;;
	*)
		echo "Usage: $0 {check|stop}" >&2
		exit 1
		;;
esac
exit 0
