package integration

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Debian 12's podman (4.3, with its CNI backend) runs containers on a wgns network and in a wgns
// tunnel's namespace. Everything podman keeps is inside the test world: its configuration comes
// from files of the test (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF),
// its storage (vfs) is on the world's tmpfs, its CNI cache under the world's own /var/lib, and
// its only image is built here from Debian's busybox-static, so it needs no registry.

// podman is a podman configured for one test.
type podman struct {
	env []string
}

const podmanImage = "localhost/wgns-busybox:test"

// newPodman configures podman for the CNI setup e, with its networks in e.confDir, and imports
// the busybox image.
func newPodman(t *testing.T, e *cniEnv) *podman {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is not installed (make deps installs it)")
	}
	// crun looks at /sys/fs/cgroup even with cgroups disabled; the world's fresh /sys has
	// nothing there. The unified hierarchy (no controllers on this machine) satisfies it.
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		if err := unix.Mount("none", "/sys/fs/cgroup", "cgroup2", 0, ""); err != nil {
			t.Fatalf("mounting cgroup2 on the world's /sys/fs/cgroup: %v", err)
		}
	}
	dir, err := os.MkdirTemp("/run", "podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	files := map[string]string{
		"containers.conf": fmt.Sprintf(`[containers]
cgroups = "disabled"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
runtime = "crun"
tmp_dir = "%[1]s/tmp"
[network]
network_backend = "cni"
cni_plugin_dirs = ["%[2]s", "%[3]s"]
network_config_dir = "%[4]s"
`, dir, e.binDir, debianPlugins, e.confDir),
		"storage.conf":    fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = \"%[1]s/graph\"\nrunroot = \"%[1]s/runroot\"\n", dir),
		"registries.conf": "unqualified-search-registries = []\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := &podman{env: []string{"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(dir, "registries.conf")}}
	if out := p.must(t, "info", "--format", "{{.Host.NetworkBackend}} {{.Store.GraphDriverName}}"); strings.TrimSpace(out) != "cni vfs" {
		t.Fatalf("podman info: %q, want the CNI backend and vfs storage", out)
	}
	// The image: Debian's static busybox and a link for each of its applets.
	if f, err := elf.Open("/bin/busybox"); err != nil {
		t.Fatalf("/bin/busybox: %v (make deps installs busybox-static)", err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Fatal("/bin/busybox is linked dynamically: the image needs busybox-static's")
			}
		}
		f.Close()
	}
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "cp", "/bin/busybox", filepath.Join(root, "bin", "busybox"))
	for _, applet := range strings.Fields(mustRun(t, "/bin/busybox", "--list")) {
		if applet != "busybox" {
			if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tarball := filepath.Join(dir, "busybox.tar")
	mustRun(t, "tar", "-C", root, "-cf", tarball, ".")
	p.must(t, "import", "-q", tarball, podmanImage)
	return p
}

func (p *podman) run(args ...string) (string, error) {
	cmd := exec.Command("podman", args...)
	cmd.Env = append(os.Environ(), p.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *podman) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.run(args...)
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// start runs a container that sleeps, with the options given; t.Cleanup removes it.
func (p *podman) start(t *testing.T, name string, opts ...string) {
	t.Helper()
	args := append(append([]string{"run", "-d", "--name", name}, opts...), podmanImage, "sleep", "600")
	p.must(t, args...)
	t.Cleanup(func() { p.run("rm", "-f", "-t", "0", name) })
}

// exec runs a shell command in container name.
func (p *podman) exec(name, script string) (string, error) {
	return p.run("exec", name, "sh", "-c", script)
}

// assertContainerTunnel shows ping, DNS (with busybox's nslookup, which asks resolv.conf's first
// server) and TCP through the tunnel from the container, and that addresses outside the tunnel
// stay out of reach; the capture on the uplink shows only WireGuard's UDP.
func assertContainerTunnel(t *testing.T, p *podman, w *leakWorld, name string, capture *tcpdumpCapture) {
	t.Helper()
	for _, script := range []string{
		"ping -c1 -W5 " + peerTunnel4,
		"nslookup " + leakDNSName + " | grep -q " + leakDNSAddr,
		"test \"$(nc -w5 " + peerTunnel4 + " 8080 </dev/null)\" = hello",
	} {
		if out, err := p.exec(name, script); err != nil {
			t.Errorf("in container %s: %s: %v\n%s", name, script, err, out)
		}
	}
	for _, script := range []string{
		"ping -c1 -W1 " + outside4, "ping -c1 -W1 " + peerUnderlay4, "ping -c1 -W1 " + hostUnderlay4,
		"nc -w1 " + outside4 + " 53 </dev/null", "nslookup -timeout=1 " + leakDNSName + " " + peerUnderlay4,
	} {
		if out, err := p.exec(name, script); err == nil {
			t.Errorf("LEAK: in container %s, %s got through:\n%s", name, script, out)
		}
	}
	foreign, wg := w.uplinkForeign(capture.stop(t, false))
	for _, l := range foreign {
		t.Errorf("LEAK on the uplink: %s", l)
	}
	if wg == 0 {
		t.Error("the uplink carried no WireGuard packet")
	}
}

// learnAnyPort records the UDP ports of every WireGuard device of the world and its namespaces
// but the peer's: the tunnel's, for the uplink's judge.
func (w *leakWorld) learnAnyPort(t *testing.T, netns string) {
	t.Helper()
	for _, args := range [][]string{{"wg", "show", "all", "listen-port"}, {"nsenter", "--net=" + netns, "wg", "show", "all", "listen-port"}} {
		out, _ := run(args[0], args[1:]...)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] != w.p.Dev {
				w.ports[f[1]] = true
			}
		}
	}
	if len(w.ports) == 0 {
		t.Fatalf("no WireGuard listen port found for %s", netns)
	}
}

