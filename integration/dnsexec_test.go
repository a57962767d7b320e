package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// The exec DNS tests: a DNS server in the peer's namespace, reachable only through the tunnel,
// answers dnsName with the peer's tunnel addresses; a decoy the host's resolv.conf names
// answers every name with decoyAnswer. The decoy is in the peer's namespace on outside4: the
// world reaches it by the underlay, and a program inside the tunnel namespace would reach it
// through the tunnel, so a query that read the host's resolv.conf is counted wherever it runs.
const (
	decoyAddr   = outside4
	decoyAnswer = "203.0.113.99"
)

// nssResolverSockets stand where nscd's and systemd-resolved's sockets would be.
var nssResolverSockets = []string{"/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve"}

// silentSockets are unix sockets listening where the host's resolvers' would be; nothing accepts
// on them, so every connection waits in their backlog until accepted counts it.
type silentSockets struct {
	paths []string
	ls    []*net.UnixListener
}

func listenSilent(t *testing.T, paths ...string) *silentSockets {
	t.Helper()
	s := &silentSockets{paths: paths}
	for _, p := range paths {
		makeDir(t, filepath.Dir(p))
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		s.ls = append(s.ls, l)
	}
	return s
}

// accepted accepts, closes and counts the connections waiting on each socket, without waiting
// for more: a unix socket's connect completes (into the backlog) before the connecting program
// goes on, so every connection of a program that has exited is counted.
func (s *silentSockets) accepted() map[string]int {
	n := make(map[string]int)
	for i, l := range s.ls {
		rc, err := l.SyscallConn()
		if err != nil {
			panic(err) // only for a closed listener
		}
		rc.Control(func(fd uintptr) {
			for { // the listener is non-blocking: EAGAIN once none is left
				c, _, err := unix.Accept4(int(fd), unix.SOCK_CLOEXEC)
				if err != nil {
					return
				}
				unix.Close(c)
				n[s.paths[i]]++
			}
		})
	}
	return n
}

// acceptedWhile accepts, closes and counts connections as they come until done is closed.
func (s *silentSockets) acceptedWhile(done <-chan struct{}) map[string]int {
	n := make(map[string]int)
	for {
		select {
		case <-done:
			for p, k := range s.accepted() {
				n[p] += k
			}
			return n
		case <-time.After(2 * time.Millisecond):
			for p, k := range s.accepted() {
				n[p] += k
			}
		}
	}
}

// close closes the listeners, which removes their socket files.
func (s *silentSockets) close() {
	for _, l := range s.ls {
		l.Close()
	}
}

// resolverState is what wgns exec must leave as it was: the host's /etc/resolv.conf and
// /etc/nsswitch.conf (type, inode, symlink target, content) and this process's mount table.
func resolverState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"/etc/resolv.conf", "/etc/nsswitch.conf"} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s: %v inode %d mtime %d", p, fi.Mode(), st.Ino, fi.ModTime().UnixNano())
		if fi.Mode()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		}
		fmt.Fprintf(&b, "\n%s\n", readFile(t, p))
	}
	b.WriteString(readFile(t, "/proc/self/mountinfo"))
	return b.String()
}

// nsswitchConf is a host's nsswitch.conf whose hosts line is hosts.
func nsswitchConf(hosts string) string {
	return "passwd:         files systemd\ngroup:          files systemd\nshadow:         files systemd\n\n" +
		"hosts:          " + hosts + "\nnetworks:       files\n\nprotocols:      db files\nservices:       db files\n"
}

// ahostsv4Out is what `getent ahostsv4 peer.wgns.test` prints (up to spaces).
var ahostsv4Out = peerTunnel4 + " STREAM " + dnsName + "\n" + peerTunnel4 + " DGRAM\n" + peerTunnel4 + " RAW\n"

// tunnelPingRe matches ping's output for one answered ping of one of the peer's tunnel addresses.
// (iputils' ping prints the name for IPv6 and, with -4, an empty one: `PING  (192.0.2.1)`.)
var tunnelPingRe = regexp.MustCompile(`(?m)^PING [^\n(]*\((` +
	regexp.QuoteMeta(peerTunnel4) + `|` + regexp.QuoteMeta(peerTunnel6) + `)\).*\n(?s:.*)\b1 received\b`)

