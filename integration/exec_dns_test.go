package integration

import (
	"bytes"
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

// listenSilent listens on each of paths (making its directory for the test) and closes them
// when the test ends.
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
	for _, tc := range resolvRenames("/run/xdhostdns", decoyAddr, decoyAddr, decoyAddr) {
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
