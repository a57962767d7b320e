package integration

// The harness: the helpers the root tests share, in sections: running commands (as root, as
// another user, with an environment, files or a time limit of their own, in the background until
// the test ends), a program read section by section, running wgns, waiting on conditions and
// reading output, the world's files (changed for the length of a test) and the programs in
// testdata, users, DNS servers in a namespace, and processes. Helpers that serve one behaviour
// stay in that behaviour's file, named for what they do.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/syncbuf"
)

// Running commands.

// run runs a command and returns its combined output.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// mustRun runs a command that must succeed and returns its combined output.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// mustOutput runs a command that must succeed and returns its standard output alone (its
// standard error shows only in the failure).
func mustOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// runCmd runs cmd, prepared by the caller (user, environment, files, stdin), and returns its
// stdout and stderr (unless the caller set them) and its status as a shell reports it (128+N
// when signal N killed it). It fails the test only if cmd could not run at all.
func runCmd(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &o
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &e
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %q: %v", cmd.Args, err)
	}
	return o.String(), e.String(), shellStatus(cmd.ProcessState)
}

// startUntilEnd starts cmd and, when the test ends, kills it and waits for it.
func startUntilEnd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q: %v", cmd.Args, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// runWithin runs argv as plain root (envWithoutSudo) with a time limit, in a process group of
// its own that the limit kills whole, and returns its output, exit status (-1 when killed at
// the limit) and how long it took.
func runWithin(t *testing.T, limit time.Duration, argv ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = envWithoutSudo()
	// At the limit, kill all it started (a shell's children too), and stop reading their output.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var o, e syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	start := time.Now()
	err := cmd.Run()
	took = time.Since(start)
	if ctx.Err() != nil {
		return o.String(), e.String(), -1, took
	}
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %q: %v", argv, err)
	}
	return o.String(), e.String(), code, took
}

// runWith runs argv with env (nil: the test's) and the extra inherited files (fd 3 on), and
// returns stdout, stderr and its status as runCmd does.
func runWith(t *testing.T, env []string, files []*os.File, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.ExtraFiles = files
	return runCmd(t, cmd)
}

// envWithoutSudo is the test's environment without SUDO_* (the test run itself may be under
// sudo), with extra appended: the environment of plain root.
func envWithoutSudo(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SUDO_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// shellStatus is a process's status as a shell reports it: its exit code, or 128+N when signal N
// ended it.
func shellStatus(ps *os.ProcessState) int {
	ws := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// A program whose output is read section by section.

// sectionedChild is a running program whose output is read section by section: a section ends
// at a line "@@". Its script may wait for the test (a `read` on its standard input) between them.
type sectionedChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
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

// section reads the child's output up to the next line "@@" and returns it without that line.
func (c *sectionedChild) section(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := c.out.ReadString('\n')
		if line == "@@\n" {
			return b.String()
		}
		b.WriteString(line)
		if err != nil {
			t.Fatalf("reading the output of %q: %v; got %q; stderr: %s", c.cmd.Args, err, b.String(), c.stderr.String())
		}
	}
}

// next lets the child's script go on past its next `read`.
func (c *sectionedChild) next(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "\n"); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the child to exit successfully.
func (c *sectionedChild) wait(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	io.Copy(io.Discard, c.out)
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("%q: %v; stderr: %s", c.cmd.Args, err, c.stderr.String())
	}
}

// Running wgns.

// wgnsRun runs the wgns binary under test and returns stdout, stderr and the exit code.
func wgnsRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return wgnsRunEnv(t, nil, args...)
}

// wgnsRunEnv is wgnsRun with env added to the test's environment.
func wgnsRunEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(wgnsBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running wgns %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// mustWgns runs the wgns binary under test, which must exit 0, and returns its stdout.
func mustWgns(t *testing.T, args ...string) string {
	t.Helper()
	o, e, code := wgnsRun(t, args...)
	if code != 0 {
		t.Fatalf("wgns %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, o, e)
	}
	return o
}

// mustExec runs `wgns exec NAME -- argv` as plain root and returns its output; it fails the test
// unless the exit status is 0.
func mustExec(t *testing.T, name string, argv ...string) string {
	t.Helper()
	args := append([]string{wgnsBin, "exec", name, "--"}, argv...)
	o, e, code := runWith(t, envWithoutSudo(), nil, args...)
	if code != 0 {
		t.Fatalf("wgns exec %s -- %s: exit %d\nstdout: %s\nstderr: %s", name, strings.Join(argv, " "), code, o, e)
	}
	return o
}

// Waiting and reading output.

// listening reports whether a socket of proto ("tcp" or "udp") listens in namespace ns (""
// for the world's own) that ss's filter selects, e.g. "src", "192.0.2.1:80" or "sport", "= :53".
func listening(ns, proto string, filter ...string) bool {
	flag := "-ltnH"
	if proto == "udp" {
		flag = "-lunH"
	}
	argv := append([]string{"ss", flag}, filter...)
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	out, _ := run(argv[0], argv[1:]...)
	return strings.TrimSpace(out) != ""
}

// waitFor polls cond until it holds or limit (stretched by WGNS_TEST_TIME_SCALE) passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	limit = scaled(limit)
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// keyValues parses out's "key=value" lines into a map.
func keyValues(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// oneLine is out with each line's fields joined by one space, and its lines by "|": output
// whose spacing does not matter, as one comparable line.
func oneLine(out string) string {
	var lines []string
	for l := range strings.Lines(out) {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "|")
}

// The world's files and the programs in testdata.

// readFile returns the content of the file at path.
func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// keepFile saves the world's file or symlink at path and puts it back, by rename, when the test
// ends.
func keepFile(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Cleanup(func() { os.Remove(path) })
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { replaceSymlink(t, path, target) })
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replaceFile(t, path, string(data)) })
}

