package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/syncbuf"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The tests of sudo-free `wgns exec`: real users of the world's /etc, named in a tunnel's
// [Namespace] Users, run wgns exec without sudo; the service (`wgns serve`, started by hand in
// the world, on the world's /run/wgns.sock) runs their commands.

// svcSocket is where the service listens: the world's /run is its own.
const svcSocket = "/run/wgns.sock"

// service is `wgns serve` running in the world.
type service struct {
	cmd *exec.Cmd
	log *syncbuf.Buffer
}

// startService starts the service by hand (as where there is no systemd) and waits until it
// listens; t.Cleanup stops it with SIGTERM and checks that it ended every session.
func startService(t *testing.T) *service {
	t.Helper()
	if _, err := os.Stat(svcSocket); err == nil {
		t.Fatalf("%s exists before the test: another service runs", svcSocket)
	}
	s := &service{log: &syncbuf.Buffer{}}
	s.cmd = exec.Command(wgnsCore(), "serve")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- s.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("wgns serve ended with %v\n%s", err, s.log)
			}
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			t.Errorf("wgns serve did not end within 30 s of SIGTERM\n%s", s.log)
		}
		if left := sessionProcs(); len(left) > 0 {
			t.Errorf("session processes left after the service stopped: %v", left)
		}
		if t.Failed() {
			t.Logf("wgns serve:\n%s", s.log)
		}
	})
	waitFor(t, 20*time.Second, "wgns serve to listen on "+svcSocket, func() bool {
		return strings.Contains(s.log.String(), "listening on")
	})
	return s
}

// sessionProcs returns the PIDs of the service's session processes in the world.
func sessionProcs() []int {
	return pidsWhere(func(pid int) bool { return strings.Contains(cmdline(pid), "serve\x00--session") })
}

// svcTunnel brings up tunnel name with its peer, a DNS server and a web server reachable only
// through the tunnel, and extra appended to the config (its [Namespace] Users).
type svcTunnel struct {
	name string
	p    *peer
	dns  *dnsServer
	web  *syncbuf.Buffer // the web server's log: one line per request, with the client's address
}

// webPage is what the peer's web server serves.
const webPage = "<html><head><title>behind the tunnel</title></head><body><h1>Served behind the tunnel</h1><p>Only a program inside the wgns tunnel reaches this page.</p></body></html>\n"

func newSvcTunnel(t *testing.T, name, namespace string) *svcTunnel {
	t.Helper()
	st := &svcTunnel{name: name, p: newPeer(t, name)}
	st.p.writeConfig(t, st.p.ConfigPath, namespace)
	st.dns = startDNS(t, st.p, dnsName, peerTunnel4)
	st.web = startWeb(t, st.p)
	tunnelUp(t, st.p, name)
	return st
}

// otherTunnel brings up a second tunnel, name, against the same peer with a client key the peer
// does not know: it is up and ready (no traffic passes), for tests that need another tunnel
// beside the one with a working peer.
func otherTunnel(t *testing.T, p *peer, name, namespace string) {
	t.Helper()
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), name+".conf")
	other := *p
	other.ClientKey = key
	other.writeConfig(t, conf, namespace)
	mustWgns(t, "up", "--userspace", "--wait", "0", "--name", name, conf)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
}

// startWeb runs busybox's httpd in the peer's namespace on the peer's tunnel address, port 80.
func startWeb(t *testing.T, p *peer) *syncbuf.Buffer {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(webPage), 0o644); err != nil {
		t.Fatal(err)
	}
	log := &syncbuf.Buffer{}
	cmd := exec.Command("ip", "netns", "exec", p.NS, "busybox", "httpd", "-f", "-vv", "-p", peerTunnel4+":80", "-h", dir)
	cmd.Stdout, cmd.Stderr = log, log
	startUntilEnd(t, cmd)
	waitFor(t, 5*time.Second, "the web server to listen", func() bool {
		return listening(p.NS, "tcp", "src", peerTunnel4+":80")
	})
	return log
}

