package vm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wgns/wgns/internal/golden"
)

// debianDep is the part of Debian 6.1.0-56-amd64's modules.dep that the boot modules need.
const debianDep = `kernel/fs/overlayfs/overlay.ko:
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/wireguard/wireguard.ko: kernel/lib/crypto/libchacha20poly1305.ko kernel/net/ipv6/ip6_udp_tunnel.ko kernel/net/ipv4/udp_tunnel.ko
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`

func TestModuleOrder(t *testing.T) {
	base := func(files []string) []string {
		var out []string
		for _, f := range files {
			out = append(out, moduleName(f))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		dep     string
		builtin string
		want    []string
		err     string
	}{
		{
			// The order the kernel-vm note measured as working, derived from modules.dep.
			name: "Debian 6.1", dep: debianDep,
			want: []string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
				"9pnet", "9pnet_virtio", "netfs", "fscache", "9p", "overlay"},
		},
		{
			name: "virtio built in", builtin: "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/virtio/virtio_pci.ko\n",
			dep: `kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko
kernel/fs/overlayfs/overlay.ko:
`,
			want: []string{"9pnet", "9pnet_virtio", "9p", "overlay"},
		},
		{name: "missing", dep: "kernel/fs/9p/9p.ko:\n", err: "module virtio_pci is neither in modules.dep nor built in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := moduleOrder([]byte(tc.dep), []byte(tc.builtin), bootModules)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, base(got)); d != "" {
				t.Errorf("load order (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseDepends(t *testing.T) {
	for _, tc := range []struct{ out, want, err string }{
		{out: "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n", want: "linux-image-6.1.0-56-amd64"},
		{out: "linux-image-amd64\n  Depends: linux-image-6.12.38+deb13-amd64\n  Recommends: firmware-linux\n", want: "linux-image-6.12.38+deb13-amd64"},
		{out: "linux-image-amd64\n  Depends: <linux-image-6.1.0-56-amd64>\n", err: "names no kernel package"},
		{out: "", err: "names no kernel package"},
	} {
		got, err := parseDepends([]byte(tc.out))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.out, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.out, got, err, tc.want)
		}
	}
}

// TestShellJoin: sh (not this package) gets back every argument as it was.
func TestShellJoin(t *testing.T) {
	args := []string{"plain", "", "a b", "it's", `"q"`, `back\slash`, "$HOME", "`id`", "new\nline", "*", "'"}
	out, err := exec.Command("sh", "-c", `printf '%s\0' `+shellJoin(args)).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if d := cmp.Diff(args, got); d != "" {
		t.Errorf("arguments through sh (-want +got):\n%s", d)
	}
}

// TestScripts: the guest's /init and run.sh, as golden text.
func TestScripts(t *testing.T) {
	mods, err := moduleOrder([]byte(debianDep), nil, bootModules)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "init", initScript("6.1.0-56-amd64", mods))
	golden.Check(t, "run", runScript(Command{
		Argv: []string{"/work/bin/integration.test", "-test.run", "^TestIntegration(A|B)$"},
		Dir:  "/work/it's here",
		Env:  []string{"WGNS_TEST_MODE=kernel", "HOME=/home/x"},
	}, "ci-runner"))
}

