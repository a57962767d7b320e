package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// The exec DNS tests: a DNS server in the peer's namespace, reachable only through the tunnel,
// answers dnsName with the peer's tunnel addresses; a decoy the host's resolv.conf names
// answers every name with xdDecoyAnswer. The decoy is in the peer's namespace on outside4: the
// world reaches it by the underlay, and a program inside the tunnel namespace would reach it
// through the tunnel, so a query that read the host's resolv.conf is counted wherever it runs.
const (
	xdDecoy       = outside4
	xdDecoyAnswer = "203.0.113.99"
)

// xdResolverSockets stand where nscd's and systemd-resolved's sockets would be.
var xdResolverSockets = []string{"/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve"}

var (
	xdQueryOnce sync.Once
	xdQueryPath string
	xdQueryErr  error
)

// xdQueryBin builds testdata/dnsquery once, into the world's /run (gone with the world), where
// any user may run it, and returns its path.
func xdQueryBin(t *testing.T) string {
	t.Helper()
	xdQueryOnce.Do(func() {
		dir, err := os.MkdirTemp("/run", "dnsquery-")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			xdQueryErr = err
			return
		}
		xdQueryPath = filepath.Join(dir, "dnsquery")
		cmd := exec.Command("go", "build", "-o", xdQueryPath, "./testdata/dnsquery")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			xdQueryErr = fmt.Errorf("building dnsquery: %v\n%s", err, out)
		}
	})
	if xdQueryErr != nil {
		t.Fatal(xdQueryErr)
	}
	return xdQueryPath
}

// xdEnv is the test's environment without SUDO_* (the test run itself may be under sudo), with
// extra appended.
func xdEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SUDO_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// xdRun runs argv with env (nil: the test's) and the extra inherited files, and returns stdout,
// stderr and the exit code.
func xdRun(t *testing.T, env []string, files []*os.File, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.ExtraFiles = files
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %q: %v", argv, err)
	}
	return o.String(), e.String(), code
}

// xdExec runs `wgns exec NAME -- argv` as plain root and returns its output; it fails the test
// unless the exit status is 0.
func xdExec(t *testing.T, name string, argv ...string) string {
	t.Helper()
	args := append([]string{wgnsBin, "exec", name, "--"}, argv...)
	o, e, code := xdRun(t, xdEnv(), nil, args...)
	if code != 0 {
		t.Fatalf("wgns exec %s -- %s: exit %d\nstdout: %s\nstderr: %s", name, strings.Join(argv, " "), code, o, e)
	}
	return o
}

// xdDNS is a dnsmasq in a namespace; it logs the queries it gets.
type xdDNS struct {
	what string
	log  *syncBuffer
}

// xdStartDNS starts dnsmasq in namespace ns, listening on listen:53 only, with the given
// --address rules, and waits until it listens and has started; t.Cleanup stops it. It runs as
// root with no user or group to switch to: switching makes it look users up after it listens,
// and glibc would ask nscd's socket, which a test may have made a listener that never answers
// (dnsmasq would then hang for seconds).
func xdStartDNS(t *testing.T, ns, what, listen string, addresses ...string) *xdDNS {
	t.Helper()
	d := &xdDNS{what: what, log: &syncBuffer{}}
	args := []string{"netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=" + listen, "--pid-file=",
		"--user=", "--group=", "--log-queries", "--log-facility=-"}
	for _, a := range addresses {
		args = append(args, "--address="+a)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dnsmasq (%s): %v", what, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("dnsmasq (%s):\n%s", what, d.log.String())
		}
	})
	waitFor(t, 5*time.Second, "dnsmasq ("+what+") listening on "+listen+":53", func() bool {
		out, _ := run("ip", "netns", "exec", ns, "ss", "-lunH", "src", listen+":53")
		return strings.TrimSpace(out) != "" && strings.Contains(d.log.String(), "]: started, version")
	})
	return d
}

// queries returns the queries logged so far, as "query[TYPE] NAME from ADDR".
func (d *xdDNS) queries() []string {
	var qs []string
	for line := range strings.Lines(d.log.String()) {
		if i := strings.Index(line, "query["); i >= 0 {
			qs = append(qs, strings.TrimSpace(line[i:]))
		}
	}
	return qs
}

