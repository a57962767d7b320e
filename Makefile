# wgns — two commands do everything on a fresh Debian machine:
#   sudo make demo   build, then run `wgns selftest` (the main job end to end, against a local peer)
#   sudo make test   install the test dependencies, then run every test (unit and root; the root
#                    tests twice: here with the embedded WireGuard, and with kernel WireGuard in
#                    a QEMU guest that boots Debian's own kernel)

GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# wgns is two programs (README, "How exec stays as cheap as ip netns exec"): BIN, the front that
# users run, which runs exec itself, and CORE, the full wgns, which the front runs for every other
# command. The front finds it at ../libexec/wgns/ under its own name: PREFIX/bin/wgns and
# PREFIX/libexec/wgns/wgns once installed.
BIN     := bin/wgns
CORE    := libexec/wgns/wgns
PREFIX  ?= /usr/local
UNITDIR ?= /etc/systemd/system
FUZZTIME ?= 30s

# Debian packages the tests use as independent witnesses and real peers; podman (with crun), the
# CNI plugins (ptp, host-local) and a static busybox (the image the podman tests build) for the
# CNI tests; QEMU and that busybox boot the kernel-mode guest.
TEST_DEPS := wireguard-tools wireguard-go nftables iproute2 iputils-ping iperf3 dnsmasq-base \
             tcpdump systemd-container nscd netcat-openbsd socat podman crun \
             containernetworking-plugins busybox-static qemu-system-x86
TEST_TOOLS := wg wireguard-go nft ip ping iperf3 dnsmasq tcpdump systemd-nspawn nscd nc socat podman crun \
              qemu-system-x86_64
# The package's tests: building it, lintian, man pages and the three shells' completions.
TEST_DEPS  += debhelper dpkg-dev lintian man-db bash-completion zsh fish
TEST_TOOLS += dh dpkg-buildpackage lintian man zsh fish
# The ports tests: NAT-PMP's gateway and client, and the witnesses of Publish.
TEST_DEPS  += miniupnpd-nftables natpmpc curl python3 strace
TEST_TOOLS += miniupnpd natpmpc curl python3 strace

# The unit files wgns ships, as `wgns unit template` prints them: make install and make deb
# install each of these (and the package enables and starts those that are not templates).
UNITS   := wgns@.service wgns-netns@.service wgns.socket wgns.service
DOCS    := bin/doc
DEB_OUT ?= bin/deb
DEB_VERSION = $(shell packaging/debversion "$(VERSION)" "$$(git rev-list --count HEAD 2>/dev/null || echo 0)")
DOC_DATE    = $(shell git log -1 --format=%cs 2>/dev/null)

# The kernel-mode run (test-kernel): where Debian's kernel package is downloaded and unpacked
# (never installed), which root tests it skips (KERNEL_SKIP, a -test.skip pattern; the rest of
# the suite runs again, see README "Build, demo, test"), and how much longer than here the tests
# may wait for things in the emulated guest. Skipped: a speed measurement (timings under
# emulation say nothing), and the package test, whose container root is an overlay of the
# guest's overlay root, so that selftest's /etc inside it would stack overlayfs three deep (the
# kernel allows two).
KERNEL_CACHE ?= /var/cache/wgns-test/kernel
KERNEL_SKIP ?= ^TestIntegration(DNSEnterCost|DebPackage)$$
KERNEL_TIME_SCALE ?= 4

.PHONY: all build testbuild demo test unit integration test-kernel fuzz deps install uninstall bench bench-kernel clean vet docs deb lintian

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(CORE) ./cmd/wgns
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN) ./cmd/wgns-front

demo: build
	./$(BIN) selftest

# deps installs the Debian packages the tests need, only if a tool is missing, and puts Debian's
# kernel for the kernel-mode guest into KERNEL_CACHE (apt-get download + dpkg-deb -x: installing
# a kernel package would run its maintainer scripts on this machine, build an initramfs and
# change what it boots).
deps:
	@missing=""; for t in $(TEST_TOOLS); do command -v $$t >/dev/null 2>&1 || PATH=$$PATH:/usr/sbin:/sbin command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	test -x /usr/lib/cni/ptp || missing="$$missing containernetworking-plugins"; \
	dpkg-query -W -f '$${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing="$$missing busybox-static"; \
	if [ -n "$$missing" ]; then \
		echo "installing test dependencies (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_DEPS) >/dev/null; \
	fi
	$(GO) run ./integration/vm -fetch -cache $(KERNEL_CACHE)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

# The root tests run a test build of wgns: the same code plus the WGNS_TEST_* hooks (a crash at a
# chosen step, a shorter endpoint check), which a production build does not have. It is a pair
# too: the front bin/wgns-test runs libexec/wgns/wgns-test. The package test installs the .deb of
# the production build.
TESTBIN  := bin/wgns-test
TESTCORE := libexec/wgns/wgns-test

testbuild:
	CGO_ENABLED=0 $(GO) build -trimpath -tags wgnstest -ldflags "-X main.version=$(VERSION)-test" -o $(TESTCORE) ./cmd/wgns
	CGO_ENABLED=0 $(GO) build -trimpath -tags wgnstest -o $(TESTBIN) ./cmd/wgns-front

