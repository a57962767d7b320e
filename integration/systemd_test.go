package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/wgns/wgns/internal/syncbuf"
)

// A real systemd, PID 1 of a container that systemd-nspawn boots from this machine's own OS
// (read-only /usr, everything else a throwaway tmpfs: --volatile=yes). The container shares the
// test world's network namespace (no --private-network): wgns in it sees the world's links and
// reaches the peer through the world's veth, as wgns on a host would.
//
// Everything else of wgns stays inside the container: /run/netns, /run/wgns, /var/run/wireguard
// and /etc/netns are the container's own. That keeps wgns's state coherent: the container has a
// PID namespace of its own, so the holder PIDs wgns records mean nothing in the world, and
// nspawn makes the container's mounts slaves of the world's, so a namespace wgns mounts on
// /run/netns/NAME inside would show in a shared /run/netns of the world as an empty file only.
// Checks of namespaces, files and processes therefore run inside (nsenter); the world checks what
// it shares: links and sockets of its network namespace.

// Paths inside the container.
const (
	ctrWgns     = "/opt/wgns/wgns"         // the binary under test; /usr (where the default lives) is read-only
	ctrWgnsCore = "/opt/libexec/wgns/wgns" // the full wgns it runs for every command but exec
	ctrProbe    = "/srv/probe"             // written by the probe services, read by the test in the world
	ctrTarget   = "wgns-test.target"
)

// nspawnLauncher boots the container from a mount namespace of its own (unshare runs it): tmpfs on
// /run/systemd, the machine's hybrid cgroup hierarchy (the world's fresh /sys has none mounted),
// and a cgroup of its own in both hierarchies for nspawn to delegate, removed when nspawn exits
// (and by the next run, should this one be killed).
// $1 is a file to write nspawn's PID to; the rest are nspawn's arguments.
const nspawnLauncher = `set -e
pidfile=$1; shift
mkdir -p /run/systemd
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup
mkdir /sys/fs/cgroup/unified /sys/fs/cgroup/systemd
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
cg=wgns-test-$$
for h in unified systemd; do
	# What a killed run left (only empty cgroups can go; a running container's stays).
	for old in /sys/fs/cgroup/$h/wgns-test-*; do
		[ -d "$old" ] && find "$old" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	mkdir /sys/fs/cgroup/$h/$cg
	echo $$ > /sys/fs/cgroup/$h/$cg/cgroup.procs
done
set +e
systemd-nspawn "$@" &
nspawn=$!
echo $nspawn > "$pidfile"
wait $nspawn; rc=$?
for h in unified systemd; do
	echo $$ > /sys/fs/cgroup/$h/cgroup.procs
	find /sys/fs/cgroup/$h/$cg -depth -type d -exec rmdir {} +
done
exit $rc
`

// testTarget is what the container boots into: journald (for the logs a failing test prints),
// and fake host resolver services, so that the drop-in's hiding of their sockets is visible.
const testTarget = `[Unit]
Description=wgns integration test
Wants=systemd-journald.socket systemd-journald.service fake-resolvers.service
After=systemd-journald.socket fake-resolvers.service
`

// resolverSockets are the sockets of the host's resolver services that a confined service must
// not reach (nscd, systemd-resolved's varlink API for nss-resolve, avahi for nss-mdns).
var resolverSockets = []string{"/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve", "/run/avahi-daemon/socket"}

// fakeResolvers listens on every socket of resolverSockets.
func fakeResolvers() string {
	var cmds []string
	for _, s := range resolverSockets {
		cmds = append(cmds, fmt.Sprintf("mkdir -p %s && socat UNIX-LISTEN:%s,fork,unlink-early /dev/null", filepath.Dir(s), s))
	}
	return `[Unit]
Description=stand-ins for the host's nscd, systemd-resolved and avahi sockets

[Service]
Type=exec
ExecStart=/bin/sh -c '` + strings.Join(cmds, " & ") + ` & wait'
`
}

// container is a booted systemd-nspawn container.
type container struct {
	leader   int    // PID of its systemd, in the world's PID namespace
	nspawn   int    // PID of systemd-nspawn
	unitDir  string // bound at /etc/systemd/system
	probeDir string // bound at ctrProbe
	console  *syncbuf.Buffer
}

