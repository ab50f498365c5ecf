#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian 12 machine: system tools from apt,
# then the npm packages from the lock file. Cheap when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # services and integration tests
  podman runc uidmap slirp4netns gocryptfs fuse swtpm swtpm-tools tpm2-tools iproute2 busybox-static systemd socat nftables curl python3 chromium pebble
  # a real OCI registry on loopback for the pull tests (test/support/registry.ts)
  docker-registry
  # mDNS tests (test/integration/mdns.test.ts): Avahi in network namespaces, avahi-resolve as the client
  avahi-daemon avahi-utils
  # image build (KIWI on Debian) and boot
  kiwi kiwi-systemdeps-core kiwi-systemdeps-filesystems jing rsync fdisk grub-pc-bin dbus
  qemu-system-x86 qemu-utils
)
# `scripts/setup.sh bench`: also the peers the benchmarks compare against.
[ "${1:-}" = bench ] && APT_PACKAGES+=(nginx haproxy caddy wrk iperf3 util-linux openssh-server shadowsocks-libev shadowsocks-v2ray-plugin)
# `scripts/setup.sh aarch64`: building and booting the aarch64 image (make test-image-aarch64).
[ "${1:-}" = aarch64 ] && APT_PACKAGES+=(qemu-user-static binfmt-support qemu-efi-aarch64 qemu-system-arm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Podman cannot start containers here with its defaults (see shared/notes/platform.md): cap the
# ulimits at what the host allows and use runc with cgroupfs.
if [ ! -f /etc/containers/containers.conf ]; then
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
  [ "$nofile" = unlimited ] || [ "$nofile" -gt 20000 ] && nofile=20000
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
fi

# Foreign-architecture chroots (the aarch64 image build) run through binfmt_misc, which this
# machine's kernel has but does not mount.
if [ "${1:-}" = aarch64 ]; then
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc none /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi

stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The real Nexus relay server, a peer for the remote-access end-to-end test, built from its Go
# module when Go >= 1.24 is there. Where it cannot be had, say so: the test then skips that part.
NEXUS_MODULE=github.com/AtDexters-Lab/nexus-proxy/cmd/nexus-proxy-server@v0.3.14
export PATH="$PATH:/usr/local/go/bin:${GOPATH:-$HOME/go}/bin"
if ! command -v nexus-proxy-server >/dev/null; then
  if command -v go >/dev/null && go version | grep -qE 'go1\.(2[4-9]|[3-9][0-9])'; then
    if ! out=$(go install "$NEXUS_MODULE" 2>&1); then
      echo "setup: the real Nexus server is not installed ($(printf '%s' "$out" | grep -m1 -oE '[0-9]{3} [A-Za-z ]+|not available|no matching.*' || echo "go install failed")): the end-to-end test runs against our relay only"
    fi
  else
    echo "setup: Go 1.24 or newer not found: the real Nexus server is not installed; the end-to-end test runs against our relay only"
  fi
fi

# `scripts/setup.sh bench`: the current Caddy beside Debian's 2.6, for bench/proxy.ts (which looks in
# ~/go/bin and, without it, records why it was skipped). Only for the benches: make test does not need it.
CADDY_MODULE=github.com/caddyserver/caddy/v2/cmd/caddy@latest
if [ "${1:-}" = bench ] && [ ! -x "$HOME/go/bin/caddy" ] && command -v go >/dev/null; then
  echo "setup: go install $CADDY_MODULE (a few minutes)"
  GOBIN="$HOME/go/bin" go install "$CADDY_MODULE" >/dev/null 2>&1 || echo "setup: the current Caddy is not installed (go install failed): the proxy bench compares with Debian's only"
fi
