#!/bin/bash
# MicroOS health-checker plugin. After an update, health-checker rolls back to the previous
# snapshot if a plugin's `check` fails, so `check` fails only when Piccolo never gets ready.
# Ready is the health service's /health/ready answering 200: "locked, waiting for unlock" is a
# note there, not a failure, so a device waiting for its password after a reboot passes.
# PICCOLO_HEALTH_URL / PICCOLO_HEALTH_WAIT exist for tests and debugging.
url=${PICCOLO_HEALTH_URL:-http://127.0.0.1:4040/health/ready}
# Seconds: the services may still be starting (TimeoutStartSec and a restart or two).
max_wait=${PICCOLO_HEALTH_WAIT:-180}
# One attempt's limit in seconds (connect and read), never beyond what is left of max_wait.
probe_limit=5

# One GET over bash's /dev/tcp; prints the status code, then the body. Args: host port path.
probe() {
	exec 3<>"/dev/tcp/$1/$2" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1" >&3
	local proto code line
	read -r proto code _ <&3
	echo "${code%$'\r'}"
	# Skip the headers; the body follows the empty line.
	while read -r line <&3 && [ -n "${line%$'\r'}" ]; do :; done
	# Builtins only: a minimal PATH (no cat) must do.
	while IFS= read -r line <&3 || [ -n "$line" ]; do printf '%s\n' "$line"; done
}
export -f probe

# Sets $status (the HTTP code, 000 when nothing answered) and $body for one attempt. curl where
# present, else /dev/tcp (MicroOS may lack curl). Arg: seconds allowed.
attempt() {
	local limit=$1 answer
	if command -v curl >/dev/null 2>&1; then
		answer=$(curl -s -m "$limit" -w '\n%{http_code}' "$url")
		status=${answer##*$'\n'}
		body=${answer%$'\n'*}
		[ "$body" = "$answer" ] && body=
		return
	fi
	local rest=${url#http://}
	local hostport=${rest%%/*} path=/${rest#*/}
	[ "$rest" = "$hostport" ] && path=/
	local host=${hostport%:*} port=${hostport##*:}
	[ "$host" = "$hostport" ] && port=80
	# timeout bounds connect and read; the child shell keeps a failed redirection contained.
	answer=$(timeout "$limit" bash -c 'probe "$@"' _ "$host" "$port" "$path" 2>/dev/null)
	status=${answer%%$'\n'*}
	body=${answer#*$'\n'}
	[ -n "$status" ] || status=000
}

# Milliseconds since the epoch: bash 5's EPOCHREALTIME, as SECONDS' whole seconds could cut the
# wait short by up to a second.
now_ms() {
	if [ -n "$EPOCHREALTIME" ]; then
		local t=${EPOCHREALTIME/[.,]/}
		echo $((10#$t / 1000))
	else
		echo $((SECONDS * 1000))
	fi
}

# Retries until 200 or max_wait has passed; on failure says why (the health service's reasons).
run_checks() {
	local deadline=$(($(now_ms) + max_wait * 1000)) left rest
	for (( ; ; )); do
		left=$(((deadline - $(now_ms) + 999) / 1000))
		((left < 1)) && left=1
		attempt $((left < probe_limit ? left : probe_limit))
		[ "$status" = 200 ] && return 0
		rest=$((deadline - $(now_ms)))
		if ((rest <= 0)); then
			echo "piccolo: $url not ready after ${max_wait}s (last answer: HTTP $status) ${body}" >&2
			exit 1
		fi
		((rest > 2000)) && rest=2000
		sleep "$((rest / 1000)).$(printf '%03d' $((rest % 1000)))"
	done
}

# health-checker calls `stop` when the device never came up, or when a reboot did not help, and no
# rollback is left: stop all of Piccolo, the doors first (tunnel, proxy), then the daemon (its
# gocryptfs mounts stay, see KillMode in its unit, so no data is cut off mid-write) and health.
stop_services() {
	systemctl stop piccolo-tunnel.service piccolo-proxy.service piccolo-daemon.service piccolo-health.service
}

case "$1" in
	check) run_checks ;;
	stop) stop_services || exit ;;
	*)
		echo "Usage: $0 {check|stop}" >&2
		exit 1
		;;
esac
exit 0
