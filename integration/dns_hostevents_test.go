package integration

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/internal/syncbuf"
)

// The DNS host-event tests: the host's resolver daemons start, restart and re-create their
// directories, and the host renames over its resolv.conf and nsswitch.conf, while confined
// programs and services run; they keep resolving through the tunnel only.

// heNscdConf is a configuration of Debian's nscd that caches hosts and keeps everything in
// memory (the machine's /var/cache/nscd is not the test world's to write).
const heNscdConf = `debug-level 0
paranoia no
enable-cache passwd no
enable-cache group no
enable-cache services no
enable-cache netgroup no
enable-cache hosts yes
positive-time-to-live hosts 3600
negative-time-to-live hosts 20
suggested-size hosts 211
check-files hosts yes
persistent hosts no
shared hosts no
max-db-size hosts 33554432
`

// heNscd is Debian's nscd, run in the test world as the host's name service cache.
type heNscd struct {
	cmd *exec.Cmd
	out *syncbuf.Buffer
}

// heStartNscd starts nscd in the foreground, in /run/nscd as tmpfiles.d would make it, and waits
// for its socket; t.Cleanup stops it.
func heStartNscd(t *testing.T) *heNscd {
	t.Helper()
	bin, err := exec.LookPath("nscd")
	if err != nil {
		bin = "/usr/sbin/nscd"
	}
	conf := filepath.Join(t.TempDir(), "nscd.conf")
	if err := os.WriteFile(conf, []byte(heNscdConf), 0o644); err != nil {
		t.Fatal(err)
	}
	makeDir(t, "/run/nscd")
	n := &heNscd{cmd: exec.Command(bin, "-F", "-f", conf), out: &syncbuf.Buffer{}}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting nscd: %v", err)
	}
	t.Cleanup(func() { n.stop(t) })
	waitFor(t, 10*time.Second, "nscd's socket", func() bool {
		fi, err := os.Stat("/run/nscd/socket")
		return err == nil && fi.Mode()&os.ModeSocket != 0
	})
	return n
}

// stop stops nscd (it removes its socket; its directory stays, as on Debian).
func (n *heNscd) stop(t *testing.T) {
	if n.cmd.ProcessState != nil {
		return
	}
	n.cmd.Process.Kill()
	n.cmd.Wait()
	os.Remove("/run/nscd/socket")
	if t.Failed() {
		t.Logf("nscd:\n%s", n.out.String())
	}
}

// heOtherSockets stand where systemd-resolved's and avahi's sockets would be.
var heOtherSockets = []string{"/run/systemd/resolve/io.systemd.Resolve", "/run/avahi-daemon/socket"}