// TestIntegrationServiceExec: a user the tunnel's Users name, and one in a group it names, run
// `wgns exec` without sudo: the command runs as exactly that user (uid, all its groups, working
// directory, environment and umask as given), its traffic goes through the tunnel and its names
// resolve with the tunnel's DNS (the host's decoy resolver gets nothing), standard input and
// output pass through, and its exit status comes back. A user the list does not name is refused,
// and so is a tunnel that is not up; neither runs anything.
func TestIntegrationServiceExec(t *testing.T) {
	keepFile(t, "/etc/resolv.conf")
	replaceFile(t, "/etc/resolv.conf", "nameserver "+decoyAddr+" # the host's resolver: a decoy\n")
	alice := addUser(t, "wgnsalice")
	carol := addUser(t, "wgnscarol")
	bob := addUser(t, "wgnsbob")
	mustRun(t, "groupadd", "--system", "wgnsdesk")
	t.Cleanup(func() { run("groupdel", "wgnsdesk") })
	mustRun(t, "groupadd", "--system", "wgnsmedia")
	t.Cleanup(func() { run("groupdel", "wgnsmedia") })
	mustRun(t, "usermod", "-aG", "wgnsdesk,wgnsmedia", "wgnscarol")
	mustRun(t, "usermod", "-aG", "wgnsmedia", "wgnsalice")

	st := newSvcTunnel(t, "svc", "[Namespace]\nUsers = wgnsalice, @wgnsdesk\n")
	decoy := startDnsmasq(t, st.p.NS, "the decoy", []string{decoyAddr}, "/#/"+decoyAnswer)
	startService(t)
	front := copyWgns(t)
	dir := worldDir(t)

	script := `id; umask; pwd; echo "FOO=$FOO DBUS=$DBUS_SESSION_BUS_ADDRESS"; cat; curl -sS --max-time 20 http://` + dnsName + `/; exit 7`
	for _, u := range []worldUser{alice, carol} {
		t.Run(u.Name, func(t *testing.T) {
			cmd := userCmd(t, u, front, "exec", st.name, "--", "sh", "-c", script)
			cmd.Env = append(cmd.Env, "FOO=bar baz")
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader("from stdin\n")
			cmd.SysProcAttr.Setsid = true // no terminal: the command gets the files as they are
			// The umask the user set is the command's.
			cmd.Path, cmd.Args = "/bin/sh", append([]string{"/bin/sh", "-c", `umask 027; exec "$@"`, "sh"}, cmd.Args...)
			o, e, code := runCmd(t, cmd)
			if code != 7 {
				t.Fatalf("exit %d, want 7 (the command's)\nstdout: %s\nstderr: %s", code, o, e)
			}
			lines := strings.SplitN(o, "\n", 6)
			wantID := fmt.Sprintf("uid=%d(%s) gid=%d(%s) groups=%d(%s)", u.UID, u.Name, u.GID, u.Name, u.GID, u.Name)
			if !strings.HasPrefix(lines[0], wantID) || !strings.Contains(lines[0], "(wgnsmedia)") {
				t.Errorf("id: %q; want %s... with every group of the user's (wgnsmedia among them)", lines[0], wantID)
			}
			if u.Name == "wgnscarol" && !strings.Contains(lines[0], "(wgnsdesk)") {
				t.Errorf("id: %q; want the group wgnsdesk too", lines[0])
			}
			if lines[1] != "0027" || lines[2] != dir || lines[3] != "FOO=bar baz DBUS=disabled:" || lines[4] != "from stdin" {
				t.Errorf("umask, directory, environment, stdin: %q; want 0027, %s, FOO=bar baz DBUS=disabled:, from stdin", lines[1:5], dir)
			}
			if lines[5] != webPage {
				t.Errorf("curl printed %q, want the page behind the tunnel; stderr: %s", lines[5], e)
			}
		})
	}
	// The page was fetched from the tunnel's address, and the names resolved by the tunnel's
	// DNS; the host's resolver never saw them.
	if n := strings.Count(st.web.String(), clientTunnel4); n < 2 {
		t.Errorf("the web server saw %d requests from %s (the tunnel's address), want 2:\n%s", n, clientTunnel4, st.web)
	}
	st.dns.waitQuery(t, "query[A] "+dnsName+" from "+clientTunnel4)
	if qs := decoy.queries(); len(qs) != 0 {
		t.Errorf("the host's resolver got queries: %q", qs)
	}

	marker := filepath.Join(dir, "ran")
	refusals := []struct {
		name string
		u    worldUser
		args []string
		want string
	}{
		{"a user the list does not name", bob, []string{"exec", st.name, "--"},
			`wgns exec: user "wgnsbob" is not granted to run programs in tunnel "svc": the tunnel's [Namespace] Users (as its last up or repair read them) names neither the user nor a group of the user's`},
		{"a tunnel that is not up", alice, []string{"exec", "nosuch", "--"}, `wgns exec: tunnel "nosuch" is not up`},
		{"--user another user", alice, []string{"exec", "--user", "wgnsbob", st.name, "--"},
			`wgns exec: user "wgnsbob": not permitted: "wgnsalice", who ran wgns, may run commands only as "wgnsalice" (only root may name another user)`},
		{"--user root", alice, []string{"exec", "-u", "0", st.name, "--"}, `not permitted`},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			argv := append(append([]string{front}, r.args...), "sh", "-c", "touch "+marker)
			_, e, code := runCmd(t, userCmd(t, r.u, argv...))
			if code != 125 || !strings.Contains(e, r.want) {
				t.Errorf("exit %d, stderr %q; want 125 and %q", code, e, r.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the command ran")
			}
		})
	}
	// --user naming oneself is allowed, as under sudo.
	if _, e, code := runCmd(t, userCmd(t, alice, front, "exec", "--user", "wgnsalice", st.name, "--", "true")); code != 0 {
		t.Errorf("--user wgnsalice by wgnsalice: exit %d: %s", code, e)
	}
}

// TestIntegrationServiceNotRunning: without the service, a user's wgns exec says what it needs.
func TestIntegrationServiceNotRunning(t *testing.T) {
	alice := addUser(t, "wgnsalice")
	front := copyWgns(t)
	_, e, code := runCmd(t, userCmd(t, alice, front, "exec", "work", "--", "true"))
	want := "wgns exec: the wgns service is not running (connecting to /run/wgns.sock: no such file or directory): without sudo, exec asks it to run the command for a user the tunnel's [Namespace] Users names (an admin starts it with systemctl enable --now wgns.socket); or run exec with sudo\n"
	if code != 125 || e != want {
		t.Errorf("exit %d, stderr %q\nwant 125, %q", code, e, want)
	}
}

// svcWaitGone waits until no process runs pid.
func svcWaitGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	waitFor(t, 30*time.Second, what+" to end", func() bool {
		for _, pid := range pids {
			if unix.Kill(pid, 0) == nil {
				return false
			}
		}
		return true
	})
}
