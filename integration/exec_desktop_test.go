package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/syncbuf"
)

// The desktop through wgns exec: X11 and Wayland programs, Debian's Chromium and Firefox, run
// by a real user in a tunnel, with and without sudo. Screenshots go to $WGNS_SCREENSHOTS when
// it names a directory (else to the test's temporary directory).

// display is an X server (Xvfb) run by a user, as the user's desktop would be.
type display struct {
	name string // ":N"
}

// startXvfb starts Xvfb as u on a display number that is free, and waits until it accepts
// clients; t.Cleanup stops it.
func startXvfb(t *testing.T, u worldUser) *display {
	t.Helper()
	n := 70
	for ; n < 100; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); os.IsNotExist(err) {
			if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); os.IsNotExist(err) {
				break
			}
		}
	}
	d := &display{name: ":" + strconv.Itoa(n)}
	log := &syncbuf.Buffer{}
	cmd := userCmd(t, u, "Xvfb", d.name, "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.Remove(fmt.Sprintf("/tmp/.X%d-lock", n))
		os.Remove(fmt.Sprintf("/tmp/.X11-unix/X%d", n))
	})
	waitFor(t, 20*time.Second, "Xvfb "+d.name, func() bool {
		return exec.Command("xdpyinfo", "-display", d.name).Run() == nil
	})
	return d
}

// windows returns the names of the display's windows.
func (d *display) windows() string {
	cmd := exec.Command("xdotool", "search", "--onlyvisible", "--name", ".", "getwindowname", "%@")
	cmd.Env = append(os.Environ(), "DISPLAY="+d.name)
	out, _ := cmd.Output()
	return string(out)
}

// waitWindow waits until a window of the display has a name that contains s.
func (d *display) waitWindow(t *testing.T, s string) {
	t.Helper()
	waitFor(t, 90*time.Second, "a window named "+s+" on "+d.name, func() bool { return strings.Contains(d.windows(), s) })
}