// bootContainer boots a container whose /etc/systemd/system holds wgns's templates (running the
// binary under test), the test target and whatever extra names; t.Cleanup halts it.
func bootContainer(t *testing.T, extra map[string]string) *container {
	t.Helper()
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		t.Fatal("systemd-nspawn is missing: install systemd-container (make deps)")
	}
	c := &container{unitDir: t.TempDir(), probeDir: t.TempDir(), console: &syncbuf.Buffer{}}
	files := map[string]string{
		ctrTarget:                testTarget,
		"fake-resolvers.service": fakeResolvers(),
	}
	for name, args := range map[string][]string{
		"wgns@.service":       {"unit", "template", "--binary", ctrWgns},
		"wgns-netns@.service": {"unit", "template", "wgns-netns@.service"},
	} {
		files[name] = mustWgns(t, args...)
	}
	for name, text := range extra {
		files[name] = text
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(c.unitDir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	launchContainer(t, c, "-D", "/", "--volatile=yes",
		"--bind="+c.unitDir+":/etc/systemd/system",
		"--bind-ro="+wgnsBin+":"+ctrWgns,
		"--bind-ro="+wgnsCore()+":"+ctrWgnsCore,
		"--bind-ro=/etc/wgns",
		"--bind=/dev/net/tun",
		"--bind="+c.probeDir+":"+ctrProbe)
	return c
}

// launchContainer boots an OS tree in c with systemd as PID 1 into ctrTarget (which c.unitDir
// must hold), with the systemd-nspawn arguments nspawnArgs besides those every container has
// (the tree: -D, --volatile=, binds); t.Cleanup halts it.
func launchContainer(t *testing.T, c *container, nspawnArgs ...string) {
	t.Helper()
	idFile := filepath.Join(t.TempDir(), "machine-id")
	if err := os.WriteFile(idFile, []byte(mustRun(t, "systemd-id128", "new")), 0o444); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "nspawn.pid")
	args := []string{"--mount", "--propagation", "private", "sh", "-c", nspawnLauncher, "sh", pidFile,
		"-q", "-M", "wgnstest", "--register=no", "--keep-unit",
		"--console=pipe", "--capability=CAP_NET_ADMIN",
		"--bind-ro=" + idFile + ":/etc/machine-id"}
	args = append(append(args, nspawnArgs...),
		"-b", "systemd.unit="+ctrTarget, "systemd.mask=systemd-machine-id-commit.service")
	launcher := exec.Command("unshare", args...)
	launcher.Stdout, launcher.Stderr = c.console, c.console
	launcher.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := launcher.Start(); err != nil {
		t.Fatalf("starting systemd-nspawn: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- launcher.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := c.run("journalctl", "--no-pager", "-o", "short-monotonic", "-n", "300"); err == nil {
				t.Logf("the container's journal:\n%s", out)
			}
		}
		if c.nspawn != 0 {
			syscall.Kill(c.nspawn, syscall.SIGTERM)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("systemd-nspawn: %v\n%s", err, c.console)
			}
		case <-time.After(20 * time.Second):
			syscall.Kill(c.nspawn, syscall.SIGKILL)
			t.Errorf("the container did not halt in 20s on SIGTERM\n%s", c.console)
			<-exited
		}
	})
	waitFor(t, 10*time.Second, "systemd-nspawn to start", func() bool {
		b, _ := os.ReadFile(pidFile)
		c.nspawn, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return c.nspawn != 0
	})
	waitFor(t, 10*time.Second, "the container's systemd", func() bool {
		c.leader = containerInit(c.nspawn)
		return c.leader != 0
	})
	var state string
	waitFor(t, 20*time.Second, "the container to boot", func() bool {
		out, _ := c.run("systemctl", "is-system-running")
		// Before its API socket is up, systemctl says offline or cannot connect.
		state = strings.TrimSpace(out)
		return state == "running" || state == "degraded" || state == "maintenance" || state == "stopping"
	})
	if state != "running" {
		out, _ := c.run("systemctl", "--failed", "--no-pager")
		t.Fatalf("the container booted %s, want running:\n%s\n%s", state, out, c.console)
	}
	t.Logf("container booted in %v", time.Since(start).Round(time.Millisecond))
}

