package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/syncbuf"
)

// The Debian package, installed into a container booted with a real systemd and used from the
// package alone. The container's root is this machine's OS under an overlay the test mounts in
// its world: the root file system read-only below, a tmpfs above. dpkg and apt write /usr, /etc
// and /var/lib/dpkg of the container only; the machine's own files are never touched. (nspawn's
// --volatile=overlay would do the same, but refuses the machine's own root directory.)

// debTunnel is the tunnel the package test brings up; debUser a user without privileges.
const (
	debTunnel = "debt"
	debUser   = "wgnsdebuser"
	ctrDeb    = "/srv/deb" // the package's directory, bound read-only
	ctrIn     = "/srv/in"  // files the test hands in (the config)
)

// debPackage returns the package under test: WGNS_DEB, else one make deb builds now.
func debPackage(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WGNS_DEB"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	out := t.TempDir()
	cmd := exec.Command("make", "-C", "..", "deb", "DEB_OUT="+out)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb (WGNS_DEB is not set): %v\n%s", err, o)
	}
	m, _ := filepath.Glob(filepath.Join(out, "wgns_*.deb"))
	if len(m) != 1 {
		t.Fatalf("make deb made %v in %s, want one package", m, out)
	}
	return m[0]
}

// TestIntegrationDebPackage: the package installs with apt into a clean system run by systemd,
// its man pages render, bash completes a running tunnel's name (for root and for a user),
// systemctl enable --now wgns@NAME brings a tunnel up against Debian's wireguard-go, wgns unit
// install confines a service, wgns selftest passes; apt remove leaves the running tunnel alone
// and says so, and remove then purge leave nothing of the package, and the user's config.
func TestIntegrationDebPackage(t *testing.T) {
	deb := debPackage(t)
	for _, tool := range []string{"systemd-nspawn", "man", "fish", "zsh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: make deps installs it", tool)
		}
	}
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
		t.Fatal("bash-completion is missing: make deps installs it")
	}
	if out, err := run("dpkg-query", "-W", "wgns"); err == nil {
		t.Fatalf("wgns is installed on this machine (%s): the container would see it", strings.TrimSpace(out))
	}
	p := newPeer(t, "deb")
	start := time.Now()

	c := &container{unitDir: t.TempDir(), probeDir: t.TempDir(), console: &syncbuf.Buffer{}}
	in := t.TempDir()
	p.writeConfig(t, filepath.Join(in, debTunnel+".conf"), "[Namespace]\nUsers = "+debUser+"\n")
	for name, text := range map[string]string{ctrTarget: testTarget, "fake-resolvers.service": fakeResolvers(),
		"probe9.service": probeUnit("9")} {
		if err := os.WriteFile(filepath.Join(c.unitDir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.probeDir, "probe.sh"), []byte(probeScript), 0o755); err != nil {
		t.Fatal(err)
	}
	launchContainer(t, c, "-D", overlayRoot(t),
		"--bind="+c.unitDir+":/etc/systemd/system",
		"--bind-ro="+filepath.Dir(deb)+":"+ctrDeb,
		"--bind-ro="+in+":"+ctrIn,
		"--bind=/dev/net/tun",
		"--bind="+c.probeDir+":"+ctrProbe)
	sh := func(script string) string { t.Helper(); return c.mustRun(t, "sh", "-c", script) }
	exists := func(path string) bool { _, err := c.run("test", "-e", path); return err == nil }

	// apt installs it offline: it depends on nothing.
	if exists("/usr/bin/wgns") {
		t.Fatal("/usr/bin/wgns exists in the container before the install")
	}
	files := strings.Fields(sh("dpkg-deb --fsys-tarfile " + ctrDeb + "/" + filepath.Base(deb) + " | tar -t | sed 's|^\\.||; s|/$||' | grep ."))
	existed := map[string]bool{}
	for _, f := range files {
		existed[f] = exists(f)
	}
	out := sh("cd " + ctrDeb + " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ./" + filepath.Base(deb) + " 2>&1")
	t.Logf("apt-get install:\n%s", lastLines(out, 4))
	if st := sh("dpkg-query -W -f '${Status}' wgns"); st != "install ok installed" {
		t.Fatalf("dpkg says wgns is %q after apt-get install", st)
	}
	for _, f := range []string{"/usr/bin/wgns", "/usr/libexec/wgns/wgns", "/lib/systemd/system/wgns@.service", "/lib/systemd/system/wgns-netns@.service",
		"/usr/share/man/man8/wgns.8.gz", "/usr/share/man/man5/wgns.conf.5.gz",
		"/usr/share/bash-completion/completions/wgns", "/usr/share/zsh/vendor-completions/_wgns",
		"/usr/share/fish/vendor_completions.d/wgns.fish", "/usr/share/doc/wgns/README.md.gz",
		"/usr/share/doc/wgns/changelog.gz", "/usr/share/doc/wgns/copyright"} {
		if !slices.Contains(files, f) || !exists(f) {
			t.Errorf("%s is not installed", f)
		}
	}
	if mode := strings.TrimSpace(sh("stat -c '%a %U' /etc/wgns")); mode != "700 root" {
		t.Errorf("/etc/wgns is %s, want 700 root", mode)
	}
	// The postinst reloaded systemd: the template is known, and runs /usr/bin/wgns.
	if ls := c.show(t, "wgns@"+debTunnel+".service", "LoadState"); ls != "loaded" {
		t.Errorf("systemd has wgns@%s.service %s after the install", debTunnel, ls)
	}
	if es := c.show(t, "wgns@"+debTunnel+".service", "ExecStart"); !strings.Contains(es, "path=/usr/bin/wgns ;") {
		t.Errorf("wgns@.service runs %s, want /usr/bin/wgns", es)
	}

	// man wgns and man wgns.conf render, without a warning.
	for page, want := range map[string][]string{
		"wgns":      {"WGNS(8)", "wgns up [flags] CONFIG|NAME", "wgns unit install [flags] NAME UNIT", "--max-handshake-age"},
		"wgns.conf": {"WGNS.CONF(5)", "[Namespace] SECTION", "AllowInbound = PORT/tcp|udp"},
	} {
		text := sh("MANWIDTH=100 MANPAGER=cat man " + page)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("man %s does not show %q:\n%s", page, w, text)
			}
		}
		if warn := sh("MANWIDTH=100 MANPAGER=cat man --warnings " + page + " 2>&1 >/dev/null"); warn != "" {
			t.Errorf("man --warnings %s warns:\n%s", page, warn)
		}
	}

	// systemctl enable --now brings the tunnel up from /etc/wgns against the peer.
	sh("install -m 600 " + ctrIn + "/" + debTunnel + ".conf /etc/wgns/")
	unit := "wgns@" + debTunnel + ".service"
	c.mustRun(t, "systemctl", "enable", "--now", unit)
	if s := c.activeState(t, unit); s != "active" {
		t.Fatalf("%s is %s after systemctl enable --now", unit, s)
	}
	if st := c.tunnelStateOf(t, "/usr/bin/wgns", debTunnel); st != "ready" {
		t.Fatalf("wgns status %s: %q, want ready", debTunnel, st)
	}
	if !exists("/etc/systemd/system/multi-user.target.wants/" + unit) {
		t.Errorf("systemctl enable did not link %s into multi-user.target.wants", unit)
	}
	c.mustRun(t, "wgns", "exec", debTunnel, "--", "ping", "-c1", "-W5", peerTunnel4)

	// Bash completes `wgns down <TAB>` with the running tunnel, through bash-completion's
	// loader (the file is found by the command's name), for root and for a user who cannot
	// read /run/wgns; zsh and fish find their files too.
	c.mustRun(t, "useradd", "-m", debUser)
	complete := func(words string) string {
		return `. /usr/share/bash-completion/bash_completion; __load_completion wgns || exit 3; ` +
			`COMP_WORDS=(` + words + `); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); ` +
			`COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; _wgns; printf '%s\n' "${COMPREPLY[@]}"`
	}
	for _, who := range []string{"root", debUser} {
		got := c.mustRun(t, "runuser", "-u", who, "--", "bash", "-c", complete(`wgns down ""`))
		if got != debTunnel+"\n" {
			t.Errorf("bash completion of `wgns down ` as %s offers %q, want %s", who, got, debTunnel)
		}
		if got := c.mustRun(t, "runuser", "-u", who, "--", "bash", "-c", complete(`wgns ""`)); !strings.Contains(got, "unit\n") || !strings.Contains(got, "selftest\n") {
			t.Errorf("bash completion of `wgns ` as %s offers %q", who, got)
		}
		got = c.mustRun(t, "runuser", "-u", who, "--", "fish", "--no-config", "-c",
			"set fish_complete_path /usr/share/fish/vendor_completions.d; complete -C 'wgns down '")
		if strings.TrimSpace(got) != debTunnel {
			t.Errorf("fish completion of `wgns down ` as %s offers %q, want %s", who, got, debTunnel)
		}
	}
	if got := sh("zsh -fc 'autoload -Uz compinit; compinit -u -d /tmp/zcd; print -r -- $_comps[wgns]'"); got != "_wgns\n" {
		t.Errorf("zsh's compinit maps wgns to %q, want _wgns", got)
	}
	// A user learns no config's name: /etc/wgns is root's.
	if got := c.mustRun(t, "runuser", "-u", debUser, "--", "wgns", "__complete", "configs"); got != "" {
		t.Errorf("wgns __complete configs as a user lists %q from /etc/wgns", got)
	}
	if got := c.mustRun(t, "wgns", "__complete", "configs"); got != debTunnel+"\n" {
		t.Errorf("wgns __complete configs as root lists %q, want %s", got, debTunnel)
	}

	// Sudo-free exec for the user the config's Users names: the package enabled and started
	// wgns.socket (this machine's policy-rc.d, which the container shares, forbids starting
	// anything at install: then the test starts it); the first request starts wgns.service,
	// which takes the socket from systemd and runs the command as the user, inside the tunnel.
	if e := strings.TrimSpace(sh("systemctl is-enabled wgns.socket")); e != "enabled" {
		t.Errorf("wgns.socket is %s after the install, want enabled", e)
	}
	if s := c.activeState(t, "wgns.socket"); s != "active" {
		if !strings.Contains(out, "policy-rc.d returned 101, not running 'start wgns.socket'") {
			t.Errorf("wgns.socket is %s after the install, want active", s)
		}
		c.mustRun(t, "systemctl", "start", "wgns.socket")
	}
	if s := c.activeState(t, "wgns.service"); s != "inactive" {
		t.Errorf("wgns.service is %s before any request, want inactive (socket activation)", s)
	}
	if got := c.mustRun(t, "runuser", "-u", debUser, "--", "wgns", "exec", debTunnel, "--", "sh", "-c",
		"id -un; ping -c1 -W5 "+peerTunnel4+" >/dev/null && echo ping-ok"); got != debUser+"\nping-ok\n" {
		t.Errorf("sudo-free wgns exec by %s printed %q", debUser, got)
	}
	if s := c.activeState(t, "wgns.service"); s != "active" {
		t.Errorf("wgns.service is %s after a request, want active", s)
	}
	if got := sh("getent group wgns | cut -d: -f1"); got != "wgns\n" {
		t.Errorf("the group wgns (for Users = @wgns) is %q after the install", got)
	}

	// wgns unit install confines a service: it runs in the tunnel's namespace.
	probe := "probe9.service"
	c.mustRun(t, "wgns", "unit", "install", debTunnel, probe)
	c.mustRun(t, "systemctl", "start", probe)
	c.waitProbe(t, probe, filepath.Join(c.probeDir, "9"))
	probeNS, err := os.ReadFile(filepath.Join(c.probeDir, "9", "netns"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "net:[" + c.netnsInode(t, "/run/netns/"+debTunnel) + "]"; strings.TrimSpace(string(probeNS)) != want {
		t.Errorf("%s ran in network namespace %s, want %s's %s", probe, probeNS, debTunnel, want)
	}
	if ping, _ := os.ReadFile(filepath.Join(c.probeDir, "9", "ping")); !strings.HasSuffix(string(ping), "ok\n") {
		t.Errorf("ping %s from %s:\n%s", peerTunnel4, probe, ping)
	}

	// wgns selftest passes with the installed binary.
	if out, err := c.run("wgns", "selftest"); err != nil {
		t.Errorf("wgns selftest: %v\n%s", err, out)
	} else {
		t.Logf("wgns selftest: %s", lastLines(out, 1))
	}

	// apt remove: the running tunnel is left alone, and said to be; the drop-in stays and is
	// named. Everything else of the package is gone, and systemd forgot the template.
	// (dpkg runs the maintainer scripts on a pseudo-terminal: their lines end in \r\n.)
	out = strings.ReplaceAll(sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y wgns 2>&1"), "\r\n", "\n")
	for _, want := range []string{"wgns: leaving running tunnels alone: " + debTunnel + "\n",
		"/etc/systemd/system/" + probe + ".d/50-wgns-" + debTunnel + ".conf"} {
		if !strings.Contains(out, want) {
			t.Errorf("apt-get remove did not say %q:\n%s", want, out)
		}
	}
	if st := sh("dpkg-query -W -f '${Status}' wgns"); st != "deinstall ok config-files" {
		t.Errorf("dpkg says wgns is %q after apt-get remove", st)
	}
	if s := c.activeState(t, unit); s != "active" {
		t.Errorf("%s is %s after apt-get remove, want it left alone", unit, s)
	}
	c.mustRun(t, "ip", "netns", "exec", debTunnel, "ping", "-c1", "-W5", peerTunnel4)
	if ls := c.show(t, "wgns@other.service", "LoadState"); ls != "not-found" {
		t.Errorf("systemd still has the template after apt-get remove: wgns@other.service is %s", ls)
	}
	left := func(when string) {
		t.Helper()
		for _, f := range files {
			if f == "/etc/wgns" || existed[f] {
				continue
			}
			if exists(f) {
				t.Errorf("%s is left after %s", f, when)
			}
		}
		if !exists("/etc/wgns/" + debTunnel + ".conf") {
			t.Errorf("the user's /etc/wgns/%s.conf is gone after %s", debTunnel, when)
		}
	}
	left("apt-get remove")
	// The tunnel systemd started still stops cleanly, its wgns gone from disk.
	c.mustRun(t, "systemctl", "stop", unit)
	if exists("/run/netns/" + debTunnel) {
		t.Errorf("/run/netns/%s is left after systemctl stop %s", debTunnel, unit)
	}

	// apt purge: nothing of the package; the user's config stays, and so does /etc/wgns for it.
	out = sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y wgns 2>&1")
	if !strings.Contains(out, "wgns: /etc/wgns is kept") {
		t.Errorf("apt-get purge did not say it kept /etc/wgns:\n%s", out)
	}
	if o, err := c.run("dpkg-query", "-W", "wgns"); err == nil {
		t.Errorf("dpkg still knows wgns after apt-get purge: %s", o)
	}
	left("apt-get purge")
	if !exists("/etc/systemd/system/" + probe + ".d/50-wgns-" + debTunnel + ".conf") {
		t.Error("apt-get purge removed the drop-in wgns unit install wrote (the admin's)")
	}

	// Without files of the user's, install then purge leaves no trace at all.
	sh("rm /etc/wgns/" + debTunnel + ".conf")
	sh("cd " + ctrDeb + " && DEBIAN_FRONTEND=noninteractive apt-get install -y ./" + filepath.Base(deb) + " >/dev/null 2>&1")
	sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y wgns >/dev/null 2>&1")
	for _, f := range files {
		if !existed[f] && exists(f) {
			t.Errorf("%s is left after install and purge", f)
		}
	}
	t.Logf("the package test took %v", time.Since(start).Round(time.Millisecond))
}

// overlayRoot mounts an overlay of this machine's root file system with a writable tmpfs on
// top, in the test world's mount namespace, and returns where; t.Cleanup unmounts it. The
// overlay sees the root file system only, none of the mounts on it (the world's /run, /etc...).
func overlayRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "wgns-deb-")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mounting a tmpfs on %s: %v", dir, err)
	}
	root, upper, work := filepath.Join(dir, "root"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{root, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount("overlay", root, "overlay", 0, "lowerdir=/,upperdir="+upper+",workdir="+work); err != nil {
		t.Fatalf("mounting an overlay of / on %s: %v", root, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(root, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", root, err)
		}
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
		os.Remove(dir)
	})
	return root
}

// tunnelStateOf is tunnelState with the wgns binary at bin.
func (c *container) tunnelStateOf(t *testing.T, bin, name string) string {
	t.Helper()
	out := c.mustRun(t, bin, "status", "--json", name)
	var st []tunnelStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 {
		t.Fatalf("wgns status --json %s: %v\n%s", name, err, out)
	}
	return st[0].State
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