integration: build testbuild deb
	WGNS_BIN=$(CURDIR)/$(TESTBIN) WGNS_PROD_BIN=$(CURDIR)/$(BIN) WGNS_DEB=$$(ls $(CURDIR)/$(DEB_OUT)/wgns_*.deb) $(GO) test -count=1 -timeout 20m ./integration/

# test-kernel runs the root tests (but KERNEL_SKIP) in a QEMU guest (TCG) booting Debian's
# kernel, where wgns up picks kernel WireGuard by itself; the guest's console log stays in
# bin/vm-run/console.log. The guest sees this machine's files (read-only, with its writes in
# memory): the Go caches given to it let the tests build their helpers there from this
# machine's build cache, without a network.
test-kernel: build testbuild
	$(GO) build -o bin/vm ./integration/vm
	$(GO) test -c -o bin/integration.test ./integration/
	bin/vm -cache $(KERNEL_CACHE) -dir $(CURDIR)/bin/vm-run -C $(CURDIR)/integration \
		-env PATH=$$PATH -env GOCACHE=$$($(GO) env GOCACHE) -env GOMODCACHE=$$($(GO) env GOMODCACHE) \
		-env WGNS_BIN=$(CURDIR)/$(TESTBIN) -env WGNS_PROD_BIN=$(CURDIR)/$(BIN) \
		-env WGNS_TEST_MODE=kernel -env WGNS_TEST_TIME_SCALE=$(KERNEL_TIME_SCALE) \
		-- $(CURDIR)/bin/integration.test -test.count=1 -test.timeout 20m -test.v -test.skip '$(KERNEL_SKIP)'

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./wgns/config/

test: deps vet unit lintian integration test-kernel fuzz

install: build docs
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/wgns
	install -D -m 0755 $(CORE) $(DESTDIR)$(PREFIX)/libexec/wgns/wgns
	install -d -m 0700 $(DESTDIR)/etc/wgns
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	for u in $(UNITS); do ./$(BIN) unit template --binary $(PREFIX)/bin/wgns $$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	install -D -m 0644 $(DOCS)/wgns.8 $(DESTDIR)$(PREFIX)/share/man/man8/wgns.8
	install -D -m 0644 $(DOCS)/wgns.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/wgns.conf.5
	install -D -m 0644 $(DOCS)/wgns.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/wgns
	install -D -m 0644 $(DOCS)/_wgns $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_wgns
	install -D -m 0644 $(DOCS)/wgns.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/wgns.fish
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/wgns $(DESTDIR)$(PREFIX)/libexec/wgns/wgns $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS)) \
		$(DESTDIR)$(PREFIX)/share/man/man8/wgns.8 $(DESTDIR)$(PREFIX)/share/man/man5/wgns.conf.5 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/wgns \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_wgns $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/wgns.fish
	-rmdir $(DESTDIR)$(PREFIX)/libexec/wgns

# docs writes the man pages and the shell completions from the command-line model (wgns __gen).
docs: build
	@mkdir -p $(DOCS)
	./$(BIN) __gen wgns.8 --date "$(DOC_DATE)" > $(DOCS)/wgns.8
	./$(BIN) __gen wgns.conf.5 --date "$(DOC_DATE)" > $(DOCS)/wgns.conf.5
	./$(BIN) __gen bash > $(DOCS)/wgns.bash
	./$(BIN) __gen zsh > $(DOCS)/_wgns
	./$(BIN) __gen fish > $(DOCS)/wgns.fish

# deb builds $(DEB_OUT)/wgns_VERSION_ARCH.deb with debhelper (packaging/mkdeb; packaging/debian).
deb: docs
	GO=$(GO) packaging/mkdeb $(DEB_OUT) $(BIN) $(DOCS) "$(DEB_VERSION)" $(UNITS)

# lintian: no error and no warning (overrides, each with its reason, are in packaging/debian).
lintian: deb
	lintian --fail-on error,warning --display-info $(DEB_OUT)/wgns_*.deb

# bench measures wgns against ip netns exec, wg-quick and plain wireguard-go, as root in a
# private world, and writes BENCHMARKS.md (extra flags: BENCHFLAGS="-only exec -exec-rounds 100").
bench: build
	$(GO) run ./bench -go $(GO) -wgns $(BIN) -out BENCHMARKS.md $(BENCHFLAGS)

# bench-kernel runs the scale section (at 1 and 100 tunnels: what a tunnel and its supervisor
# cost, idle) with kernel WireGuard, in the QEMU guest of test-kernel, and writes
# BENCHMARKS-kernel.md (through the guest's writable share). TCG emulates the CPU: its times
# are several times the machine's; memory and the idle figures are what to read.
bench-kernel: build
	$(GO) build -o bin/vm ./integration/vm
	$(GO) build -o bin/bench ./bench
	bin/vm -cache $(KERNEL_CACHE) -dir $(CURDIR)/bin/vm-bench -C $(CURDIR) \
		-env PATH=$$PATH -env GOCACHE=$$($(GO) env GOCACHE) -env GOMODCACHE=$$($(GO) env GOMODCACHE) \
		-- $(CURDIR)/bin/bench -go $(GO) -wgns $(CURDIR)/$(BIN) -only scale -scale 1,100 -mode kernel -out /wgns-vm/BENCHMARKS-kernel.md
	cp bin/vm-bench/share/BENCHMARKS-kernel.md BENCHMARKS-kernel.md

clean:
	rm -rf bin libexec