// replaceFile replaces path by a regular file holding data, by rename, as resolvconf or a DHCP
// client does.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".wgns-test-new"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// replaceSymlink replaces path by a symlink to target, by rename.
func replaceSymlink(t *testing.T, path, target string) {
	t.Helper()
	tmp := path + ".wgns-test-new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// makeDir makes dir in the world and removes it when the test ends if it did not exist.
func makeDir(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err == nil {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
}

// worldDir returns a new directory in the world's /run that every user may write to, removed
// when the test ends.
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "wgns-test-")
	if err == nil {
		err = os.Chmod(dir, 0o777)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

var (
	worldToolsMu sync.Mutex
	worldTools   = map[string]string{}
)

// worldTool builds testdata/NAME once, into the world's /run, where any user may run it, and
// returns its path.
func worldTool(t testing.TB, name string) string {
	t.Helper()
	worldToolsMu.Lock()
	defer worldToolsMu.Unlock()
	if p, ok := worldTools[name]; ok {
		return p
	}
	dir, err := os.MkdirTemp("/run", name+"-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", p, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/%s: %v\n%s", name, err, out)
	}
	worldTools[name] = p
	return p
}

// Users.

// worldUser is a user made with useradd in the world's /etc.
type worldUser struct {
	Name     string
	UID, GID int
	Home     string
}

// addUser makes a user with useradd (its home under the world's /run, no lastlog or faillog
// entry on the machine) and removes it when the test ends.
func addUser(t *testing.T, name string) worldUser {
	t.Helper()
	home := "/run/wgns-home/" + name
	if err := os.MkdirAll(filepath.Dir(home), 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "useradd", "--no-log-init", "--create-home", "--home-dir", home, "--shell", "/bin/sh", "--user-group", name)
	t.Cleanup(func() { run("userdel", "--remove", name) })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return worldUser{Name: name, UID: uid, GID: gid, Home: home}
}

// userEnv is a login-like environment of u.
func userEnv(u worldUser, extra ...string) []string {
	return append([]string{"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name, "SHELL=/bin/sh",
		"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C"}, extra...)
}

// userGroups returns the groups a login of u gets: its primary group and those listing it.
func userGroups(t *testing.T, u worldUser) []uint32 {
	t.Helper()
	lu, err := user.Lookup(u.Name)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := lu.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	var gs []uint32
	for _, id := range ids {
		g, _ := strconv.Atoi(id)
		gs = append(gs, uint32(g))
	}
	return gs
}

// userCmd is argv run as u as a login of u would run it: its uid, gid and all its groups, its
// environment, in its home.
func userCmd(t *testing.T, u worldUser, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = userEnv(u)
	cmd.Dir = u.Home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: userGroups(t, u)}}
	return cmd
}

// asUser runs argv as u with u's own group alone (userCmd gives it all its groups), in its home,
// with a login-like environment whose PATH starts at ~/.local/bin, and returns what runCmd
// does.
func asUser(t *testing.T, u worldUser, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name, "SHELL=/bin/sh",
		"PATH=" + u.Home + "/.local/bin:/usr/local/bin:/usr/bin:/bin", "LANG=C"}
	cmd.Dir = u.Home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}}
	return runCmd(t, cmd)
}

// The users and groups of the identity tests, added to the world's /etc/passwd and /etc/group
// by addFixedUsers. wgnsexec is in wgnsa and wgnsb but not wgnsd; wgnsother's primary group is
// wgnsc; root is a member of wgnsb and wgnsd, which a root that stays root must not gain.
const (
	fixedPasswd = "wgnsexec:x:4711:4711:wgns exec test:/home/wgnsexec:/bin/bash\n" +
		"wgnsother:x:4720:4714::/srv/wgnsother:/bin/sh\n"
	fixedGroup = "wgnsexec:x:4711:\nwgnsa:x:4712:wgnsexec,wgnsother\nwgnsb:x:4713:root,wgnsexec\n" +
		"wgnsc:x:4714:\nwgnsd:x:4715:root\n"
)