// TestIntegrationPodmanNetwork: podman runs a container on a wgns CNI network. The container's
// only way out is the tunnel (ping, DNS, TCP through it; nothing else gets out; the uplink carries
// only WireGuard's UDP). Its resolv.conf: podman 4.3 with CNI puts the servers of the CNI result
// (the tunnel's) first and appends the host's; with --dns and the tunnel's servers it has those
// alone. Removing the container runs DEL: nothing of the attachment is left.
func TestIntegrationPodmanNetwork(t *testing.T) {
	const name = "pn"
	w := newLeakWorld(t, name)
	tcpServer(t, w.p)
	e := newCNIEnv(t)
	conflist := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "wgpod", "plugins": [{"type": "wgns", "config": %q}]}`, w.config)
	if err := os.WriteFile(filepath.Join(e.confDir, "wgpod.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newPodman(t, e)
	if out := p.must(t, "network", "ls", "--format", "{{.Name}} {{.Driver}}"); !strings.Contains(out, "wgpod wgns") {
		t.Fatalf("podman network ls does not list wgpod:\n%s", out)
	}
	hostDNS := hostNameservers(t)

	// Without --dns: the tunnel's server first, then the host's.
	p.start(t, "plain", "--network", "wgpod")
	resolv, err := p.exec("plain", "cat /etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	servers := nameservers(resolv)
	if len(servers) == 0 || servers[0] != peerTunnel4 {
		t.Errorf("resolv.conf of a container on wgpod without --dns:\n%s\nwant %s first", resolv, peerTunnel4)
	}
	for _, s := range hostDNS {
		if !strings.Contains(resolv, s) {
			t.Logf("podman no longer appends the host's server %s; the README says it does", s)
		}
	}
	p.must(t, "rm", "-f", "-t", "0", "plain")

	// With --dns: the tunnel's alone.
	p.start(t, "c1", "--network", "wgpod", "--dns", peerTunnel4)
	resolv, err = p.exec("c1", "cat /etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	if got := nameservers(resolv); len(got) != 1 || got[0] != peerTunnel4 {
		t.Errorf("resolv.conf of a container on wgpod with --dns %s:\n%s", peerTunnel4, resolv)
	}
	netns := strings.TrimSpace(p.must(t, "inspect", "--format", "{{.NetworkSettings.SandboxKey}}", "c1"))
	if out := mustRun(t, "ip", "-n", filepath.Base(netns), "-o", "link", "show"); !strings.Contains(out, "eth0:") || strings.Count(out, "\n") != 2 {
		t.Errorf("the container's namespace has, besides lo, not just the WireGuard interface eth0:\n%s", out)
	}
	waitFor(t, 20*time.Second, "a ping through the container's tunnel", func() bool {
		_, err := p.exec("c1", "ping -c1 -W1 "+peerTunnel4)
		return err == nil
	})
	w.learnAnyPort(t, netns)
	capture := startCapture(t, w.uplink)
	assertContainerTunnel(t, p, w, "c1", capture)

	p.must(t, "rm", "-f", "-t", "0", "c1")
	if ents, _ := os.ReadDir("/run/wgns/cni"); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("after podman rm, /run/wgns/cni holds %v", names)
	}
	if pids := cniHolders(); len(pids) > 0 {
		t.Errorf("after podman rm, holders %v are left", pids)
	}
	if out := mustRun(t, "ip", "-o", "link", "show"); strings.Contains(out, "wgc") {
		t.Errorf("after podman rm, the host world has a wgns interface:\n%s", out)
	}
}

// TestIntegrationPodmanJoinsTunnel: `podman run --network ns:/run/netns/NAME` puts a container into
// a tunnel of `wgns up`. podman reads /etc/netns/NAME/resolv.conf for such a namespace (as ip netns
// exec does), which is the tunnel's DNS view, so the container's DNS is the tunnel's without an
// option; its traffic goes through the tunnel and nothing else gets out. The tunnel outlives the
// container, and wgns down refuses while the container runs inside.
func TestIntegrationPodmanJoinsTunnel(t *testing.T) {
	const name = "pj"
	w := newLeakWorld(t, name)
	tcpServer(t, w.p)
	e := newCNIEnv(t)
	p := newPodman(t, e)
	mustWgns(t, "up", "--name", name, w.config)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
	waitTunnel(t, name)

	p.start(t, "j1", "--network", "ns:/run/netns/"+name)
	resolv, err := p.exec("j1", "cat /etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("/etc/netns", name, "resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if got := nameservers(resolv); len(got) != 1 || got[0] != peerTunnel4 || !strings.Contains(string(want), peerTunnel4) {
		t.Errorf("resolv.conf of a container in tunnel %s:\n%s\nwant the tunnel's:\n%s", name, resolv, want)
	}
	ino := strings.TrimSpace(mustRun(t, "stat", "-L", "-c", "%i", "/run/netns/"+name))
	if out, err := p.exec("j1", "readlink /proc/self/ns/net"); err != nil || strings.TrimSpace(out) != "net:["+ino+"]" {
		t.Errorf("the container is in %q, want the tunnel's namespace net:[%s] (%v)", out, ino, err)
	}
	w.learnPort(t)
	capture := startCapture(t, w.uplink)
	assertContainerTunnel(t, p, w, "j1", capture)

	if _, errOut, code := wgnsRun(t, "down", name); code == 0 || !strings.Contains(errOut, "processes still run inside") {
		t.Errorf("wgns down with a container inside: exit %d, %s", code, errOut)
	}
	p.must(t, "rm", "-f", "-t", "0", "j1")
	mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
	mustWgns(t, "down", name)
}

// nameservers lists the servers of a resolv.conf.
func nameservers(resolv string) []string {
	var out []string
	for _, l := range strings.Split(resolv, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

// hostNameservers are the servers of the world's /etc/resolv.conf.
func hostNameservers(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	return nameservers(string(b))
}