// TestIntegrationExecDNS: inside `wgns exec`, getent, a program doing its own UDP query and ping
// get the answer of the DNS server behind the tunnel, for a host whose resolv.conf is a plain
// file and for one whose resolv.conf is systemd-resolved's stub symlink with nss-resolve in
// nsswitch.conf. The decoy the host's resolv.conf names gets no query from inside (it is shown
// to answer the world, and to be reachable from inside through the tunnel), sockets standing
// where nscd's and systemd-resolved's would be get no connection (they accept the world's), and
// the host's resolv.conf, nsswitch.conf and mount table are as before after each exec.
// `ip netns exec` resolves through the tunnel too.
func TestIntegrationExecDNS(t *testing.T) {
	const stub = "/run/systemd/resolve/stub-resolv.conf"
	cases := []struct {
		name, tunnel string
		host         func(t *testing.T) // makes the host's resolver configuration, naming the decoy
	}{{
		name: "plain resolv.conf", tunnel: "xdplain",
		host: func(t *testing.T) {
			replaceFile(t, "/etc/resolv.conf", "nameserver "+decoyAddr+" # the host's resolver: a decoy\n")
			replaceFile(t, "/etc/nsswitch.conf", nsswitchConf("files dns"))
		},
	}, {
		name: "stub symlink and nss-resolve", tunnel: "xdstub",
		host: func(t *testing.T) {
			makeDir(t, filepath.Dir(stub))
			replaceFile(t, stub, "# systemd-resolved's stub file, here naming the decoy\nnameserver "+decoyAddr+"\noptions edns0 trust-ad\n")
			replaceSymlink(t, "/etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf")
			replaceFile(t, "/etc/nsswitch.conf", nsswitchConf("files resolve [!UNAVAIL=return] dns"))
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.tunnel
			keepFile(t, "/etc/resolv.conf")
			keepFile(t, "/etc/nsswitch.conf")
			tc.host(t)
			p := newPeer(t, name)
			tunnelDNS := startDnsmasq(t, p.NS, "the tunnel's DNS", []string{peerTunnel4},
				"/"+dnsName+"/"+peerTunnel4, "/"+dnsName+"/"+peerTunnel6)
			decoy := startDnsmasq(t, p.NS, "the decoy", []string{decoyAddr}, "/#/"+decoyAnswer)
			socks := listenSilent(t, nssResolverSockets...)
			tunnelUp(t, p, name)
			q := worldTool(t, "dnsquery")

			// Controls: else this test proves nothing.
			// The decoy answers the world, which asks it because the host's resolv.conf names it.
			if got, want := mustRun(t, q, "world.decoy.test"), decoyAddr+" A world.decoy.test "+decoyAnswer+"\n"; got != want {
				t.Fatalf("a query from the world, to the host's resolver: %q, want the decoy's answer %q", got, want)
			}
			decoy.waitQuery(t, "query[A] world.decoy.test from "+hostUnderlay4)
			// A program inside that read the host's resolv.conf would reach the decoy through the
			// tunnel, and be counted.
			if got, want := mustExec(t, name, q, "-server", decoyAddr, "inside.decoy.test"), decoyAddr+" A inside.decoy.test "+decoyAnswer+"\n"; got != want {
				t.Fatalf("a query from inside to the decoy's address: %q, want the decoy's answer %q", got, want)
			}
			decoy.waitQuery(t, "query[A] inside.decoy.test from "+clientTunnel4)
			// The sockets accept the world's connections.
			out := mustRun(t, q, append([]string{"connect"}, nssResolverSockets...)...)
			for _, s := range nssResolverSockets {
				if !strings.Contains(out, s+": connected\n") {
					t.Fatalf("connecting from the world to %s: %s", s, out)
				}
			}
			if n := socks.accepted(); n[nssResolverSockets[0]] != 1 || n[nssResolverSockets[1]] != 1 {
				t.Fatalf("the sockets accepted %v from the world, want 1 each", n)
			}
			decoyBefore := len(decoy.queries())
			before := resolverState(t)

			inside := []struct {
				argv  []string
				check func(out string) bool
				want  string
			}{{
				argv:  []string{"getent", "hosts", dnsName},
				check: func(out string) bool { return oneLine(out) == peerTunnel6+" "+dnsName },
				want:  peerTunnel6 + " " + dnsName,
			}, {
				argv:  []string{"getent", "ahostsv4", dnsName},
				check: func(out string) bool { return oneLine(out) == oneLine(ahostsv4Out) },
				want:  ahostsv4Out,
			}, {
				argv:  []string{q, dnsName},
				check: func(out string) bool { return out == peerTunnel4+" A "+dnsName+" "+peerTunnel4+"\n" },
				want:  "the answer of " + peerTunnel4 + ": " + peerTunnel4,
			}, {
				argv:  []string{q, "-type", "AAAA", dnsName},
				check: func(out string) bool { return out == peerTunnel4+" AAAA "+dnsName+" "+peerTunnel6+"\n" },
				want:  "the answer of " + peerTunnel4 + ": " + peerTunnel6,
			}, {
				argv:  []string{"ping", "-c1", "-W5", dnsName},
				check: tunnelPingRe.MatchString,
				want:  "a ping of one of the peer's tunnel addresses, answered",
			}, {
				argv: []string{"ping", "-4", "-c1", "-W5", dnsName},
				check: func(out string) bool {
					return strings.Contains(out, " ("+peerTunnel4+")") && tunnelPingRe.MatchString(out)
				},
				want: "a ping of " + peerTunnel4 + ", answered",
			}, {
				argv: append([]string{q, "connect"}, nssResolverSockets...),
				check: func(out string) bool {
					want := ""
					for _, s := range nssResolverSockets {
						want += fmt.Sprintf("%s: failed: dial unix %[1]s: connect: no such file or directory\n", s)
					}
					return out == want
				},
				want: "no socket found",
			}, {
				argv:  []string{"grep", "^hosts:", "/etc/nsswitch.conf"},
				check: func(out string) bool { return oneLine(out) == "hosts: files dns" },
				want:  "hosts: files dns",
			}, {
				argv:  []string{"cat", "/etc/resolv.conf"},
				check: func(out string) bool { return out == readFile(t, "/etc/netns/"+name+"/resolv.conf") },
				want:  "the namespace's resolv.conf",
			}}
			for _, c := range inside {
				out := mustExec(t, name, c.argv...)
				if !c.check(out) {
					t.Errorf("wgns exec %s -- %s:\n%s\nwant %s", name, strings.Join(c.argv, " "), out, c.want)
				}
				if after := resolverState(t); after != before {
					t.Errorf("after wgns exec %s -- %s, the host changed (-before +after):\n%s", name, strings.Join(c.argv, " "), cmp.Diff(before, after))
				}
			}
			if n := socks.accepted(); len(n) != 0 {
				t.Errorf("resolver sockets accepted connections from inside wgns exec: %v", n)
			}

			// `ip netns exec` (which binds /etc/netns/NAME's files) resolves through the tunnel
			// too. Without hidden sockets its libc first asks nscd's: the socket, which closes
			// each connection it accepts, shows that getent inside wgns exec would have been
			// counted there.
			ipExec := exec.Command("ip", "netns", "exec", name, "getent", "ahostsv4", dnsName)
			var ipOut bytes.Buffer
			ipExec.Stdout, ipExec.Stderr = &ipOut, &ipOut
			if err := ipExec.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error)
			go func() { done <- ipExec.Wait() }()
			stop := make(chan struct{})
			counted := make(chan map[string]int)
			go func() { counted <- socks.acceptedWhile(stop) }()
			err := <-done
			close(stop)
			if got := ipOut.String(); err != nil || oneLine(got) != oneLine(ahostsv4Out) {
				t.Errorf("ip netns exec %s getent ahostsv4 %s: %v\n%s", name, dnsName, err, got)
			}
			if n := <-counted; n[nssResolverSockets[0]] == 0 {
				t.Errorf("getent in ip netns exec did not connect to %s (%v): then none would have from wgns exec, and this test proves nothing", nssResolverSockets[0], n)
			}
			socks.close()
			if got := mustRun(t, "ip", "netns", "exec", name, "getent", "hosts", dnsName); oneLine(got) != peerTunnel6+" "+dnsName {
				t.Errorf("ip netns exec %s getent hosts %s: %q", name, dnsName, got)
			}
			if after := resolverState(t); after != before {
				t.Errorf("after ip netns exec, the host changed (-before +after):\n%s", cmp.Diff(before, after))
			}

			// The tunnel's server was asked, only from the tunnel.
			tq := tunnelDNS.queries()
			for _, want := range []string{"query[A] " + dnsName + " from " + clientTunnel4, "query[AAAA] " + dnsName + " from " + clientTunnel4} {
				if !slices.Contains(tq, want) {
					t.Errorf("the tunnel's DNS server did not log %q; it logged:\n%s", want, strings.Join(tq, "\n"))
				}
			}
			for _, l := range tq {
				if !strings.HasSuffix(l, " from "+clientTunnel4) {
					t.Errorf("the tunnel's DNS server got a query not from the tunnel: %s", l)
				}
			}
			// The decoy got nothing since the controls: a last query from the world, which it
			// logs after any earlier one, closes the count.
			mustRun(t, q, "fence.decoy.test")
			fence := "query[A] fence.decoy.test from " + hostUnderlay4
			decoy.waitQuery(t, fence)
			if got := decoy.queries()[decoyBefore:]; !slices.Equal(got, []string{fence}) {
				t.Errorf("the decoy got queries during the tests (the fence query excepted):\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

// startSectioned starts argv with env (nil: the test's) as a child whose output is read section by
// section (see sectionedChild), and kills it when the test ends (or after a minute).
func startSectioned(t *testing.T, env []string, argv ...string) *sectionedChild {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c := &sectionedChild{cmd: exec.CommandContext(ctx, argv[0], argv[1:]...)}
	c.cmd.Env = env
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.out = bufio.NewReader(stdout)
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		c.cmd.Wait()
	})
	return c
}

// TestIntegrationExecDNSSurvivesRename: a program started by `wgns exec` keeps reading the
// namespace's resolv.conf after the host replaces its own by rename: a plain file; a symlink
// into /run whose target is renamed over, then the symlink itself. The same program started by
// `ip netns exec` reads the host's new file each time, or this test proves nothing.
func TestIntegrationExecDNSSurvivesRename(t *testing.T) {
	const name = "xdren"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	ours := readFile(t, "/etc/netns/"+name+"/resolv.conf")
	if !strings.Contains(ours, "nameserver "+peerTunnel4+"\n") {
		t.Fatalf("the namespace's resolv.conf does not name the tunnel's DNS server:\n%s", ours)
	}
	// The script prints resolv.conf, then again after each step the test lets it go on to.
	script := func(steps int) string {
		return strings.Repeat("cat /etc/resolv.conf; echo @@; read x; ", steps) + "cat /etc/resolv.conf; echo @@"
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) // makes the host's resolv.conf before the programs start
		steps []func(t *testing.T) string
	}{{
		name: "plain file",
		setup: func(t *testing.T) {
			replaceFile(t, "/etc/resolv.conf", "nameserver "+decoyAddr+" # the host's, before\n")
		},
		steps: []func(t *testing.T) string{func(t *testing.T) string {
			replaceFile(t, "/etc/resolv.conf", "nameserver "+decoyAddr+" # the host's, after\n")
			return "nameserver " + decoyAddr + " # the host's, after\n"
		}},
	}, {
		name: "symlink into /run",
		setup: func(t *testing.T) {
			makeDir(t, "/run/systemd/resolve")
			makeDir(t, "/run/xdhostdns")
			replaceFile(t, "/run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53 # stub, before\n")
			replaceSymlink(t, "/etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf")
		},
		steps: []func(t *testing.T) string{func(t *testing.T) string {
			replaceFile(t, "/run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53 # stub, after\n")
			return "nameserver 127.0.0.53 # stub, after\n"
		}, func(t *testing.T) string {
			replaceFile(t, "/run/xdhostdns/resolv.conf", "nameserver "+decoyAddr+" # another manager's\n")
			replaceSymlink(t, "/etc/resolv.conf", "/run/xdhostdns/resolv.conf")
			return "nameserver " + decoyAddr + " # another manager's\n"
		}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keepFile(t, "/etc/resolv.conf")
			tc.setup(t)
			sc := script(len(tc.steps))
			child := startSectioned(t, envWithoutSudo(), wgnsBin, "exec", name, "--", "sh", "-c", sc)
			control := startSectioned(t, nil, "ip", "netns", "exec", name, "sh", "-c", sc)
			for _, c := range []*sectionedChild{child, control} {
				if got := c.section(t); got != ours {
					t.Fatalf("%q, before any rename, reads\n%s\nwant the namespace's\n%s", c.cmd.Args, got, ours)
				}
			}
			for i, step := range tc.steps {
				hostNew := step(t)
				child.next(t)
				control.next(t)
				if got := child.section(t); got != ours {
					t.Errorf("step %d: after the host's rename, the program in wgns exec reads\n%s\nwant the namespace's\n%s", i, got, ours)
				}
				if got := control.section(t); got != hostNew {
					t.Errorf("step %d: the control in ip netns exec reads\n%s\nwant the host's new file (else this test proves nothing)\n%s", i, got, hostNew)
				}
			}
			child.wait(t)
			control.wait(t)
		})
	}
}

// execIdentity is who a program runs as, and the environment identity gives it.
type execIdentity struct {
	Net              string            // the network namespace, as readlink /proc/self/ns/net shows it
	Uid, Gid, Groups string            // as /proc/self/status shows them
	Env              map[string]string // variables that must have these values
}

// identityScript prints the program's credentials and environment.
const identityScript = `echo Net: $(readlink /proc/self/ns/net); grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo @@; env`

// identityEnv is the caller's environment in every identity case, beyond SUDO_*: variables
// identity drops (loader, resolver, session bus) and one it keeps.
var identityEnv = []string{"LD_LIBRARY_PATH=/nonexistent-wgns", "LOCALDOMAIN=leak.example", "RES_OPTIONS=ndots:9",
	"HOSTALIASES=/tmp/wgns-hosts", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/0/bus", "MAIL=/var/mail/root",
	"WGNS_TEST_KEPT=kept"}

// parseIdentity reads identityScript's output.
func parseIdentity(t *testing.T, out string) (status map[string]string, env map[string]string) {
	t.Helper()
	st, envText, ok := strings.Cut(out, "@@\n")
	if !ok {
		t.Fatalf("identity script printed %q", out)
	}
	status, env = map[string]string{}, map[string]string{}
	for l := range strings.Lines(st) {
		k, v, _ := strings.Cut(strings.TrimSuffix(l, "\n"), ":")
		status[k] = strings.Join(strings.Fields(v), " ")
	}
	for l := range strings.Lines(envText) {
		k, v, _ := strings.Cut(strings.TrimSuffix(l, "\n"), "=")
		env[k] = v
	}
	return status, env
}

// openFDs returns the file descriptors `ls -l /proc/self/fd` lists with their targets, without the
// one ls reads the directory with.
func openFDs(t *testing.T, out string) map[string]string {
	t.Helper()
	fds := map[string]string{}
	for l := range strings.Lines(out) {
		f := strings.Fields(l)
		if len(f) < 3 || f[len(f)-2] != "->" {
			continue
		}
		fd, target := f[len(f)-3], f[len(f)-1]
		if strings.HasPrefix(target, "/proc/") && strings.HasSuffix(target, "/fd") {
			continue
		}
		fds[fd] = target
	}
	if len(fds) == 0 {
		t.Fatalf("no file descriptor in\n%s", out)
	}
	return fds
}

// TestIntegrationExecIdentity: who `wgns exec`'s program runs as, and with what, as the contract
// says: under sudo (real uid 0, SUDO_*) as the invoking user with its groups from /etc/group and
// HOME, SHELL, USER, LOGNAME from passwd, and the PATH of that user's login; root may name
// another user with --user NAME or --user UID, the sudo user only itself; plain root and sudo by
// root stay root, with wgns's own groups. The dropped variables
// are gone, a kept one is there. Only fds 0-2 reach the program, though wgns inherited a fourth
// (which `ip netns exec` passes on: the control). A bad sudo environment or user is refused
// with a clear error and exit 125 before the command runs.
func TestIntegrationExecIdentity(t *testing.T) {
	const name = "xdid"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	addFixedUsers(t)
	var ns unix.Stat_t
	if err := unix.Stat("/run/netns/"+name, &ns); err != nil {
		t.Fatal(err)
	}
	netns := fmt.Sprintf("net:[%d]", ns.Ino)

	// The test process's groups: what a root that stays root keeps.
	var rootGroups string
	for l := range strings.Lines(readFile(t, "/proc/self/status")) {
		if v, ok := strings.CutPrefix(l, "Groups:"); ok {
			rootGroups = strings.Join(strings.Fields(v), " ")
		}
	}
	const userPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
	const rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	wgnsexec := execIdentity{Uid: "4711 4711 4711 4711", Gid: "4711 4711 4711 4711", Groups: "4711 4712 4713",
		Env: map[string]string{"HOME": "/home/wgnsexec", "SHELL": "/bin/bash", "USER": "wgnsexec", "LOGNAME": "wgnsexec",
			"PATH": "/home/wgnsexec/.local/bin:/home/wgnsexec/bin:" + userPath}}
	wgnsother := execIdentity{Uid: "4720 4720 4720 4720", Gid: "4714 4714 4714 4714", Groups: "4712 4714",
		Env: map[string]string{"HOME": "/srv/wgnsother", "SHELL": "/bin/sh", "USER": "wgnsother", "LOGNAME": "wgnsother",
			"PATH": "/srv/wgnsother/.local/bin:/srv/wgnsother/bin:" + userPath}}
	root := execIdentity{Uid: "0 0 0 0", Gid: "0 0 0 0", Groups: rootGroups,
		Env: map[string]string{"HOME": "/root", "SHELL": "/bin/bash", "USER": "root", "LOGNAME": "root", "PATH": rootPath}}
	sudo := []string{"SUDO_UID=4711", "SUDO_GID=4711", "SUDO_USER=wgnsexec", "SUDO_COMMAND=/usr/local/bin/wgns exec"}

	cases := []struct {
		name  string
		env   []string // beyond envWithoutSudo and identityEnv
		flags []string // before NAME
		want  execIdentity
	}{
		{"sudo", sudo, nil, wgnsexec},
		{"sudo with SUDO_UID only", []string{"SUDO_UID=4711"}, nil, wgnsexec},
		{"--user NAME", nil, []string{"--user", "wgnsexec"}, wgnsexec},
		{"--user UID", nil, []string{"--user", "4720"}, wgnsother},
		{"--user=NAME under sudo, naming the sudo user", sudo, []string{"--user=wgnsexec"}, wgnsexec},
		{"-u UID under sudo, naming the sudo user", sudo, []string{"-u", "4711"}, wgnsexec},
		{"plain root", nil, nil, root},
		{"sudo by root", []string{"SUDO_UID=0", "SUDO_GID=0", "SUDO_USER=root"}, nil, root},
	}
	secret, err := os.Create(filepath.Join(t.TempDir(), "inherited-by-wgns"))
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := envWithoutSudo(append(slices.Clone(identityEnv), tc.env...)...)
			args := append(append([]string{wgnsBin, "exec"}, tc.flags...), name, "--")
			o, e, code := runWith(t, env, nil, append(args, "sh", "-c", identityScript)...)
			if code != 0 {
				t.Fatalf("wgns exec: exit %d\n%s%s", code, o, e)
			}
			status, gotEnv := parseIdentity(t, o)
			tc.want.Net = netns
			got := execIdentity{Net: status["Net"], Uid: status["Uid"], Gid: status["Gid"], Groups: status["Groups"], Env: map[string]string{}}
			for k := range tc.want.Env {
				got.Env[k] = gotEnv[k]
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("the program's identity (-want +got):\n%s", d)
			}
			for k, v := range gotEnv {
				if strings.HasPrefix(k, "SUDO_") || strings.HasPrefix(k, "LD_") || k == "LOCALDOMAIN" ||
					k == "RES_OPTIONS" || k == "HOSTALIASES" || k == "MAIL" {
					t.Errorf("the program has %s=%s", k, v)
				}
			}
			if gotEnv["WGNS_TEST_KEPT"] != "kept" || gotEnv["DBUS_SESSION_BUS_ADDRESS"] != "disabled:" {
				t.Errorf("the program has WGNS_TEST_KEPT=%q DBUS_SESSION_BUS_ADDRESS=%q, want kept and disabled:",
					gotEnv["WGNS_TEST_KEPT"], gotEnv["DBUS_SESSION_BUS_ADDRESS"])
			}

			// Only fds 0-2 reach the program.
			o, e, code = runWith(t, env, []*os.File{secret}, append(args, "ls", "-l", "/proc/self/fd")...)
			if code != 0 {
				t.Fatalf("wgns exec ls: exit %d\n%s%s", code, o, e)
			}
			if fds := openFDs(t, o); len(fds) != 3 || fds["0"] == "" || fds["1"] == "" || fds["2"] == "" {
				t.Errorf("the program's file descriptors: %v, want only 0, 1 and 2\n%s", fds, o)
			}
		})
	}

	t.Run("control: ip netns exec passes the fd on", func(t *testing.T) {
		o, e, code := runWith(t, nil, []*os.File{secret}, "ip", "netns", "exec", name, "ls", "-l", "/proc/self/fd")
		if fds := openFDs(t, o); code != 0 || fds["3"] != secret.Name() {
			t.Errorf("ip netns exec ls -l /proc/self/fd, with %s as fd 3: exit %d, fds %v\n%s%s", secret.Name(), code, fds, o, e)
		}
	})

	refused := []struct {
		name  string
		env   []string
		flags []string
		want  string // wgns's whole stderr
	}{
		{"SUDO_UID abc", []string{"SUDO_UID=abc"}, nil, `wgns exec: SUDO_UID "abc" is not a number`},
		{"SUDO_UID 99999", []string{"SUDO_UID=99999"}, nil, `wgns exec: SUDO_UID 99999: no such user`},
		{"SUDO_UID -1", []string{"SUDO_UID=-1"}, nil, `wgns exec: SUDO_UID "-1" is not a number`},
		{"SUDO_UID 2^32", []string{"SUDO_UID=4294967296"}, nil, `wgns exec: SUDO_UID "4294967296" is not a valid uid`},
		{"SUDO_USER of another user", []string{"SUDO_UID=4711", "SUDO_USER=root"}, nil,
			`wgns exec: SUDO_USER "root" is not user "wgnsexec" of SUDO_UID 4711`},
		{"SUDO_GID not a group of the user", []string{"SUDO_UID=4711", "SUDO_GID=4715"}, nil,
			`wgns exec: SUDO_GID 4715 is not a group of user "wgnsexec"`},
		{"--user unknown", nil, []string{"--user", "nosuchuser"}, `wgns exec: user "nosuchuser": no such user`},
		{"--user unknown uid", sudo, []string{"--user", "99999"}, `wgns exec: user "99999": no such user`},
		// Under sudo, only the sudo user may be named (TestIntegrationExecUnderSudoRunsOnlyAsCaller
		// has every spelling, with real sudo).
		{"--user=NAME under sudo", sudo, []string{"--user=wgnsother"},
			`wgns exec: user "wgnsother": not permitted: "wgnsexec", who ran wgns through sudo, may run commands only as "wgnsexec" (only root may name another user)`},
		{"-u root under sudo", sudo, []string{"-u", "root"},
			`wgns exec: user "root": not permitted: "wgnsexec", who ran wgns through sudo, may run commands only as "wgnsexec" (only root may name another user)`},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			args := append(append([]string{wgnsBin, "exec"}, tc.flags...), name, "--", "echo", "ran")
			o, e, code := runWith(t, envWithoutSudo(tc.env...), nil, args...)
			if code != 125 || o != "" || e != tc.want+"\n" {
				t.Errorf("wgns exec with %q %q: exit %d, stdout %q, stderr %q\nwant exit 125, no output, stderr %q", tc.env, tc.flags, code, o, e, tc.want)
			}
		})
	}
}