// screenshot saves the display's screen as NAME.png.
func (d *display) screenshot(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("WGNS_SCREENSHOTS")
	if fi, err := os.Stat(dir); dir == "" || err != nil || !fi.IsDir() {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, name+".png")
	sh := fmt.Sprintf("xwd -root -silent -display %s | /usr/bin/convert xwd:- png:%s", d.name, path)
	if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil {
		t.Errorf("screenshot %s: %v\n%s", path, err, out)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// background starts cmd (a user's wgns exec of a program that stays) and returns what stops it
// (SIGTERM to wgns, which passes it on) and waits.
func background(t *testing.T, cmd *exec.Cmd) (out *syncbuf.Buffer, stop func()) {
	t.Helper()
	out = &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)
	return out, stop
}

// browserFlags keep Chromium quiet on this closed network (no background connections, no
// first-run pages) and drawing without a GPU.
var browserFlags = []string{"--no-first-run", "--no-default-browser-check", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--disable-gpu", "--disable-quic", "--password-store=basic"}

// firefoxProfile makes an empty profile directory of u's, with the preferences that keep
// Firefox from calling home on this closed network.
func firefoxProfile(t *testing.T, u worldUser, dir string) string {
	t.Helper()
	prefs := `user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.enabled", false);
user_pref("browser.aboutwelcome.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("network.trr.mode", 5);
`
	mustRun(t, "install", "-d", "-o", u.Name, "-g", u.Name, "-m", "700", dir)
	if err := os.WriteFile(filepath.Join(dir, "user.js"), []byte(prefs), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "chown", u.Name+":"+u.Name, filepath.Join(dir, "user.js"))
	return dir
}

// TestIntegrationDesktopX11: under Xvfb, a user runs X11 programs in the tunnel without sudo:
// xdpyinfo and xeyes reach the display, and Debian's Chromium and Firefox, each on a profile of
// its own, open the page served behind the tunnel (only reachable through it: the web server
// sees the tunnel's address). Screenshots show them. Under sudo, the same display works.
func TestIntegrationDesktopX11(t *testing.T) {
	alice := addUser(t, "wgnsalice")
	allowExec(t, alice)
	st := newSvcTunnel(t, "deskx", "[Namespace]\nUsers = wgnsalice\n")
	startService(t)
	front := copyWgns(t)
	d := startXvfb(t, alice)
	exec1 := func(argv ...string) *exec.Cmd {
		cmd := userCmd(t, alice, append([]string{front, "exec", st.name, "--"}, argv...)...)
		cmd.Env = append(cmd.Env, "DISPLAY="+d.name)
		return cmd
	}

	o, e, code := runCmd(t, exec1("xdpyinfo"))
	if code != 0 || !strings.Contains(o, "name of display:    "+d.name) || !strings.Contains(o, "1280x800 pixels") {
		t.Fatalf("xdpyinfo through the service: exit %d\n%s%s", code, o, e)
	}
	// Under sudo too: sudo keeps DISPLAY.
	sudo := userCmd(t, alice, "sudo", "-n", wgnsBin, "exec", st.name, "--", "xdpyinfo") // the sudoers rule names wgnsBin
	sudo.Env = append(sudo.Env, "DISPLAY="+d.name)
	if o, e, code := runCmd(t, sudo); code != 0 || !strings.Contains(o, "name of display:    "+d.name) {
		t.Errorf("xdpyinfo under sudo: exit %d\n%s%s", code, o, e)
	}

	_, stopEyes := background(t, exec1("xeyes", "-geometry", "300x200+900+550"))
	d.waitWindow(t, "xeyes")

	profile := filepath.Join(alice.Home, ".config", "chromium-"+st.name)
	chromium, stopChromium := background(t, exec1(append(append([]string{"chromium"}, browserFlags...),
		"--user-data-dir="+profile, "--window-position=0,0", "--window-size=880,560", "http://"+dnsName+"/")...))
	d.waitWindow(t, "behind the tunnel - Chromium")
	d.screenshot(t, "x11-xeyes-chromium")
	stopChromium()

	ff := firefoxProfile(t, alice, filepath.Join(alice.Home, "ff-"+st.name))
	firefox, stopFirefox := background(t, exec1("firefox-esr", "--no-remote", "--profile", ff, "--width", "880", "--height", "560", "http://"+dnsName+"/"))
	d.waitWindow(t, "behind the tunnel")
	waitFor(t, 60*time.Second, "Firefox to show the page", func() bool { return strings.Contains(d.windows(), "behind the tunnel — Mozilla Firefox") })
	d.screenshot(t, "x11-xeyes-firefox")
	stopFirefox()
	stopEyes()

	// Both browsers fetched the page from inside: the web server saw the tunnel's address, and
	// the tunnel's DNS the names.
	if n := strings.Count(st.web.String(), clientTunnel4); n < 2 {
		t.Errorf("the web server saw %d requests from the tunnel's address; want Chromium's and Firefox's:\n%s\nChromium: %s\nFirefox: %s",
			n, st.web, chromium, firefox)
	}
	st.dns.waitQuery(t, "query[A] "+dnsName+" from "+clientTunnel4)
}

// TestIntegrationDesktopWayland: under weston (headless), a Wayland client run through the
// service connects to the user's compositor; under sudo, which strips XDG_RUNTIME_DIR and
// WAYLAND_DISPLAY, wgns gives them back (the user's own runtime directory and socket), and
// the ssh agent only with --ssh-agent. Inside, the session bus and the user's systemd
// manager cannot be reached by path, while outside they can.
func TestIntegrationDesktopWayland(t *testing.T) {
	alice := addUser(t, "wgnsalice")
	allowExec(t, alice)
	st := newSvcTunnel(t, "deskw", "[Namespace]\nUsers = wgnsalice\n")
	startService(t)
	front := copyWgns(t)

	runtime := "/run/user/" + strconv.Itoa(alice.UID)
	mustRun(t, "install", "-d", "-m", "755", "/run/user")
	mustRun(t, "install", "-d", "-o", alice.Name, "-g", alice.Name, "-m", "700", runtime)
	t.Cleanup(func() { os.RemoveAll(runtime) })
	log := &syncbuf.Buffer{}
	weston := userCmd(t, alice, "weston", "--backend=headless-backend.so", "--socket=wayland-1", "--idle-time=0")
	weston.Env = append(weston.Env, "XDG_RUNTIME_DIR="+runtime)
	weston.Stdout, weston.Stderr = log, log
	if err := weston.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		weston.Process.Kill()
		weston.Wait()
		if t.Failed() {
			t.Logf("weston:\n%s", log)
		}
	})
	waitFor(t, 30*time.Second, "weston's socket", func() bool { _, err := os.Stat(runtime + "/wayland-1"); return err == nil })

	// The session's sockets that act outside the tunnel: the bus, the user's systemd manager,
	// and an ssh agent (all alice's).
	for _, s := range []string{"bus", "systemd/private", "openssh_agent"} {
		path := filepath.Join(runtime, s)
		mustRun(t, "install", "-d", "-o", alice.Name, "-g", alice.Name, "-m", "700", filepath.Dir(path))
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		mustRun(t, "chown", alice.Name, path)
	}

	probe := `echo "XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR WAYLAND_DISPLAY=$WAYLAND_DISPLAY SSH_AUTH_SOCK=$SSH_AUTH_SOCK DBUS=$DBUS_SESSION_BUS_ADDRESS"
wayland-info | grep -c "interface: 'wl_compositor'"
for s in bus systemd/private; do
	if socat -u OPEN:/dev/null UNIX-CONNECT:` + runtime + `/$s 2>/dev/null; then echo "$s reachable"; else echo "$s unreachable"; fi
done`
	env := []string{"XDG_RUNTIME_DIR=" + runtime, "WAYLAND_DISPLAY=wayland-1", "SSH_AUTH_SOCK=" + runtime + "/openssh_agent"}
	for _, tc := range []struct {
		name string
		argv []string
		want string
	}{
		{"through the service: the caller's environment as is", []string{front, "exec", st.name, "--", "sh", "-c", probe},
			"XDG_RUNTIME_DIR=" + runtime + " WAYLAND_DISPLAY=wayland-1 SSH_AUTH_SOCK=" + runtime + "/openssh_agent DBUS=disabled:\n1\nbus unreachable\nsystemd/private unreachable\n"},
		{"under sudo: the session given back", []string{"sudo", "-n", wgnsBin, "exec", st.name, "--", "sh", "-c", probe},
			"XDG_RUNTIME_DIR=" + runtime + " WAYLAND_DISPLAY=wayland-1 SSH_AUTH_SOCK= DBUS=disabled:\n1\nbus unreachable\nsystemd/private unreachable\n"},
		{"under sudo, with the ssh agent", []string{"sudo", "-n", wgnsBin, "exec", "--ssh-agent", st.name, "--", "sh", "-c", probe},
			"XDG_RUNTIME_DIR=" + runtime + " WAYLAND_DISPLAY=wayland-1 SSH_AUTH_SOCK=" + runtime + "/openssh_agent DBUS=disabled:\n1\nbus unreachable\nsystemd/private unreachable\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := userCmd(t, alice, tc.argv...)
			cmd.Env = append(cmd.Env, env...)
			o, e, code := runCmd(t, cmd)
			if code != 0 || o != tc.want {
				t.Errorf("exit %d\ngot:\n%s\nwant:\n%s\nstderr: %s", code, o, tc.want, e)
			}
		})
	}
	// Outside, the same sockets answer: the test shows something.
	for _, s := range []string{"bus", "systemd/private"} {
		if _, e, code := runCmd(t, userCmd(t, alice, "socat", "-u", "OPEN:/dev/null", "UNIX-CONNECT:"+runtime+"/"+s)); code != 0 {
			t.Errorf("outside, %s does not answer: %s", s, e)
		}
	}
}