// containerInit returns the PID of the container's systemd: the child of nspawn that runs
// systemd in another PID namespace, or 0.
func containerInit(nspawn int) int {
	own, _ := os.Readlink("/proc/self/ns/pid")
	m, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range m {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(nspawn) || !strings.HasSuffix(s[:i], "(systemd") {
			continue
		}
		dir := filepath.Dir(f)
		if ns, _ := os.Readlink(dir + "/ns/pid"); ns != "" && ns != own {
			pid, _ := strconv.Atoi(filepath.Base(dir))
			return pid
		}
	}
	return 0
}

// run runs a command in every namespace of the container and returns its combined output.
func (c *container) run(args ...string) (string, error) {
	return run("nsenter", append([]string{"-t", strconv.Itoa(c.leader), "-a", "--"}, args...)...)
}

func (c *container) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(args...)
	if err != nil {
		t.Fatalf("in the container: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// show returns a property of a unit.
func (c *container) show(t *testing.T, unitName, prop string) string {
	t.Helper()
	return strings.TrimSpace(c.mustRun(t, "systemctl", "show", "-P", prop, unitName))
}

// waitProbe waits until the probe service has recorded what it sees in out, and fails at once
// when the service failed instead. (Inactive is no such sign: its start job may be waiting.)
func (c *container) waitProbe(t *testing.T, probe, out string) {
	t.Helper()
	waitFor(t, 10*time.Second, probe+" to record what it sees", func() bool {
		if _, err := os.Stat(filepath.Join(out, "done")); err == nil {
			return true
		}
		if c.activeState(t, probe) == "failed" {
			st, _ := c.run("systemctl", "status", "--no-pager", "-n", "20", probe)
			t.Fatalf("%s failed:\n%s", probe, st)
		}
		return false
	})
}

// tunnelState returns the state wgns status reports for tunnel name inside the container.
func (c *container) tunnelState(t *testing.T, name string) string {
	t.Helper()
	out := c.mustRun(t, ctrWgns, "status", "--json", name)
	var st []tunnelStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 {
		t.Fatalf("wgns status --json %s: %v\n%s", name, err, out)
	}
	return st[0].State
}

// dropIns returns the drop-ins systemd loaded for a unit, space-separated and unquoted
// (systemctl show quotes a path with a backslash, such as an escaped instance name, C-style).
func (c *container) dropIns(t *testing.T, unitName string) string {
	t.Helper()
	var paths []string
	for _, p := range strings.Fields(c.show(t, unitName, "DropInPaths")) {
		if strings.HasPrefix(p, `"`) {
			u, err := strconv.Unquote(p)
			if err != nil {
				t.Fatalf("DropInPaths of %s: %q: %v", unitName, p, err)
			}
			p = u
		}
		paths = append(paths, p)
	}
	return strings.Join(paths, " ")
}

// activeState returns the ActiveState of a unit: active, inactive, failed, activating...
func (c *container) activeState(t *testing.T, unitName string) string {
	t.Helper()
	return c.show(t, unitName, "ActiveState")
}

// netnsInode returns the inode of a network namespace file inside the container.
func (c *container) netnsInode(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(c.mustRun(t, "stat", "-L", "-c", "%i", path))
}

// The name the tunnel's DNS server answers, and its answer (no other resolver knows it).
const (
	dnsName = "peer.wgns.test"
	dnsAddr = "203.0.113.53"
)

// connectCmd connects to the unix socket $s and reports whether it could. (Not nc: Debian's
// /usr/bin/nc is a link into /etc/alternatives, which the container's fresh /etc lacks.)
const connectCmd = `socat -u OPEN:/dev/null UNIX-CONNECT:$s`

// probeScript is the test service, at ctrProbe/probe.sh: it records what it sees in
// ctrProbe/ID, then stays with two processes.
const probeScript = `#!/bin/sh
out=` + ctrProbe + `/$1
mkdir -p $out
readlink /proc/self/ns/net > $out/netns
cat /etc/resolv.conf > $out/resolv.conf
cat /etc/nsswitch.conf > $out/nsswitch.conf
getent hosts ` + dnsName + ` > $out/dns 2>&1
ping -c1 -W5 ` + peerTunnel4 + ` > $out/ping 2>&1 && echo ok >> $out/ping
for s in ` + "/run/nscd/socket /run/systemd/resolve/io.systemd.Resolve /run/avahi-daemon/socket" + `; do
	if ` + connectCmd + ` 2>/dev/null; then echo "$s reachable"; else echo "$s unreachable"; fi
done > $out/sockets
sleep infinity &
touch $out/done
exec sleep infinity
`

// probeUnit is a plain service, written as an admin would, before any drop-in.
func probeUnit(id string) string {
	return `[Unit]
Description=wgns test probe ` + id + `

[Service]
Type=simple
ExecStart=/bin/sh ` + ctrProbe + `/probe.sh ` + id + `
`
}

// TestIntegrationSystemd: wgns@.service under a real systemd brings a tunnel up and down, and
// services confined with `wgns unit install` (both styles, plain and escaped names) run inside
// the tunnel with its DNS, never without it.
func TestIntegrationSystemd(t *testing.T) {
	p := newPeer(t, "sd")
	startDNS(t, p, dnsName, dnsAddr)

	cases := []systemdCase{
		{name: "sdp", style: "path", crash: true},
		{name: "sdj", style: "joins"},
		// "-", "+" and "=" are escaped in unit names (\x2d, \x2b, \x3d); an unescaped "-" would
		// even come back as "/" from %I.
		{name: "s-d+e=p", style: "path"},
		{name: "s-d+e=j", style: "joins", noResolvers: true},
	}
	extra := map[string]string{}
	for i := range cases {
		extra[fmt.Sprintf("probe%d.service", i)] = probeUnit(strconv.Itoa(i))
	}
	c := bootContainer(t, extra)
	if err := os.WriteFile(filepath.Join(c.probeDir, "probe.sh"), []byte(probeScript), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		t.Run(tc.style+"/"+tc.name, func(t *testing.T) {
			testConfinedService(t, c, p, tc, strconv.Itoa(i))
		})
	}
	t.Run("dashed name", func(t *testing.T) { testDashedInstance(t, c, p) })
}

// A tunnel named as Mullvad and Proton name their files (dashes) starts as wgns@NAME.service,
// written as it is, and as systemd-escape writes it.
func testDashedInstance(t *testing.T, c *container, p *peer) {
	const name = "se-got-wg-001"
	conf := filepath.Join("/etc/wgns", name+".conf")
	p.writeConfig(t, conf, "")
	t.Cleanup(func() { os.Remove(conf) })
	for _, instance := range []string{"wgns@" + name + ".service", "wgns@" + unit.UnitNameEscape(name) + ".service"} {
		t.Cleanup(func() { c.run("systemctl", "stop", instance); c.run("systemctl", "reset-failed") })
		c.mustRun(t, "systemctl", "start", instance)
		if st := c.tunnelState(t, name); st != "ready" {
			t.Errorf("wgns status of %s after systemctl start %s: %q, want ready", name, instance, st)
		}
		c.mustRun(t, "ip", "netns", "exec", name, "ping", "-c1", "-W5", peerTunnel4)
		c.mustRun(t, "systemctl", "stop", instance)
		containerNoTrace(t, c, name)
	}
}

// systemdCase is one tunnel and one confined service of TestIntegrationSystemd.
type systemdCase struct {
	name        string
	style       string
	crash       bool // also SIGKILL the tunnel's wgns
	noResolvers bool // the host has none of the resolver sockets (InaccessiblePaths= with "-")
}

func testConfinedService(t *testing.T, c *container, p *peer, tc systemdCase, id string) {
	name, style := tc.name, tc.style
	tunnel := "wgns@" + unit.UnitNameEscape(name) + ".service"
	probe := "probe" + id + ".service"
	out := filepath.Join(c.probeDir, id)
	conf := filepath.Join("/etc/wgns", name+".conf")
	t.Cleanup(func() {
		c.run("systemctl", "stop", probe, tunnel)
		c.run("systemctl", "reset-failed")
		os.Remove(conf)
	})

	// The drop-in, written inside the container so that the daemon-reload reaches its systemd
	// through D-Bus (systemd's private socket: there is no bus daemon).
	got := c.mustRun(t, ctrWgns, "unit", "install", "--style", style, name, probe)
	dropIn := "/etc/systemd/system/" + probe + ".d/50-wgns-" + unit.UnitNameEscape(name) + ".conf"
	for _, want := range []string{"wrote " + dropIn + "\n", "systemd reloaded"} {
		if !strings.Contains(got, want) {
			t.Errorf("unit install said:\n%s\nwant %q in it", got, want)
		}
	}
	tunnelDropIn := "/etc/systemd/system/" + tunnel + ".d/50-wgns-" + probe + ".conf"
	if !strings.Contains(got, "wrote "+tunnelDropIn+"\n") {
		t.Errorf("unit install said:\n%s\nwant it to write %s", got, tunnelDropIn)
	}
	if paths := c.dropIns(t, probe); paths != dropIn {
		t.Errorf("systemd loaded drop-ins %q for %s, want %q", paths, probe, dropIn)
	}
	if again := c.mustRun(t, ctrWgns, "unit", "install", "--style", style, name, probe); !strings.Contains(again, "up to date; nothing changed") {
		t.Errorf("second unit install said:\n%s", again)
	}
	if shown := c.mustRun(t, ctrWgns, "unit", "show", name, probe); shown != c.mustRun(t, "cat", dropIn) {
		t.Errorf("unit show printed:\n%s\nnot the file %s", shown, dropIn)
	}
	if c.show(t, probe, "NeedDaemonReload") != "no" {
		t.Error("systemd needs a daemon-reload after unit install")
	}

	// With no tunnel to be had (no config yet), the service refuses to start: it never runs.
	if o, err := c.run("systemctl", "start", probe); err == nil {
		t.Fatalf("%s started though %s cannot come up:\n%s", probe, tunnel, o)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("%s ran without its tunnel", probe)
	}
	if s := c.activeState(t, probe); s != "inactive" && s != "failed" {
		t.Errorf("%s is %s after its tunnel failed", probe, s)
	}
	c.mustRun(t, "systemctl", "stop", tunnel) // Restart=on-failure would try again
	c.mustRun(t, "systemctl", "reset-failed")

	// systemctl start returns once wgns said READY=1, and by then the namespace is ready.
	p.writeConfig(t, conf, "")
	c.mustRun(t, "systemctl", "start", tunnel)
	if s := c.activeState(t, tunnel); s != "active" {
		t.Fatalf("%s is %s right after systemctl start", tunnel, s)
	}
	if st := c.tunnelState(t, name); st != "ready" {
		t.Fatalf("wgns status right after systemctl start %s: %q, want ready", tunnel, st)
	}
	nsInode := c.netnsInode(t, "/run/netns/"+name)
	mainPID := c.show(t, tunnel, "MainPID")
	// The instance as systemd-escape wrote it (%i), which wgns unescapes itself.
	if cmdline := c.mustRun(t, "cat", "/proc/"+mainPID+"/cmdline"); cmdline != ctrWgns+"\x00up\x00--foreground\x00"+unit.UnitNameEscape(name)+"\x00" {
		t.Errorf("%s runs %q, want wgns up --foreground %s", tunnel, cmdline, unit.UnitNameEscape(name))
	}

	if tc.noResolvers {
		c.mustRun(t, "systemctl", "stop", "fake-resolvers.service")
		t.Cleanup(func() { c.run("systemctl", "start", "fake-resolvers.service") })
		c.mustRun(t, "rm", "-rf", "/run/nscd", "/run/avahi-daemon", "/run/systemd/resolve")
	}

	// The service, started now, runs inside the tunnel with its DNS.
	c.mustRun(t, "systemctl", "start", probe)
	c.waitProbe(t, probe, out)
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got, want := strings.TrimSpace(read("netns")), "net:["+nsInode+"]"; got != want {
		t.Errorf("%s's shell was in network namespace %s, want %s's %s", probe, got, name, want)
	}
	cg := c.show(t, probe, "ControlGroup")
	pids := strings.Fields(c.mustRun(t, "cat", "/sys/fs/cgroup/unified"+cg+"/cgroup.procs"))
	if len(pids) != 2 {
		t.Errorf("%s has processes %v, want 2 (sleep, sleep)", probe, pids)
	}
	for _, pid := range pids {
		if got := c.netnsInode(t, "/proc/"+pid+"/ns/net"); got != nsInode {
			t.Errorf("process %s of %s is in network namespace %s, want %s's %s", pid, probe, got, name, nsInode)
		}
	}
	if want := c.mustRun(t, "cat", "/etc/netns/"+name+"/resolv.conf"); read("resolv.conf") != want {
		t.Errorf("%s saw /etc/resolv.conf:\n%s\nwant the namespace's:\n%s", probe, read("resolv.conf"), want)
	}
	if !strings.Contains(read("resolv.conf"), "nameserver "+peerTunnel4) {
		t.Errorf("the namespace's resolv.conf does not name the tunnel's DNS server:\n%s", read("resolv.conf"))
	}
	if want := c.mustRun(t, "cat", "/etc/netns/"+name+"/nsswitch.conf"); read("nsswitch.conf") != want {
		t.Errorf("%s saw /etc/nsswitch.conf:\n%s\nwant the namespace's:\n%s", probe, read("nsswitch.conf"), want)
	}
	if got := strings.Fields(read("dns")); len(got) != 2 || got[0] != dnsAddr || got[1] != dnsName {
		t.Errorf("getent hosts %s in %s: %q, want %s through the tunnel", dnsName, probe, read("dns"), dnsAddr)
	}
	if !strings.HasSuffix(read("ping"), "ok\n") {
		t.Errorf("ping %s from %s:\n%s", peerTunnel4, probe, read("ping"))
	}
	var wantSockets strings.Builder
	for _, s := range resolverSockets {
		// Outside the service the stand-ins answer: the test can tell hidden from absent.
		if o, err := c.run("sh", "-c", "s="+s+"; "+connectCmd); (err == nil) == tc.noResolvers {
			t.Errorf("control: %s outside the service: %v %s", s, err, o)
		}
		fmt.Fprintf(&wantSockets, "%s unreachable\n", s)
	}
	if got := read("sockets"); got != wantSockets.String() {
		t.Errorf("resolver sockets seen from %s:\n%s\nwant:\n%s", probe, got, wantSockets.String())
	}

	// wgns keeps a human status line with the latest handshake (the probe's ping made one).
	t.Run("status line", func(t *testing.T) {
		var status string
		deadline := time.Now().Add(5 * time.Second)
		for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if status = c.show(t, tunnel, "StatusText"); strings.Contains(status, "latest handshake") {
				break
			}
		}
		if !strings.Contains(status, "latest handshake") {
			t.Errorf("systemctl status %s says %q, want the latest handshake in it", tunnel, status)
		}
		t.Logf("STATUS=%s", status)
	})

	// systemctl restart of the tunnel restarts the service too, and it lands in the new namespace
	// (with joins: not in the one systemd kept for the joined units before).
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	c.mustRun(t, "systemctl", "restart", tunnel)
	c.waitProbe(t, probe, out)
	// A namespace's inode number can come back once it is freed, but the probe keeps its own
	// namespace alive: had it stayed in the old one, the new one could not have its number.
	newInode := c.netnsInode(t, "/run/netns/"+name)
	if got, want := strings.TrimSpace(read("netns")), "net:["+newInode+"]"; got != want {
		t.Errorf("after systemctl restart %s, %s is in network namespace %s, want the new %s", tunnel, probe, got, want)
	}
	if !strings.HasSuffix(read("ping"), "ok\n") {
		t.Errorf("ping %s from %s after the restart:\n%s", peerTunnel4, probe, read("ping"))
	}

	// A kernel tunnel outlives its supervisor (the unit's main process): the restarted unit's up
	// takes it over.
	if tc.crash {
		testTunnelCrash(t, c, name, tunnel, probe)
	}

	// Stopping the tunnel stops the service first, then tears everything down.
	c.mustRun(t, "systemctl", "stop", tunnel)
	if s := c.activeState(t, probe); s != "inactive" {
		t.Errorf("%s is %s after systemctl stop %s", probe, s, tunnel)
	}
	if s := c.show(t, tunnel, "Result"); s != "success" {
		t.Errorf("%s stopped with result %s", tunnel, s)
	}
	containerNoTrace(t, c, name)

	// unit remove takes the drop-in out, and systemd forgets it.
	got = c.mustRun(t, ctrWgns, "unit", "remove", name, probe)
	if !strings.Contains(got, "removed "+dropIn+"\n") || !strings.Contains(got, "systemd reloaded") {
		t.Errorf("unit remove said:\n%s", got)
	}
	if paths := c.dropIns(t, probe); paths != "" {
		t.Errorf("drop-ins of %s after unit remove: %q", probe, paths)
	}
}

// containerNoTrace checks that nothing of tunnel name is left, inside the container and in the
// world's network namespace that it shares.
func containerNoTrace(t *testing.T, c *container, name string) {
	t.Helper()
	var script strings.Builder
	for _, p := range []string{"/run/netns/" + name, "/run/wgns/" + name + ".json", "/run/wgns/" + name + ".ready",
		"/var/run/wireguard/" + name + ".sock", "/run/wireguard/" + name + ".sock", "/etc/netns/" + name} {
		fmt.Fprintf(&script, "test -e '%s' && echo '%s still exists'\n", p, p)
	}
	fmt.Fprintf(&script, "grep -F ' /run/netns/%s ' /proc/self/mountinfo\n", name)
	fmt.Fprintf(&script, "pgrep -a -f '^%s up' \n", ctrWgns)
	script.WriteString("true\n")
	if left := c.mustRun(t, "sh", "-c", script.String()); left != "" {
		t.Errorf("left behind after stop:\n%s", left)
	}
	if out, _ := run("ip", "link", "show", name); !strings.Contains(out, "does not exist") {
		t.Errorf("interface %s still exists in the world: %s", name, out)
	}
	if out := mustRun(t, "ss", "-uanpH"); strings.Contains(out, "wgns") {
		t.Errorf("a wgns UDP socket is left in the world:\n%s", out)
	}
}

// testTunnelCrash: when the tunnel's wgns dies (SIGKILL: no teardown), the confined service is
// stopped at once, and Restart=on-failure brings the tunnel back (its wgns takes over what the
// dead one left), without the service.
func testTunnelCrash(t *testing.T, c *container, name, tunnel, probe string) {
	t.Helper()
	oldPID := c.show(t, tunnel, "MainPID")
	c.mustRun(t, "systemctl", "kill", "--kill-whom=main", "--signal=SIGKILL", tunnel)
	waitFor(t, 5*time.Second, probe+" to stop when "+tunnel+" died", func() bool {
		return c.activeState(t, probe) == "inactive"
	})
	waitFor(t, 10*time.Second, tunnel+" to be restarted", func() bool {
		pid := c.show(t, tunnel, "MainPID")
		return c.activeState(t, tunnel) == "active" && pid != "0" && pid != oldPID
	})
	if st := c.tunnelState(t, name); st != "ready" {
		t.Errorf("wgns status after %s was restarted: %q, want ready", tunnel, st)
	}
	// The service comes back with its tunnel (the tunnel's drop-in wants it).
	waitFor(t, 10*time.Second, probe+" to start again with "+tunnel, func() bool {
		return c.activeState(t, probe) == "active"
	})
	c.mustRun(t, "ip", "netns", "exec", name, "ping", "-c1", "-W5", peerTunnel4)
}

// TestIntegrationSystemdAbsent: in the test world no systemd runs (no /run/systemd/system), so
// unit install writes the drop-in, says how to reload later, and succeeds; so does remove.
func TestIntegrationSystemdAbsent(t *testing.T) {
	dir := t.TempDir()
	const hint = "wgns: systemd is not running; run systemctl daemon-reload when it is\n"
	o, e, code := wgnsRun(t, "unit", "install", "--dir", dir, "my-vpn", "fetch")
	path := filepath.Join(dir, `fetch.service.d/50-wgns-my\x2dvpn.conf`)
	if code != 0 || !strings.HasPrefix(o, "wrote "+path+"\n") || !strings.HasSuffix(e, hint) {
		t.Fatalf("unit install without systemd: exit %d\nstdout: %s\nstderr: %s", code, o, e)
	}
	if shown := mustWgns(t, "unit", "show", "--dir", dir, "my-vpn", "fetch"); !strings.Contains(shown, "BindsTo=wgns@my\\x2dvpn.service\n") {
		t.Errorf("unit show:\n%s", shown)
	}
	o, e, code = wgnsRun(t, "unit", "remove", "--dir", dir, "my-vpn", "fetch.service")
	tunnelSide := filepath.Join(dir, `wgns@my\x2dvpn.service.d/50-wgns-fetch.service.conf`)
	if code != 0 || o != "removed "+path+"\nremoved "+tunnelSide+"\n" || e != hint {
		t.Fatalf("unit remove without systemd: exit %d\nstdout: %s\nstderr: %s", code, o, e)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%s is not empty after unit remove: %v", dir, ents)
	}
}