// TestIntegrationExecIdentityNoNewPrivs: --no-new-privs sets no_new_privs for the program (as
// root and as the sudo user); without it the program has none.
func TestIntegrationExecIdentityNoNewPrivs(t *testing.T) {
	const name = "xdnnp"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	addFixedUsers(t)
	cases := []struct {
		name  string
		env   []string
		flags []string
		want  string
	}{
		{"root", nil, nil, "NoNewPrivs: 0 Uid: 0"},
		{"root, --no-new-privs", nil, []string{"--no-new-privs"}, "NoNewPrivs: 1 Uid: 0"},
		{"sudo", []string{"SUDO_UID=4711"}, nil, "NoNewPrivs: 0 Uid: 4711"},
		{"sudo, --no-new-privs", []string{"SUDO_UID=4711"}, []string{"--no-new-privs"}, "NoNewPrivs: 1 Uid: 4711"},
		{"--user and --no-new-privs", nil, []string{"--no-new-privs", "--user", "wgnsother"}, "NoNewPrivs: 1 Uid: 4720"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{wgnsBin, "exec"}, tc.flags...), name, "--",
				"sh", "-c", `grep NoNewPrivs: /proc/self/status; grep Uid: /proc/self/status | cut -f1,2`)
			o, e, code := runWith(t, envWithoutSudo(tc.env...), nil, args...)
			if got := strings.Join(strings.Fields(o), " "); code != 0 || got != tc.want {
				t.Errorf("wgns exec %q: exit %d, %q, want %q\n%s", tc.flags, code, got, tc.want, e)
			}
		})
	}
}