// outsideBrowser is a browser the user runs outside every tunnel, on its default profile.
type outsideBrowser struct {
	stop func()
	out  *syncbuf.Buffer
}

// chromiumTabs returns the URLs of the tabs of the Chromium whose DevTools listen on port.
func chromiumTabs(t *testing.T, port int) []string {
	t.Helper()
	out, err := exec.Command("curl", "-sS", "--max-time", "10", fmt.Sprintf("http://127.0.0.1:%d/json/list", port)).Output()
	if err != nil {
		t.Fatalf("asking Chromium's DevTools for its tabs: %v", err)
	}
	var urls []string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), `"url": "`); ok {
			urls = append(urls, strings.TrimSuffix(strings.TrimSuffix(v, ","), `"`))
		}
	}
	return urls
}

// TestIntegrationDesktopBrowserHandOff: with Chromium and Firefox already running outside the
// tunnel on the user's default profiles, `wgns exec` of each (through the service, and under
// sudo) opens nothing outside: it is refused with a message that names the browser outside and
// the command that runs one of its own in the tunnel; the host's resolver (a decoy) gets no
// query, and the browsers outside get no new tab. The command given runs a browser of its own
// inside, which loads the page behind the tunnel while the one outside runs on. Started through
// a shell, which wgns does not recognise: Firefox cannot reach the one outside (its channel is
// the session bus, which exec disables), and shows that it does not respond; Chromium (the
// control, showing that the checks see a hand-off) hands its page to the one outside, which
// asks the host's resolver.
//
// The browsers outside ask the host's resolver for their own hosts (Google's, Mozilla's) all
// along: that is theirs to do. What counts is the name of the page the tunnel was asked to open.
func TestIntegrationDesktopBrowserHandOff(t *testing.T) {
	keepFile(t, "/etc/resolv.conf")
	replaceFile(t, "/etc/resolv.conf", "nameserver "+decoyAddr+" # the host's resolver: a decoy\n")
	alice := addUser(t, "wgnsalice")
	allowExec(t, alice)
	st := newSvcTunnel(t, "deskh", "[Namespace]\nUsers = wgnsalice\n")
	decoy := startDnsmasq(t, st.p.NS, "the decoy", []string{decoyAddr}, "/#/"+decoyAnswer)
	startService(t)
	front := copyWgns(t)
	d := startXvfb(t, alice)
	url := "http://" + dnsName + "/"
	pageQueries := func() []string {
		var qs []string
		for _, q := range decoy.queries() {
			if strings.Contains(q, dnsName) {
				qs = append(qs, q)
			}
		}
		return qs
	}
	inTunnel := func(sudo bool, argv ...string) *exec.Cmd {
		args := append([]string{front, "exec", st.name, "--"}, argv...)
		if sudo {
			args = append([]string{"sudo", "-n", wgnsBin, "exec", st.name, "--"}, argv...)
		}
		cmd := userCmd(t, alice, args...)
		cmd.Env = append(cmd.Env, "DISPLAY="+d.name)
		return cmd
	}
	outside := func(argv ...string) *exec.Cmd {
		cmd := userCmd(t, alice, argv...)
		cmd.Env = append(cmd.Env, "DISPLAY="+d.name)
		return cmd
	}

	// Chromium outside, on the default profile, its tabs readable through DevTools.
	const devtools = 9333
	_, stopOutside := background(t, outside(append(append([]string{"chromium"}, browserFlags...),
		fmt.Sprintf("--remote-debugging-port=%d", devtools), "--window-position=0,0", "--window-size=620,380", "about:blank")...))
	lock := filepath.Join(alice.Home, ".config", "chromium", "SingletonLock")
	waitFor(t, 90*time.Second, "Chromium outside to hold its profile", func() bool { _, err := os.Lstat(lock); return err == nil })
	var before []string
	waitFor(t, 60*time.Second, "Chromium outside to list its tabs", func() bool {
		out, err := exec.Command("curl", "-sS", "--max-time", "5", fmt.Sprintf("http://127.0.0.1:%d/json/list", devtools)).Output()
		return err == nil && strings.Contains(string(out), "about:blank")
	})
	before = chromiumTabs(t, devtools)
	holder, _ := os.Readlink(lock)
	pid := holder[strings.LastIndexByte(holder, '-')+1:]

	profile := filepath.Join(alice.Home, ".config", "chromium")
	for _, sudo := range []bool{false, true} {
		_, e, code := runCmd(t, inTunnel(sudo, append(append([]string{"chromium"}, browserFlags...), url)...))
		want := fmt.Sprintf(`wgns exec: chromium is already running outside tunnel "deskh" on profile %s (process %s): started here, it would hand this command to that browser and exit, and the pages would load outside the tunnel. Run one of its own in the tunnel, on a profile of its own: wgns exec deskh -- chromium --user-data-dir=%s-deskh`,
			profile, pid, profile)
		if code != 125 || !strings.Contains(e, want) {
			t.Errorf("chromium in the tunnel (sudo %v): exit %d, %q\nwant 125 and %q", sudo, code, e, want)
		}
	}
	// Give a hand-off, had there been one, time to show.
	time.Sleep(3 * time.Second)
	if after := chromiumTabs(t, devtools); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("Chromium outside has tabs %q, had %q", after, before)
	}
	if qs := pageQueries(); len(qs) != 0 {
		t.Errorf("the host's resolver was asked for the page: %q", qs)
	}

	// What the message says to run: a Chromium of its own, inside, beside the one outside.
	_, stopInside := background(t, inTunnel(false, append(append([]string{"chromium"}, browserFlags...),
		"--user-data-dir="+profile+"-deskh", "--window-position=640,0", "--window-size=620,380", url)...))
	d.waitWindow(t, "behind the tunnel - Chromium")
	waitFor(t, 30*time.Second, "the inside Chromium's request", func() bool { return strings.Contains(st.web.String(), clientTunnel4) })
	// A second wgns exec of it hands over to the one inside (allowed: it is in the tunnel), which
	// loads the page again, from inside.
	requests := strings.Count(st.web.String(), clientTunnel4)
	if o, e, code := runCmd(t, inTunnel(false, append(append([]string{"chromium"}, browserFlags...), "--user-data-dir="+profile+"-deskh", url+"?again")...)); code != 0 || !strings.Contains(o+e, "Opening in existing browser session") {
		t.Errorf("a second chromium on the inside profile: exit %d, %s%s", code, o, e)
	}
	waitFor(t, 30*time.Second, "the inside Chromium to load the page again", func() bool {
		return strings.Count(st.web.String(), clientTunnel4) > requests
	})

	// Firefox outside too, on its default profile.
	ffOut, stopFirefoxOut := background(t, outside("firefox-esr", "--width", "620", "--height", "380", "about:blank"))
	waitFor(t, 90*time.Second, "Firefox outside to hold its profile", func() bool {
		m, _ := filepath.Glob(filepath.Join(alice.Home, ".config", "mozilla", "firefox", "*", "lock"))
		return len(m) == 1
	})
	d.waitWindow(t, "Mozilla Firefox")
	m, _ := filepath.Glob(filepath.Join(alice.Home, ".config", "mozilla", "firefox", "*", "lock"))
	ffProfile := filepath.Dir(m[0])
	ffHolder, _ := os.Readlink(m[0])
	ffPID := ffHolder[strings.LastIndex(ffHolder, "+")+1:]
	windowsBefore := d.windows()
	for _, sudo := range []bool{false, true} {
		_, e, code := runCmd(t, inTunnel(sudo, "firefox-esr", url))
		own := filepath.Join(filepath.Dir(ffProfile), "wgns-deskh")
		want := fmt.Sprintf(`wgns exec: firefox-esr is already running outside tunnel "deskh" on profile %s (process %s): started here, it would hand this command to that browser and exit, and the pages would load outside the tunnel. Run one of its own in the tunnel, on a profile of its own: mkdir -p %s && wgns exec deskh -- firefox-esr --no-remote --profile %s`,
			ffProfile, ffPID, own, own)
		if code != 125 || !strings.Contains(e, want) {
			t.Errorf("firefox-esr in the tunnel (sudo %v): exit %d, %q\nwant 125 and %q", sudo, code, e, want)
		}
	}
	time.Sleep(3 * time.Second)
	if after := d.windows(); after != windowsBefore {
		t.Errorf("the windows changed:\nbefore:\n%s\nafter:\n%s", windowsBefore, after)
	}
	if qs := pageQueries(); len(qs) != 0 {
		t.Errorf("the host's resolver was asked for the page: %q", qs)
	}
	// Without the refusal (through a shell, which wgns does not recognise), Firefox could hand
	// its page over only through the session bus, which exec disables: it waits, then says the
	// Firefox outside does not respond, and nothing opens outside.
	_, stopHung := background(t, inTunnel(false, "sh", "-c", "exec firefox-esr "+url))
	d.waitWindow(t, "Close Firefox")
	if qs := pageQueries(); len(qs) != 0 || strings.Contains(d.windows(), "Problem loading page") {
		t.Errorf("Firefox started through a shell handed its page over: %q\n%s", qs, d.windows())
	}
	stopHung()

	// Firefox of its own, inside.
	own := firefoxProfile(t, alice, filepath.Join(filepath.Dir(ffProfile), "wgns-deskh"))
	webBefore := strings.Count(st.web.String(), clientTunnel4)
	_, stopFirefoxIn := background(t, inTunnel(false, "firefox-esr", "--no-remote", "--profile", own, "--width", "620", "--height", "380", url))
	waitFor(t, 90*time.Second, "Firefox of its own to show the page", func() bool { return strings.Contains(d.windows(), "behind the tunnel — Mozilla Firefox") })
	if strings.Count(st.web.String(), clientTunnel4) <= webBefore {
		t.Errorf("Firefox in the tunnel did not fetch the page from inside:\n%s", st.web)
	}
	// The picture: inside the tunnel above (Firefox left, Chromium right), the browsers outside
	// below, still on about:blank.
	for _, w := range []struct{ name, x, y string }{
		{"^behind the tunnel — Mozilla Firefox$", "0", "0"}, {"^behind the tunnel - Chromium$", "640", "0"},
		{"^about:blank - Chromium$", "640", "410"}, {"^Mozilla Firefox$", "0", "410"},
	} {
		move := exec.Command("xdotool", "search", "--onlyvisible", "--name", w.name, "windowmove", w.x, w.y)
		move.Env = append(os.Environ(), "DISPLAY="+d.name)
		move.Run()
	}
	time.Sleep(time.Second)
	d.screenshot(t, "handoff-inside-above-outside-below")
	if qs := pageQueries(); len(qs) != 0 {
		t.Errorf("the host's resolver was asked for the page: %q", qs)
	}
	stopFirefoxIn()
	stopFirefoxOut()
	stopInside()
	_ = ffOut

	// The control: started through a shell, Chromium is not recognised, and hands the page to
	// the Chromium outside, which asks the host's resolver.
	runCmd(t, inTunnel(false, "sh", "-c", "chromium "+strings.Join(browserFlags, " ")+" "+url))
	decoy.waitQuery(t, "query[A] "+dnsName+" from "+hostUnderlay4)
	if after := chromiumTabs(t, devtools); len(after) != len(before)+1 {
		t.Errorf("the control: Chromium outside has tabs %q (had %q): the hand-off did not show", after, before)
	}
	stopOutside()
}