// addFixedUsers adds fixedPasswd and fixedGroup, users and groups of known IDs, to the world's
// files (by rename), and puts the files back when the test ends. addUser makes a user with
// useradd instead.
func addFixedUsers(t *testing.T) {
	t.Helper()
	for _, f := range []struct{ path, add string }{{"/etc/passwd", fixedPasswd}, {"/etc/group", fixedGroup}} {
		keepFile(t, f.path)
		replaceFile(t, f.path, readFile(t, f.path)+f.add)
	}
}

// DNS servers.

// dnsServer is a dnsmasq in a namespace; it logs the queries it gets.
type dnsServer struct {
	what string
	log  *syncbuf.Buffer
}

// startDnsmasq starts dnsmasq (what names it in messages) in namespace ns, listening on port 53
// of the listen addresses only, with the given --address rules, and waits until it listens on
// each and has started; t.Cleanup stops it. It runs as root with no user or group to switch to:
// switching makes it look users up after it listens, and glibc would ask nscd's socket, which a
// test may have made a listener that never answers (dnsmasq would then hang for seconds).
func startDnsmasq(t *testing.T, ns, what string, listen []string, addresses ...string) *dnsServer {
	t.Helper()
	d := &dnsServer{what: what, log: &syncbuf.Buffer{}}
	args := []string{"netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--pid-file=", "--user=", "--group=",
		"--log-queries", "--log-facility=-"}
	for _, a := range listen {
		args = append(args, "--listen-address="+a)
	}
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
	waitFor(t, 10*time.Second, "dnsmasq ("+what+") listening on "+strings.Join(listen, ", ")+" port 53", func() bool {
		out, _ := run("ip", "netns", "exec", ns, "ss", "-lunH", "sport", "= :53")
		for _, a := range listen {
			if !strings.Contains(out, a+":53") && !strings.Contains(out, "["+a+"]:53") {
				return false
			}
		}
		return strings.Contains(d.log.String(), "]: started, version")
	})
	return d
}

// startDNS starts the tunnel's DNS server for peer p: a dnsmasq in the peer's namespace,
// listening only on the peer's tunnel address (it answers only through the tunnel), that
// resolves name to addr.
func startDNS(t *testing.T, p *peer, name, addr string) *dnsServer {
	t.Helper()
	return startDnsmasq(t, p.NS, "the tunnel's DNS", []string{peerTunnel4}, "/"+name+"/"+addr)
}

// queries returns the queries logged so far, as "query[TYPE] NAME from ADDR".
func (d *dnsServer) queries() []string {
	var qs []string
	for line := range strings.Lines(d.log.String()) {
		if i := strings.Index(line, "query["); i >= 0 {
			qs = append(qs, strings.TrimSpace(line[i:]))
		}
	}
	return qs
}

// waitQuery waits until the server has logged query q.
func (d *dnsServer) waitQuery(t *testing.T, q string) {
	t.Helper()
	waitFor(t, 5*time.Second, d.what+" to log "+q, func() bool { return slices.Contains(d.queries(), q) })
}

// Processes.

// pidsWhere returns the PIDs of the world's processes for which match holds, in /proc's order.
func pidsWhere(match func(pid int) bool) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && match(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cmdline returns the process's /proc/PID/cmdline (arguments ended by NULs), "" if it is gone.
func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return string(b)
}

// processLives reports whether pid runs (and is not a zombie waiting to be reaped).
func processLives(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// resolvRename is one way the host replaces its resolv.conf by rename: setup makes the host's
// file before the programs start; each step renames something over it and returns what the
// host's /etc/resolv.conf then says.
type resolvRename struct {
	name  string
	setup func(t *testing.T)
	steps []func(t *testing.T) string
}

// resolvRenames are the host's renames a DNS view must survive: over a plain file; and with a
// symlink into /run, over its target, then over the symlink itself (pointed at dir's file, as
// another resolver manager would). before, after and other are the nameservers the host's
// files name at each point.
func resolvRenames(dir, before, after, other string) []resolvRename {
	write := func(t *testing.T, path, content string) string {
		replaceFile(t, path, content)
		return content
	}
	return []resolvRename{{
		name:  "plain file",
		setup: func(t *testing.T) { write(t, "/etc/resolv.conf", "nameserver "+before+" # the host's, before\n") },
		steps: []func(t *testing.T) string{func(t *testing.T) string {
			return write(t, "/etc/resolv.conf", "nameserver "+after+" # the host's, after\n")
		}},
	}, {
		name: "symlink into /run",
		setup: func(t *testing.T) {
			makeDir(t, "/run/systemd/resolve")
			makeDir(t, dir)
			write(t, "/run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53 # stub, before\n")
			replaceSymlink(t, "/etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf")
		},
		steps: []func(t *testing.T) string{func(t *testing.T) string {
			return write(t, "/run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53 # stub, after\n")
		}, func(t *testing.T) string {
			content := write(t, dir+"/resolv.conf", "nameserver "+other+" # another manager's\n")
			replaceSymlink(t, "/etc/resolv.conf", dir+"/resolv.conf")
			return content
		}},
	}}
}