// TestIntegrationExecHidesResolversStartedLater: a program started by `wgns exec` while no
// resolver daemon runs on the host resolves through the tunnel; then nscd (Debian's, caching
// hosts from the host's resolver, a decoy) starts, and sockets appear where systemd-resolved's
// and avahi's would be: the program still resolves through the tunnel and reaches none of them.
// Then each daemon's directory is removed and made again and the daemons start again, as
// systemd's RuntimeDirectory= does on a restart: still. A program run by `ip netns exec` is the
// control: it gets the decoy's answer through nscd, and reaches the sockets.
func TestIntegrationExecHidesResolversStartedLater(t *testing.T) {
	const name = "helater"
	for _, d := range []string{"/run/nscd", "/run/systemd/resolve", "/run/avahi-daemon"} {
		if _, err := os.Stat(d); err == nil {
			t.Fatalf("%s exists in the test world before the test", d)
		}
	}
	keepFile(t, "/etc/resolv.conf")
	keepFile(t, "/etc/nsswitch.conf")
	replaceFile(t, "/etc/resolv.conf", "nameserver "+decoyAddr+" # the host's resolver: a decoy\n")
	replaceFile(t, "/etc/nsswitch.conf", nsswitchConf("files dns"))
	p := newPeer(t, name)
	startDNS(t, p, dnsName, peerTunnel4)
	startDnsmasq(t, p.NS, "the decoy", []string{decoyAddr}, "/#/"+decoyAnswer)
	tunnelUp(t, p, name)
	q := worldTool(t, "dnsquery")
	sockets := append([]string{"/run/nscd/socket"}, heOtherSockets...)

	// The confined program: at each step, a lookup through glibc, and a connect to each socket.
	script := fmt.Sprintf(`while :; do getent ahostsv4 %s | head -n1; %s connect %s; echo @@; read x || exit 0; done`,
		dnsName, q, strings.Join(sockets, " "))
	child := startSectioned(t, envWithoutSudo(), wgnsBin, "exec", name, "--", "sh", "-c", script)
	var want strings.Builder
	fmt.Fprintf(&want, "%s STREAM %s\n", peerTunnel4, dnsName)
	for _, s := range sockets {
		fmt.Fprintf(&want, "%s: failed: dial unix %s: connect: no such file or directory\n", s, s)
	}
	if got := oneLine(child.section(t)); got != oneLine(want.String()) {
		t.Fatalf("before any resolver runs, the program in wgns exec:\n%s\nwant:\n%s", got, want.String())
	}

	step := func(what string) {
		t.Helper()
		// The control: ip netns exec hides nothing.
		o, err := run("ip", "netns", "exec", name, "getent", "ahostsv4", dnsName)
		if err != nil || !strings.HasPrefix(o, decoyAnswer+" ") {
			t.Fatalf("%s: the control in ip netns exec: getent: %v %q, want the decoy's %s (through nscd), or this test proves nothing",
				what, err, o, decoyAnswer)
		}
		if o := mustRun(t, "ip", "netns", "exec", name, q, "connect", heOtherSockets[0], heOtherSockets[1]); strings.Count(o, ": connected") != 2 {
			t.Fatalf("%s: the control in ip netns exec connects: %q", what, o)
		}
		child.next(t)
		if got := oneLine(child.section(t)); got != oneLine(want.String()) {
			t.Errorf("%s: the program in wgns exec:\n%s\nwant (the tunnel's answer, no socket):\n%s", what, got, want.String())
		}
	}

	// nscd starts later (its package installed: tmpfiles.d makes /run/nscd), so do the others.
	nscd := heStartNscd(t)
	others := listenSilent(t, heOtherSockets...)
	step("once the resolvers started")

	// They stop, their directories are removed and made again, and they start again.
	nscd.stop(t)
	others.close()
	for _, d := range []string{"/run/nscd", "/run/systemd/resolve", "/run/avahi-daemon"} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	heStartNscd(t)
	listenSilent(t, heOtherSockets...)
	step("once their directories were made again and they restarted")
	child.wait(t)
}

// heService is a plain service that only sleeps; lookups are made in its namespaces.
const heService = `[Unit]
Description=wgns test: a service whose DNS view is probed

[Service]
ExecStart=/bin/sleep infinity
`

// heFakeResolved stands for systemd-resolved as Debian 12 ships it: its runtime directory is
// kept across restarts, and each start binds a new socket in it.
const heFakeResolved = `[Unit]
Description=wgns test: stand-in for systemd-resolved's varlink socket

[Service]
RuntimeDirectory=systemd/resolve
RuntimeDirectoryPreserve=yes
ExecStart=/usr/bin/socat UNIX-LISTEN:/run/systemd/resolve/io.systemd.Resolve,fork,unlink-early /dev/null
`

// heFakeAvahi stands for avahi-daemon: it makes its directory if needed and binds its socket.
const heFakeAvahi = `[Unit]
Description=wgns test: stand-in for avahi-daemon's socket

[Service]
ExecStart=/bin/sh -c 'mkdir -p /run/avahi-daemon && exec socat UNIX-LISTEN:/run/avahi-daemon/socket,fork,unlink-early /dev/null'
`

// heOldDropIn is the drop-in wgns wrote before its services had the /etc link farm: binds of the
// files themselves and covers of the socket files, which the host's events undo.
func heOldDropIn(name string) string {
	return `[Unit]
BindsTo=wgns@` + name + `.service
After=wgns@` + name + `.service

[Service]
NetworkNamespacePath=/run/netns/` + name + `
PrivateMounts=yes
BindReadOnlyPaths=/etc/netns/` + name + `/resolv.conf:/etc/resolv.conf
BindReadOnlyPaths=/etc/netns/` + name + `/nsswitch.conf:/etc/nsswitch.conf
InaccessiblePaths=-/run/nscd
InaccessiblePaths=-/run/systemd/resolve/io.systemd.Resolve
InaccessiblePaths=-/run/avahi-daemon
`
}