// fakeKernel is a kernel cache entry with empty modules, for runs with a fake QEMU.
func fakeKernel(t *testing.T) *Kernel {
	t.Helper()
	dir := t.TempDir()
	k := &Kernel{Release: "6.1.0-0-amd64", Image: filepath.Join(dir, "vmlinuz"), Modules: filepath.Join(dir, "modules")}
	if err := os.MkdirAll(k.Modules, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{k.Image: "image", filepath.Join(k.Modules, "modules.dep"): debianDep}
	for _, l := range strings.Split(debianDep, "\n") {
		if f, _, ok := strings.Cut(l, ":"); ok {
			files[filepath.Join(k.Modules, f)] = "module " + f
		}
	}
	for p, c := range files {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// fakeQEMU writes a stand-in for qemu-system-x86_64: a script that finds the share in its
// arguments and plays a guest with body (sh, $S is the share).
func fakeQEMU(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu")
	script := `#!/bin/sh
for a in "$@"; do case "$a" in local,id=share,path=*) S=${a#local,id=share,path=}; S=${S%%,*};; esac; done
echo "SeaBIOS (fake)"
` + body
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGuestRun: the runner's side of the guest protocol, against a stand-in for QEMU: the
// output comes through, the exit status is the one in the share, and a guest that gives no
// result (ends early, or never ends) is an error that carries the console.
func TestGuestRun(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if checkStatic(self) != nil {
		t.Skip("the test binary is not static, and stands in for busybox only if it is")
	}
	for _, tc := range []struct {
		name    string
		guest   string
		timeout time.Duration
		code    int
		output  string
		err     string
	}{
		{
			name: "result",
			guest: `cat "$S/run.sh" >/dev/null; echo 0.5 >"$S/started"; echo hello >"$S/output"; echo more >>"$S/output"
echo 3 >"$S/status"; echo "reboot: Power down"`,
			code: 3, output: "hello\nmore\n",
		},
		{
			name:   "no result",
			guest:  `echo partial >"$S/output"; echo "Kernel panic - not syncing: VFS: Unable to mount root fs"; exit 0`,
			output: "partial\n",
			err:    "the guest ended without a result",
		},
		{
			name: "out of time", timeout: time.Second,
			guest: `echo "stuck in the boot loader"; exec sleep 60`,
			err:   "the guest gave no result within 1s",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, log bytes.Buffer
			g := &Guest{Kernel: fakeKernel(t), Busybox: self, QEMU: fakeQEMU(t, tc.guest), Dir: t.TempDir(),
				Timeout: tc.timeout, Output: &out, Log: &log}
			res, err := g.Run(context.Background(), Command{Argv: []string{"true"}})
			if out.String() != tc.output {
				t.Errorf("output %q, want %q", out.String(), tc.output)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "SeaBIOS (fake)") {
					t.Fatalf("error %v, want %q and the console", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tc.code || res.Boot == 0 || res.Total < res.Boot {
				t.Errorf("result %+v, want exit %d and times", res, tc.code)
			}
			b, _ := os.ReadFile(filepath.Join(g.Dir, "share", "run.sh"))
			if !strings.Contains(string(b), "'true') >$S/output") {
				t.Errorf("run.sh does not run the command:\n%s", b)
			}
		})
	}
}

// TestKeepImageAndModules: an unpacked kernel package keeps its image and modules tree, found
// under lib or, for a merged-/usr package, under usr/lib; anything else is an error.
func TestKeepImageAndModules(t *testing.T) {
	const rel = "6.1.0-0-amd64"
	for _, tc := range []struct {
		name  string
		files []string
		err   string
	}{
		{name: "lib", files: []string{"boot/vmlinuz-" + rel, "lib/modules/" + rel + "/modules.order", "usr/share/doc/x"}},
		{name: "merged /usr", files: []string{"boot/vmlinuz-" + rel, "usr/lib/modules/" + rel + "/modules.order"}},
		{name: "no modules", files: []string{"boot/vmlinuz-" + rel}, err: "has no lib/modules/" + rel},
		{name: "no image", files: []string{"lib/modules/" + rel + "/modules.order"}, err: "has no boot/vmlinuz-" + rel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tc.files {
				os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
				if err := os.WriteFile(filepath.Join(root, f), []byte(f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := keepImageAndModules(root, rel)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(root, "lib/modules", rel, "modules.order")); err != nil {
				t.Errorf("modules tree not under lib: %v", err)
			}
			if _, err := os.Stat(filepath.Join(root, "usr")); err == nil {
				t.Errorf("usr is left")
			}
		})
	}
}

// TestNewestCached: offline, the kernel unpacked last is used, and half-unpacked entries are not.
func TestNewestCached(t *testing.T) {
	cache := t.TempDir()
	mk := func(rel string, complete bool, age time.Duration) {
		dir := filepath.Join(cache, rel)
		os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
		os.MkdirAll(filepath.Join(dir, "lib/modules", rel), 0o755)
		os.WriteFile(filepath.Join(dir, "boot", "vmlinuz-"+rel), nil, 0o644)
		os.WriteFile(filepath.Join(dir, "lib/modules", rel, "modules.dep"), nil, 0o644)
		if complete {
			mark := filepath.Join(dir, completeMark)
			os.WriteFile(mark, nil, 0o644)
			when := time.Now().Add(-age)
			os.Chtimes(mark, when, when)
		}
	}
	if _, err := newestCached(cache); err == nil {
		t.Fatal("an empty cache gave a kernel")
	}
	mk("6.1.0-9-amd64", true, time.Hour)
	mk("6.1.0-10-amd64", true, time.Minute)
	mk("6.1.0-11-amd64", false, 0)
	k, err := newestCached(cache)
	if err != nil || k.Release != "6.1.0-10-amd64" {
		t.Fatalf("newestCached: %+v, %v; want 6.1.0-10-amd64", k, err)
	}
}
