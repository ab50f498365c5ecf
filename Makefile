# Piccolo OS. `make qemu` boots the image (building it if needed); `make test` runs every suite.
# Each target installs what it needs first (scripts/setup.sh is quick when all is there).
.PHONY: setup build typecheck test test-unit test-integration test-image run image qemu soak-store bench bench-proxy bench-tunnel bench-apps bench-footprint clean

NODE_BIN := node_modules/.bin

setup:
	@scripts/setup.sh

build: setup
	@$(NODE_BIN)/tsx image/bundle.ts

# The services and tests, then the portal (browser code: DOM types, TSX).
typecheck: setup
	@$(NODE_BIN)/tsc --noEmit -p .
	@$(NODE_BIN)/tsc --noEmit -p services/daemon/portal

test: setup typecheck
	@$(NODE_BIN)/tsx test/run.ts

test-unit test-integration test-image: setup
	@$(NODE_BIN)/tsx test/run.ts $(@:test-%=%)

# Opt-in, not in make test: the aarch64 Debian image, built here through qemu-user-static and booted
# under TCG on -M virt with AAVMF. Tens of minutes on a first build.
test-image-aarch64: setup
	@scripts/setup.sh aarch64
	@$(NODE_BIN)/tsx test/run.ts image-aarch64

run: build
	@$(NODE_BIN)/tsx scripts/run-dev.ts

image: setup
	@scripts/build-image.sh

qemu: setup
	@scripts/qemu.sh

# The control store's crash soak: 1,000 SIGKILL trials (the default suite runs 50).
soak-store: setup
	@$(NODE_BIN)/tsx scripts/soak-store.ts 1000

# Benchmarks against peers run in the same run (ratios in bench/results/); not part of make test.
bench: bench-proxy bench-tunnel bench-apps bench-footprint

bench-proxy:
	@scripts/setup.sh bench
	@$(NODE_BIN)/tsx bench/proxy.ts

# Our tunnel and relay against ssh -L, ss-tunnel + v2ray-plugin (wss) and, where Go can install them,
# chisel and the real Nexus server (skipped with the reason otherwise). About 10 minutes.
bench-tunnel:
	@scripts/setup.sh bench
	@$(NODE_BIN)/tsx bench/tunnel.ts

# GET /api/v1/apps with 20 apps on real Podman under keep-alive load (wrk), against nginx serving the same body. About 3 minutes.
bench-apps:
	@scripts/setup.sh bench
	@$(NODE_BIN)/tsx bench/apps-read.ts

# The four services as `make run` starts them: each one's idle RSS after 30 s and under light load,
# then each start alone (time to READY, RSS after it). About 3 minutes.
bench-footprint: setup
	@$(NODE_BIN)/tsx bench/footprint.ts

clean:
	rm -rf build .dev