// TestIntegrationSystemdDNSViewSurvivesHostEvents: under Debian 12's systemd, a service
// confined with `wgns unit install` keeps resolving through the tunnel and reaches no host
// resolver while the host (the container) starts nscd (Debian's, package-installed the way its
// postinst does it: tmpfiles, then start) and stand-ins for systemd-resolved and avahi after
// the service started, renames over /etc/resolv.conf and /etc/nsswitch.conf, and restarts the
// resolvers (new sockets in the same directories). A program run by `ip netns exec` in the
// container gets the decoy's answer through nscd: the control. `wgns check` passes, warning of
// the sockets `ip netns exec` would reach. When the host removes and re-creates nscd's
// directory while the service runs (RuntimeDirectory= without RuntimeDirectoryPreserve=),
// `wgns check` fails naming the service's process; a restart of the service hides it again. A
// service with the drop-in wgns wrote before (binds of the files themselves) reads the host's
// resolv.conf after a rename, and `wgns check` names it. A service whose namespace's files are
// missing does not start at all.
func TestIntegrationSystemdDNSViewSurvivesHostEvents(t *testing.T) {
	const name = "sdh"
	p := newPeer(t, name)
	startDNS(t, p, dnsName, dnsAddr)
	startDnsmasq(t, p.NS, "the decoy", []string{decoyAddr}, "/#/"+decoyAnswer)
	c := bootContainer(t, map[string]string{
		"hev.service":           heService,
		"hold.service":          heService,
		"hnew.service":          heService,
		"hbind.service":         heService,
		"fake-resolved.service": heFakeResolved,
		"fake-avahi.service":    heFakeAvahi,
	})
	tunnel := "wgns@" + name + ".service"
	conf := filepath.Join("/etc/wgns", name+".conf")
	p.writeConfig(t, conf, "")
	t.Cleanup(func() {
		c.run("systemctl", "stop", "hev.service", "hold.service", "hnew.service", "nscd.service", tunnel)
		os.Remove(conf)
	})

	// The host: its resolver is the decoy; no resolver daemon runs and none has a directory.
	c.mustRun(t, "sh", "-c", `systemctl stop fake-resolvers.service
rm -rf /run/nscd /run/systemd/resolve /run/avahi-daemon
echo 'nameserver `+decoyAddr+`' > /etc/resolv.conf
echo 'hosts: files dns' > /etc/nsswitch.conf
cat > /etc/nscd.conf <<'EOF'
`+heNscdConf+`EOF
`)
	c.mustRun(t, "systemctl", "start", tunnel)
	c.mustRun(t, ctrWgns, "unit", "install", name, "hev.service")
	c.mustRun(t, "systemctl", "start", "hev.service")
	// mainPID returns the service's main process once it runs sleep: before its exec, systemd is
	// still setting up its namespaces.
	mainPID := func(unit string) string {
		t.Helper()
		var pid string
		waitFor(t, 10*time.Second, unit+" to run sleep", func() bool {
			pid = c.show(t, unit, "MainPID")
			exe, _ := c.run("readlink", "/proc/"+pid+"/exe")
			return strings.HasSuffix(strings.TrimSpace(exe), "/sleep")
		})
		return pid
	}
	pid := mainPID("hev.service")

	// inService runs a shell command in the service's mount and network namespaces: what the
	// service's own lookups would see.
	inService := func(pid, cmd string) string {
		t.Helper()
		out, _ := c.run("nsenter", "-t", pid, "-m", "-n", "--", "sh", "-c", cmd)
		return out
	}
	probe := `getent hosts ` + dnsName + ` | tr -s ' ' ; cat /etc/resolv.conf /etc/nsswitch.conf | grep -c 'network namespace "` + name + `"'
for s in /run/nscd/socket /run/systemd/resolve/io.systemd.Resolve /run/avahi-daemon/socket; do
	` + connectCmd + ` 2>/dev/null && echo "$s reachable" || echo "$s unreachable"
done`
	want := dnsAddr + " " + dnsName + "\n2\n/run/nscd/socket unreachable\n/run/systemd/resolve/io.systemd.Resolve unreachable\n/run/avahi-daemon/socket unreachable\n"
	expect := func(when string) {
		t.Helper()
		if got := inService(pid, probe); got != want {
			t.Errorf("%s, the confined service sees:\n%s\nwant (the tunnel's answer, the namespace's files, no socket):\n%s", when, got, want)
		}
	}
	expect("before any resolver runs")
	if got := inService(pid, "touch /etc/wgns-new 2>&1; touch /etc/.wgns-host/wgns-new 2>&1; ls /run/nscd | wc -l"); strings.Count(got, "Read-only file system") != 2 || !strings.HasSuffix(got, "\n0\n") {
		t.Errorf("the confined service can write /etc, or /run/nscd is not empty:\n%s", got)
	}
	control := func(when string) {
		t.Helper()
		if out, _ := c.run("ip", "netns", "exec", name, "getent", "hosts", dnsName); !strings.HasPrefix(out, decoyAnswer+" ") {
			t.Fatalf("%s: the control in ip netns exec gets %q, want the decoy's %s through nscd, or this test proves nothing", when, out, decoyAnswer)
		}
	}
	waitSocket := func(path string) {
		t.Helper()
		waitFor(t, 10*time.Second, path, func() bool {
			_, err := c.run("test", "-S", path)
			return err == nil
		})
	}

	// The resolvers start later: nscd as its package's postinst starts it.
	c.mustRun(t, "systemd-tmpfiles", "--create", "nscd.conf")
	c.mustRun(t, "systemctl", "start", "nscd.service", "fake-resolved.service", "fake-avahi.service")
	for _, s := range []string{"/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve", "/run/avahi-daemon/socket"} {
		waitSocket(s)
	}
	control("once the resolvers started")
	expect("once the resolvers started")

	// The host renames over its resolv.conf and nsswitch.conf (the latter asking
	// systemd-resolved first, as Debian's does with libnss-resolve).
	c.mustRun(t, "sh", "-c", `echo 'nameserver `+decoyAddr+` # renamed into place' > /etc/resolv.conf.new && mv /etc/resolv.conf.new /etc/resolv.conf
echo 'hosts: files resolve [!UNAVAIL=return] dns' > /etc/nsswitch.conf.new && mv /etc/nsswitch.conf.new /etc/nsswitch.conf`)
	expect("after the host renamed over resolv.conf and nsswitch.conf")

	// The resolvers restart: new sockets, same directories.
	c.mustRun(t, "systemctl", "restart", "nscd.service", "fake-resolved.service", "fake-avahi.service")
	for _, s := range []string{"/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve", "/run/avahi-daemon/socket"} {
		waitSocket(s)
	}
	expect("after the resolvers restarted")

	// wgns check: every process inside sees the view, and the sockets are warned of.
	out, _ := c.run(ctrWgns, "check", name)
	if !strings.Contains(out, "ok    views       the process inside sees the namespace's DNS view and no host resolver\n") ||
		!strings.Contains(out, "warn  nscd's socket /run/nscd/socket exists: a program run with `ip netns exec "+name+"` would resolve names through it") {
		t.Errorf("wgns check %s:\n%s\nwant views ok and a warning of nscd's socket", name, out)
	}

	// nscd's directory removed and made again while the service runs: check names the service.
	c.mustRun(t, "sh", "-c", "systemctl stop nscd.service && rm -rf /run/nscd && systemd-tmpfiles --create nscd.conf && systemctl start nscd.service")
	waitSocket("/run/nscd/socket")
	out, _ = c.run(ctrWgns, "check", name)
	if want := "FAIL  views       PID " + pid + " (sleep): the host's /run/nscd is visible (nscd's socket /run/nscd/socket can be reached)\n"; !strings.Contains(out, want) {
		t.Errorf("wgns check %s after nscd's directory was made again:\n%s\nwant:\n%s", name, out, want)
	}
	c.mustRun(t, "systemctl", "restart", "hev.service")
	pid = mainPID("hev.service")
	expect("after the service restarted")

	// A service with the old drop-in: a rename detaches its view, and check names it.
	oldDir := filepath.Join(c.unitDir, "hold.service.d")
	if err := os.MkdirAll(oldDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(oldDir, "50-old-wgns.conf"), []byte(heOldDropIn(name)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.mustRun(t, "systemctl", "daemon-reload")
	c.mustRun(t, "systemctl", "start", "hold.service")
	old := mainPID("hold.service")
	c.mustRun(t, "sh", "-c", `echo 'nameserver `+decoyAddr+` # renamed again' > /etc/resolv.conf.new && mv /etc/resolv.conf.new /etc/resolv.conf`)
	if got := inService(old, "cat /etc/resolv.conf"); !strings.Contains(got, "# renamed again") {
		t.Fatalf("the service with the old drop-in reads\n%s\nwant the host's renamed file, or this test proves nothing", got)
	}
	out, _ = c.run(ctrWgns, "check", name)
	if want := "PID " + old + " (sleep): /etc/resolv.conf is the host's file"; !strings.Contains(out, want) || strings.Contains(out, "PID "+pid+" ") {
		t.Errorf("wgns check %s with a detached service:\n%s\nwant a FAIL with %q, and nothing of PID %s", name, out, want, pid)
	}
	c.mustRun(t, "systemctl", "stop", "hold.service")
	expect("at the end")

	// A service of its own binding a file onto a name the host's /etc lacks: systemd cannot
	// create the mount point in the read-only link farm, so it fails, and the farm every
	// namespace shares is left as it was.
	c.mustRun(t, ctrWgns, "unit", "install", name, "hbind.service")
	bindDir := filepath.Join(c.unitDir, "hbind.service.d")
	if err := os.WriteFile(filepath.Join(bindDir, "60-own.conf"), []byte("[Service]\nBindReadOnlyPaths=/etc/machine-id:/etc/wgns-own.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.mustRun(t, "systemctl", "daemon-reload")
	c.run("systemctl", "start", "hbind.service")
	waitFor(t, 10*time.Second, "hbind.service to fail", func() bool { return c.activeState(t, "hbind.service") == "failed" })
	if got := c.mustRun(t, "sh", "-c", "find /run/wgns/links/etc -maxdepth 1 ! -type l ! -name '.wgns-*' ! -path /run/wgns/links/etc"); got != "" {
		t.Errorf("systemd created entries in the shared /etc link farm:\n%s", got)
	}

	// Without the namespace's files, a confined service does not start.
	c.mustRun(t, ctrWgns, "unit", "install", name, "hnew.service")
	c.mustRun(t, "mv", "/etc/netns/"+name+"/resolv.conf", "/etc/netns/"+name+"/resolv.conf.away")
	c.run("systemctl", "start", "hnew.service") // Type=simple: started is said before it fails
	waitFor(t, 10*time.Second, "hnew.service to fail", func() bool { return c.activeState(t, "hnew.service") == "failed" })
	if r := c.show(t, "hnew.service", "ExecMainStatus"); r != "226" {
		t.Errorf("hnew.service exited with %s without /etc/netns/%s/resolv.conf, want 226 (NAMESPACE): it must not run", r, name)
	}
	c.mustRun(t, "mv", "/etc/netns/"+name+"/resolv.conf.away", "/etc/netns/"+name+"/resolv.conf")
}

// TestIntegrationCheckFindsDetachedViews: `wgns check` looks at the DNS view of every process
// inside the namespace. A program run by `wgns exec` passes. One run by `ip netns exec` (which
// binds the namespace's resolv.conf over the host's and hides nothing) passes while no resolver
// daemon has a directory on the host and /etc/resolv.conf is untouched; it fails, named by PID
// and command, once nscd's directory exists (its socket reachable), and once the host renamed
// over /etc/resolv.conf (it reads the host's file). nscd's socket is a warning by itself, not a
// failure: it stays when only programs of `wgns exec` run inside.
func TestIntegrationCheckFindsDetachedViews(t *testing.T) {
	const name = "hechk"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	keepFile(t, "/etc/resolv.conf")
	replaceFile(t, "/etc/resolv.conf", "nameserver "+decoyAddr+" # the host's\n")

	wgnsChild := startSectioned(t, envWithoutSudo(), wgnsBin, "exec", name, "--", "sh", "-c", "echo @@; exec sleep 600")
	wgnsChild.section(t)
	views := func() (string, bool, []string) {
		t.Helper()
		r, _ := checkReportOf(t, name)
		for _, c := range r.Checks {
			if c.Name == "views" {
				return c.Detail, c.OK, r.Warnings
			}
		}
		t.Fatalf("wgns check %s has no views check: %+v", name, r.Checks)
		return "", false, nil
	}
	if d, ok, w := views(); !ok || d != "the process inside sees the namespace's DNS view and no host resolver" || len(w) != 0 {
		t.Errorf("views with only wgns exec's program inside: ok %v, %q, warnings %q", ok, d, w)
	}
	// The namespace's files are rewritten (a repair after the config changed): the program keeps
	// the version it started with, which is still the namespace's.
	tunnelView := dnsbind.View{Servers: []netip.Addr{netip.MustParseAddr(peerTunnel4)}}
	if err := dnsbind.Write(name, dnsbind.View{Servers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}}); err != nil {
		t.Fatal(err)
	}
	if d, ok, _ := views(); !ok {
		t.Errorf("views once the namespace's files were rewritten: FAIL %q, want ok (the program reads their earlier version)", d)
	}
	if err := dnsbind.Write(name, tunnelView); err != nil {
		t.Fatal(err)
	}

	ipChild := startSectioned(t, nil, "ip", "netns", "exec", name, "sh", "-c", "echo @@; exec sleep 600")
	ipChild.section(t)
	ipPID := ipChild.cmd.Process.Pid
	if d, ok, _ := views(); !ok || d != "all 2 processes inside see the namespace's DNS view and no host resolver" {
		t.Errorf("views with ip netns exec's program inside and no resolver directory on the host: ok %v, %q", ok, d)
	}

	// nscd starts: ip netns exec's program can reach it.
	socks := listenSilent(t, "/run/nscd/socket")
	const warning = "nscd's socket /run/nscd/socket exists: a program run with `ip netns exec hechk` would resolve names through it, outside the tunnel (`wgns exec` and services confined with `wgns unit install` cannot reach it)"
	want := fmt.Sprintf("PID %d (sleep): the host's /run/nscd is visible (nscd's socket /run/nscd/socket can be reached)", ipPID)
	if d, ok, w := views(); ok || d != want || len(w) != 1 || w[0] != warning {
		t.Errorf("views once nscd's socket exists: ok %v, %q, warnings %q\nwant FAIL %q and the warning %q", ok, d, w, want, warning)
	}
	out, _, code := wgnsRun(t, "check", name)
	if code != 1 || !strings.Contains(out, "FAIL  views       "+want+"\n") || !strings.Contains(out, "warn  "+warning+"\n") {
		t.Errorf("wgns check %s: exit %d\n%s", name, code, out)
	}

	// The host renames over its resolv.conf.
	replaceFile(t, "/etc/resolv.conf", "nameserver "+decoyAddr+" # the host's, renamed into place\n")
	want = fmt.Sprintf("PID %d (sleep): /etc/resolv.conf is the host's file, the host's /run/nscd is visible (nscd's socket /run/nscd/socket can be reached)", ipPID)
	if d, ok, _ := views(); ok || d != want {
		t.Errorf("views after the host renamed over resolv.conf: ok %v, %q\nwant FAIL %q", ok, d, want)
	}

	// Only wgns exec's program inside: no failure, the warning stays.
	ipChild.cmd.Process.Kill()
	ipChild.cmd.Wait()
	if d, ok, w := views(); !ok || len(w) != 1 {
		t.Errorf("views with only wgns exec's program inside and nscd's socket on the host: ok %v, %q, warnings %q; want ok and one warning", ok, d, w)
	}
	socks.close()
}
