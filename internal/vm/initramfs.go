package vm

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// bootModules are what the guest needs before it can mount its root: the virtio PCI transport,
// 9p over virtio, and overlayfs. Their dependencies come from the kernel's modules.dep, so the
// load order follows the kernel (for Debian's 6.1: virtio_ring virtio virtio_pci_modern_dev
// virtio_pci_legacy_dev virtio_pci 9pnet 9pnet_virtio netfs fscache 9p overlay). Everything
// else (wireguard, nf_tables, veth, tun) is loaded on demand inside the guest, by the kernel
// through modprobe, from the shared modules tree.
var bootModules = []string{"virtio_pci", "9pnet_virtio", "9p", "overlay"}

// Mount tags of the guest's 9p shares, and where the writable one appears in the guest.
const (
	tagRoot    = "hostroot"
	tagModules = "modules"
	tagShare   = "share"
	// GuestShare is the writable share's path inside the guest: the command to run, and its
	// results. A directory of its own, so that it covers nothing the guest needs.
	GuestShare = "/wgns-vm"
)

// moduleOrder returns the module files (relative to the modules tree) to load, in order, so
// that each module's dependencies come before it. modules.dep lists, for each module, every
// module it needs, in the order modprobe loads them from last to first; modules built into the
// kernel (modules.builtin) have no file and are skipped.
func moduleOrder(modulesDep, modulesBuiltin []byte, want []string) ([]string, error) {
	deps := map[string][]string{} // module name -> its file, then its dependencies' files
	sc := bufio.NewScanner(bytes.NewReader(modulesDep))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[moduleName(mod)] = append([]string{mod}, strings.Fields(rest)...)
	}
	builtin := map[string]bool{}
	for _, l := range strings.Fields(string(modulesBuiltin)) {
		builtin[moduleName(l)] = true
	}
	var order []string
	seen := map[string]bool{}
	add := func(file string) {
		if !seen[file] {
			seen[file] = true
			order = append(order, file)
		}
	}
	for _, m := range want {
		d, ok := deps[m]
		if !ok {
			if builtin[m] {
				continue
			}
			return nil, fmt.Errorf("module %s is neither in modules.dep nor built in", m)
		}
		for i := len(d) - 1; i >= 1; i-- {
			add(d[i])
		}
		add(d[0])
	}
	return order, nil
}

// moduleName is a module's name from its path: kernel/net/9p/9pnet_virtio.ko -> 9pnet_virtio.
func moduleName(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// initScript is the initramfs's /init, run by the static busybox: it loads the boot modules,
// mounts the host's root read-only with a tmpfs overlay on top, the modules tree and the
// writable share into it, and switches to it. /etc is the host's, read-only, without the
// overlay: overlayfs stacks at most two deep, and the test world's /etc is an overlay already,
// with `wgns selftest`'s on top of it. switch_root keeps PID 1, whose root the kernel's own
// helpers share: so the kernel's module autoloading (request_module) runs the host's modprobe,
// which finds the shared modules tree.
func initScript(release string, modules []string) string {
	var b strings.Builder
	b.WriteString(`#!/bin/busybox sh
# /init of a wgns test guest (written by internal/vm).
/bin/busybox --install -s /bin
die() { echo "vm-init: $*" >&2; echo o >/proc/sysrq-trigger; exec sleep 3600; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
`)
	for _, m := range modules {
		fmt.Fprintf(&b, "insmod /modules/%s || die 'insmod %s failed'\n", filepath.Base(m), filepath.Base(m))
	}
	const opts = "trans=virtio,version=9p2000.L,msize=512000"
	fmt.Fprintf(&b, `mount -t 9p -o %[1]s,ro,cache=loose %[2]s /lower || die 'mounting the host root (9p %[2]s) failed'
mount -t tmpfs -o mode=0755 tmpfs /upper || die 'mounting a tmpfs failed'
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot || die 'mounting the overlay root failed'
mkdir -p /newroot/lib/modules/%[5]s /newroot%[6]s
mount -t 9p -o %[1]s,ro %[3]s /newroot/lib/modules/%[5]s || die 'mounting the modules tree (9p %[3]s) failed'
mount -t 9p -o %[1]s %[4]s /newroot%[6]s || die 'mounting the share (9p %[4]s) failed'
mount --bind /lower/etc /newroot/etc || die 'binding the host /etc failed'
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh %[6]s/run.sh
`, opts, tagRoot, tagModules, tagShare, release, GuestShare)
	return b.String()
}

// writeInitramfs writes the guest's initramfs (an uncompressed newc cpio, which the kernel
// takes as it is): a static busybox, /init, and the boot modules of k.
func writeInitramfs(w io.Writer, busybox string, k *Kernel) error {
	if err := checkStatic(busybox); err != nil {
		return err
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	dep, err := os.ReadFile(filepath.Join(k.Modules, "modules.dep"))
	if err != nil {
		return fmt.Errorf("reading the module index (run depmod): %w", err)
	}
	builtin, _ := os.ReadFile(filepath.Join(k.Modules, "modules.builtin"))
	mods, err := moduleOrder(dep, builtin, bootModules)
	if err != nil {
		return fmt.Errorf("%s: %w", k.Modules, err)
	}
	c := &cpioWriter{w: w}
	for _, d := range []string{"bin", "dev", "proc", "sys", "lower", "upper", "newroot", "modules"} {
		c.dir(d, 0o755)
	}
	c.char("dev/console", 0o600, 5, 1)
	c.file("bin/busybox", 0o755, bb)
	c.file("init", 0o755, []byte(initScript(k.Release, mods)))
	for _, m := range mods {
		data, err := os.ReadFile(filepath.Join(k.Modules, m))
		if err != nil {
			return err
		}
		if !strings.HasSuffix(m, ".ko") {
			return fmt.Errorf("module %s is compressed; busybox's insmod here takes only .ko files", m)
		}
		c.file("modules/"+filepath.Base(m), 0o644, data)
	}
	return c.close()
}

// checkStatic returns an error unless path is a statically linked executable: the initramfs
// has no libraries.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("busybox %s: %w (install busybox-static)", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("busybox %s is dynamically linked; the guest's initramfs needs a static one (install busybox-static)", path)
		}
	}
	return nil
}