// waitQuery waits until the server has logged query q.
func (d *xdDNS) waitQuery(t *testing.T, q string) {
	t.Helper()
	waitFor(t, 5*time.Second, d.what+" to log "+q, func() bool { return slices.Contains(d.queries(), q) })
}

// xdSockets are unix sockets listening where the host's resolvers' would be; nothing accepts
// on them, so every connection waits in their backlog until accepted counts it.
type xdSockets struct {
	paths []string
	ls    []*net.UnixListener
}

func xdListen(t *testing.T, paths ...string) *xdSockets {
	t.Helper()
	s := &xdSockets{paths: paths}
	for _, p := range paths {
		dnsMkdir(t, filepath.Dir(p))
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
func (s *xdSockets) accepted() map[string]int {
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
func (s *xdSockets) acceptedWhile(done <-chan struct{}) map[string]int {
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
func (s *xdSockets) close() {
	for _, l := range s.ls {
		l.Close()
	}
}

// xdHostState is what wgns exec must leave as it was: the host's /etc/resolv.conf and
// /etc/nsswitch.conf (type, inode, symlink target, content) and this process's mount table.
func xdHostState(t *testing.T) string {
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
		fmt.Fprintf(&b, "\n%s\n", dnsReadFile(t, p))
	}
	b.WriteString(dnsReadFile(t, "/proc/self/mountinfo"))
	return b.String()
}

// xdNsswitch is a host's nsswitch.conf whose hosts line is hosts.
func xdNsswitch(hosts string) string {
	return "passwd:         files systemd\ngroup:          files systemd\nshadow:         files systemd\n\n" +
		"hosts:          " + hosts + "\nnetworks:       files\n\nprotocols:      db files\nservices:       db files\n"
}

// xdFields is out with each line's fields joined by one space, and its lines by "|".
func xdFields(out string) string {
	var lines []string
	for l := range strings.Lines(out) {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "|")
}

// xdAhostsv4 is what `getent ahostsv4 peer.wgns.test` prints (up to spaces).
var xdAhostsv4 = peerTunnel4 + " STREAM " + dnsName + "\n" + peerTunnel4 + " DGRAM\n" + peerTunnel4 + " RAW\n"

// xdPingRe matches ping's output for one answered ping of one of the peer's tunnel addresses.
// (iputils' ping prints the name for IPv6 and, with -4, an empty one: `PING  (192.0.2.1)`.)
var xdPingRe = regexp.MustCompile(`(?m)^PING [^\n(]*\((` +
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
			dnsReplace(t, "/etc/resolv.conf", "nameserver "+xdDecoy+" # the host's resolver: a decoy\n")
			dnsReplace(t, "/etc/nsswitch.conf", xdNsswitch("files dns"))
		},
	}, {
		name: "stub symlink and nss-resolve", tunnel: "xdstub",
		host: func(t *testing.T) {
			dnsMkdir(t, filepath.Dir(stub))
			dnsReplace(t, stub, "# systemd-resolved's stub file, here naming the decoy\nnameserver "+xdDecoy+"\noptions edns0 trust-ad\n")
			dnsReplaceSymlink(t, "/etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf")
			dnsReplace(t, "/etc/nsswitch.conf", xdNsswitch("files resolve [!UNAVAIL=return] dns"))
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.tunnel
			dnsKeep(t, "/etc/resolv.conf")
			dnsKeep(t, "/etc/nsswitch.conf")
			tc.host(t)
			p := newPeer(t, name)
			tunnelDNS := xdStartDNS(t, p.NS, "the tunnel's DNS", peerTunnel4,
				"/"+dnsName+"/"+peerTunnel4, "/"+dnsName+"/"+peerTunnel6)
			decoy := xdStartDNS(t, p.NS, "the decoy", xdDecoy, "/#/"+xdDecoyAnswer)
			socks := xdListen(t, xdResolverSockets...)
			tunnelUp(t, p, name)
			q := xdQueryBin(t)

			// Controls: else this test proves nothing.
			// The decoy answers the world, which asks it because the host's resolv.conf names it.
			if got, want := mustRun(t, q, "world.decoy.test"), xdDecoy+" A world.decoy.test "+xdDecoyAnswer+"\n"; got != want {
				t.Fatalf("a query from the world, to the host's resolver: %q, want the decoy's answer %q", got, want)
			}
			decoy.waitQuery(t, "query[A] world.decoy.test from "+hostUnderlay4)
			// A program inside that read the host's resolv.conf would reach the decoy through the
			// tunnel, and be counted.
			if got, want := xdExec(t, name, q, "-server", xdDecoy, "inside.decoy.test"), xdDecoy+" A inside.decoy.test "+xdDecoyAnswer+"\n"; got != want {
				t.Fatalf("a query from inside to the decoy's address: %q, want the decoy's answer %q", got, want)
			}
			decoy.waitQuery(t, "query[A] inside.decoy.test from "+clientTunnel4)
			// The sockets accept the world's connections.
			out := mustRun(t, q, append([]string{"connect"}, xdResolverSockets...)...)
			for _, s := range xdResolverSockets {
				if !strings.Contains(out, s+": connected\n") {
					t.Fatalf("connecting from the world to %s: %s", s, out)
				}
			}
			if n := socks.accepted(); n[xdResolverSockets[0]] != 1 || n[xdResolverSockets[1]] != 1 {
				t.Fatalf("the sockets accepted %v from the world, want 1 each", n)
			}
			decoyBefore := len(decoy.queries())
			before := xdHostState(t)

			inside := []struct {
				argv  []string
				check func(out string) bool
				want  string
			}{{
				argv:  []string{"getent", "hosts", dnsName},
				check: func(out string) bool { return xdFields(out) == peerTunnel6+" "+dnsName },
				want:  peerTunnel6 + " " + dnsName,
			}, {
				argv:  []string{"getent", "ahostsv4", dnsName},
				check: func(out string) bool { return xdFields(out) == xdFields(xdAhostsv4) },
				want:  xdAhostsv4,
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
				check: xdPingRe.MatchString,
				want:  "a ping of one of the peer's tunnel addresses, answered",
			}, {
				argv: []string{"ping", "-4", "-c1", "-W5", dnsName},
				check: func(out string) bool {
					return strings.Contains(out, " ("+peerTunnel4+")") && xdPingRe.MatchString(out)
				},
				want: "a ping of " + peerTunnel4 + ", answered",
			}, {
				argv: append([]string{q, "connect"}, xdResolverSockets...),
				check: func(out string) bool {
					want := ""
					for _, s := range xdResolverSockets {
						want += fmt.Sprintf("%s: failed: dial unix %[1]s: connect: no such file or directory\n", s)
					}
					return out == want
				},
				want: "no socket found",
			}, {
				argv:  []string{"grep", "^hosts:", "/etc/nsswitch.conf"},
				check: func(out string) bool { return xdFields(out) == "hosts: files dns" },
				want:  "hosts: files dns",
			}, {
				argv:  []string{"cat", "/etc/resolv.conf"},
				check: func(out string) bool { return out == dnsReadFile(t, "/etc/netns/"+name+"/resolv.conf") },
				want:  "the namespace's resolv.conf",
			}}
			for _, c := range inside {
				out := xdExec(t, name, c.argv...)
				if !c.check(out) {
					t.Errorf("wgns exec %s -- %s:\n%s\nwant %s", name, strings.Join(c.argv, " "), out, c.want)
				}
				if after := xdHostState(t); after != before {
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
			if got := ipOut.String(); err != nil || xdFields(got) != xdFields(xdAhostsv4) {
				t.Errorf("ip netns exec %s getent ahostsv4 %s: %v\n%s", name, dnsName, err, got)
			}
			if n := <-counted; n[xdResolverSockets[0]] == 0 {
				t.Errorf("getent in ip netns exec did not connect to %s (%v): then none would have from wgns exec, and this test proves nothing", xdResolverSockets[0], n)
			}
			socks.close()
			if got := mustRun(t, "ip", "netns", "exec", name, "getent", "hosts", dnsName); xdFields(got) != peerTunnel6+" "+dnsName {
				t.Errorf("ip netns exec %s getent hosts %s: %q", name, dnsName, got)
			}
			if after := xdHostState(t); after != before {
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

// xdStart starts argv with env (nil: the test's) as a child whose output is read section by
// section (see dnsChild), and kills it when the test ends (or after a minute).
func xdStart(t *testing.T, env []string, argv ...string) *dnsChild {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c := &dnsChild{cmd: exec.CommandContext(ctx, argv[0], argv[1:]...)}
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
	ours := dnsReadFile(t, "/etc/netns/"+name+"/resolv.conf")
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
			dnsReplace(t, "/etc/resolv.conf", "nameserver "+xdDecoy+" # the host's, before\n")
		},
		steps: []func(t *testing.T) string{func(t *testing.T) string {
			dnsReplace(t, "/etc/resolv.conf", "nameserver "+xdDecoy+" # the host's, after\n")
			return "nameserver " + xdDecoy + " # the host's, after\n"
		}},
	}, {
		name: "symlink into /run",
		setup: func(t *testing.T) {
			dnsMkdir(t, "/run/systemd/resolve")
			dnsMkdir(t, "/run/xdhostdns")
			dnsReplace(t, "/run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53 # stub, before\n")
			dnsReplaceSymlink(t, "/etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf")
		},
		steps: []func(t *testing.T) string{func(t *testing.T) string {
			dnsReplace(t, "/run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53 # stub, after\n")
			return "nameserver 127.0.0.53 # stub, after\n"
		}, func(t *testing.T) string {
			dnsReplace(t, "/run/xdhostdns/resolv.conf", "nameserver "+xdDecoy+" # another manager's\n")
			dnsReplaceSymlink(t, "/etc/resolv.conf", "/run/xdhostdns/resolv.conf")
			return "nameserver " + xdDecoy + " # another manager's\n"
		}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dnsKeep(t, "/etc/resolv.conf")
			tc.setup(t)
			sc := script(len(tc.steps))
			child := xdStart(t, xdEnv(), wgnsBin, "exec", name, "--", "sh", "-c", sc)
			control := xdStart(t, nil, "ip", "netns", "exec", name, "sh", "-c", sc)
			for _, c := range []*dnsChild{child, control} {
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

// The users and groups of the identity tests, added to the world's /etc/passwd and /etc/group.
// wgnsexec is in wgnsa and wgnsb but not wgnsd; wgnsother's primary group is wgnsc; root is a
// member of wgnsb and wgnsd, which a root that stays root must not gain.
const (
	xdPasswd = "wgnsexec:x:4711:4711:wgns exec test:/home/wgnsexec:/bin/bash\n" +
		"wgnsother:x:4720:4714::/srv/wgnsother:/bin/sh\n"
	xdGroup = "wgnsexec:x:4711:\nwgnsa:x:4712:wgnsexec,wgnsother\nwgnsb:x:4713:root,wgnsexec\n" +
		"wgnsc:x:4714:\nwgnsd:x:4715:root\n"
)

// xdAddUsers adds xdPasswd and xdGroup to the world's files (by rename), and puts the files
// back when the test ends.
func xdAddUsers(t *testing.T) {
	t.Helper()
	for _, f := range []struct{ path, add string }{{"/etc/passwd", xdPasswd}, {"/etc/group", xdGroup}} {
		dnsKeep(t, f.path)
		dnsReplace(t, f.path, dnsReadFile(t, f.path)+f.add)
	}
}

// xdWho is who a program runs as, and the environment identity gives it.
type xdWho struct {
	Net              string            // the network namespace, as readlink /proc/self/ns/net shows it
	Uid, Gid, Groups string            // as /proc/self/status shows them
	Env              map[string]string // variables that must have these values
}

// xdIdentityScript prints the program's credentials and environment.
const xdIdentityScript = `echo Net: $(readlink /proc/self/ns/net); grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo @@; env`

// xdEnvCommon is the caller's environment in every identity case, beyond SUDO_*: variables
// identity drops (loader, resolver, session bus) and one it keeps.
var xdEnvCommon = []string{"LD_LIBRARY_PATH=/nonexistent-wgns", "LOCALDOMAIN=leak.example", "RES_OPTIONS=ndots:9",
	"HOSTALIASES=/tmp/wgns-hosts", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/0/bus", "MAIL=/var/mail/root",
	"WGNS_TEST_KEPT=kept"}

// xdParseIdentity reads xdIdentityScript's output.
func xdParseIdentity(t *testing.T, out string) (status map[string]string, env map[string]string) {
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

// xdFDs returns the file descriptors `ls -l /proc/self/fd` lists with their targets, without the
// one ls reads the directory with.
func xdFDs(t *testing.T, out string) map[string]string {
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
	xdAddUsers(t)
	var ns unix.Stat_t
	if err := unix.Stat("/run/netns/"+name, &ns); err != nil {
		t.Fatal(err)
	}
	netns := fmt.Sprintf("net:[%d]", ns.Ino)

	// The test process's groups: what a root that stays root keeps.
	var rootGroups string
	for l := range strings.Lines(dnsReadFile(t, "/proc/self/status")) {
		if v, ok := strings.CutPrefix(l, "Groups:"); ok {
			rootGroups = strings.Join(strings.Fields(v), " ")
		}
	}
	const userPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
	const rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	wgnsexec := xdWho{Uid: "4711 4711 4711 4711", Gid: "4711 4711 4711 4711", Groups: "4711 4712 4713",
		Env: map[string]string{"HOME": "/home/wgnsexec", "SHELL": "/bin/bash", "USER": "wgnsexec", "LOGNAME": "wgnsexec",
			"PATH": "/home/wgnsexec/.local/bin:/home/wgnsexec/bin:" + userPath}}
	wgnsother := xdWho{Uid: "4720 4720 4720 4720", Gid: "4714 4714 4714 4714", Groups: "4712 4714",
		Env: map[string]string{"HOME": "/srv/wgnsother", "SHELL": "/bin/sh", "USER": "wgnsother", "LOGNAME": "wgnsother",
			"PATH": "/srv/wgnsother/.local/bin:/srv/wgnsother/bin:" + userPath}}
	root := xdWho{Uid: "0 0 0 0", Gid: "0 0 0 0", Groups: rootGroups,
		Env: map[string]string{"HOME": "/root", "SHELL": "/bin/bash", "USER": "root", "LOGNAME": "root", "PATH": rootPath}}
	sudo := []string{"SUDO_UID=4711", "SUDO_GID=4711", "SUDO_USER=wgnsexec", "SUDO_COMMAND=/usr/local/bin/wgns exec"}

	cases := []struct {
		name  string
		env   []string // beyond xdEnv and xdEnvCommon
		flags []string // before NAME
		want  xdWho
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
			env := xdEnv(append(slices.Clone(xdEnvCommon), tc.env...)...)
			args := append(append([]string{wgnsBin, "exec"}, tc.flags...), name, "--")
			o, e, code := xdRun(t, env, nil, append(args, "sh", "-c", xdIdentityScript)...)
			if code != 0 {
				t.Fatalf("wgns exec: exit %d\n%s%s", code, o, e)
			}
			status, gotEnv := xdParseIdentity(t, o)
			tc.want.Net = netns
			got := xdWho{Net: status["Net"], Uid: status["Uid"], Gid: status["Gid"], Groups: status["Groups"], Env: map[string]string{}}
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
			o, e, code = xdRun(t, env, []*os.File{secret}, append(args, "ls", "-l", "/proc/self/fd")...)
			if code != 0 {
				t.Fatalf("wgns exec ls: exit %d\n%s%s", code, o, e)
			}
			if fds := xdFDs(t, o); len(fds) != 3 || fds["0"] == "" || fds["1"] == "" || fds["2"] == "" {
				t.Errorf("the program's file descriptors: %v, want only 0, 1 and 2\n%s", fds, o)
			}
		})
	}

	t.Run("control: ip netns exec passes the fd on", func(t *testing.T) {
		o, e, code := xdRun(t, nil, []*os.File{secret}, "ip", "netns", "exec", name, "ls", "-l", "/proc/self/fd")
		if fds := xdFDs(t, o); code != 0 || fds["3"] != secret.Name() {
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
			o, e, code := xdRun(t, xdEnv(tc.env...), nil, args...)
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
	xdAddUsers(t)
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
			o, e, code := xdRun(t, xdEnv(tc.env...), nil, args...)
			if got := strings.Join(strings.Fields(o), " "); code != 0 || got != tc.want {
				t.Errorf("wgns exec %q: exit %d, %q, want %q\n%s", tc.flags, code, got, tc.want, e)
			}
		})
	}
}
