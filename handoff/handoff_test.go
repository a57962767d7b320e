package handoff

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeSystem: processes by PID, each with what it runs and whether it is inside the tunnel.
type fakeSystem struct {
	host  string
	procs map[int]fakeProc
}

type fakeProc struct {
	exe    string
	inside bool
	hidden bool // its namespace cannot be read
}

func (f fakeSystem) hostname() string { return f.host }
func (f fakeSystem) alive(pid int) bool {
	_, ok := f.procs[pid]
	return ok
}
func (f fakeSystem) exe(pid int) (string, error) {
	if p := f.procs[pid]; p.exe != "" {
		return p.exe, nil
	}
	return "", unix.EACCES
}
func (f fakeSystem) inside(pid int) (bool, error) {
	if f.procs[pid].hidden {
		return false, errors.New("its network namespace: permission denied")
	}
	return f.procs[pid].inside, nil
}

// world is a user's home with browser profiles, some held by processes.
type world struct {
	t    *testing.T
	home string
}

func newWorld(t *testing.T) *world { return &world{t: t, home: t.TempDir()} }

// lock makes the lock symlink name -> target in the directory rel of the home.
func (w *world) lock(rel, name, target string) string {
	w.t.Helper()
	dir := filepath.Join(w.home, rel)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
		w.t.Fatal(err)
	}
	return dir
}

func (w *world) write(rel, data string) {
	w.t.Helper()
	p := filepath.Join(w.home, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) env(extra ...string) []string { return append([]string{"HOME=" + w.home}, extra...) }

const host = "desk"

var sys = fakeSystem{host: host, procs: map[int]fakeProc{
	100: {exe: "/usr/lib/chromium/chromium"},                     // outside
	101: {exe: "/usr/lib/chromium/chromium", inside: true},       // inside this tunnel
	102: {exe: "/usr/bin/bash"},                                  // a reused PID
	103: {},                                                      // its exe cannot be read
	104: {exe: "/usr/lib/chromium/chromium", hidden: true},       // its namespace cannot be read
	200: {exe: "/usr/lib/firefox-esr/firefox-esr"},               // outside
	201: {exe: "/usr/lib/firefox-esr/firefox-esr", inside: true}, // inside
}}

func TestCheckChromium(t *testing.T) {
	w := newWorld(t)
	def := w.lock(".config/chromium", "SingletonLock", host+"-100")
	own := w.lock("profiles/own", "SingletonLock", host+"-101")
	elsewhere := w.lock("profiles/nfs", "SingletonLock", "otherhost-100")
	stale := w.lock("profiles/stale", "SingletonLock", host+"-999")
	reused := w.lock("profiles/reused", "SingletonLock", host+"-102")
	unreadable := w.lock("profiles/unreadable", "SingletonLock", host+"-103")
	hidden := w.lock("profiles/hidden", "SingletonLock", host+"-104")
	chrome := w.lock("xdg/google-chrome", "SingletonLock", host+"-100")
	brave := w.lock("cch/BraveSoftware/Brave-Browser", "SingletonLock", host+"-100")
	chromium, _ := byName("chromium")
	tests := []struct {
		name string
		b    string
		argv []string
		env  []string
		want string // "" for no refusal, else a part of the message
	}{
		{"default profile held outside", "chromium", []string{"chromium", "http://x/"}, nil,
			`chromium is already running outside tunnel "work" on profile ` + def + ` (process 100): started here, it would hand this command to that browser and exit, and the pages would load outside the tunnel. Run one of its own in the tunnel, on a profile of its own: wgns exec work -- chromium --user-data-dir=` + def + `-work`},
		{"incognito hands over too", "chromium", []string{"chromium", "--incognito", "http://x/"}, nil, "process 100"},
		{"a profile of its own, unused", "chromium", []string{"chromium", "--user-data-dir=" + w.home + "/profiles/new"}, nil, ""},
		{"the last --user-data-dir counts", "chromium", []string{"chromium", "--user-data-dir=" + own, "--user-data-dir=" + def}, nil, "process 100"},
		{"held inside the tunnel", "chromium", []string{"chromium", "--user-data-dir=" + own}, nil, ""},
		{"a relative profile", "chromium", []string{"chromium", "--user-data-dir=profiles/own"}, nil, ""},
		{"held by another machine", "chromium", []string{"chromium", "--user-data-dir=" + elsewhere}, nil, ""},
		{"stale", "chromium", []string{"chromium", "--user-data-dir=" + stale}, nil, ""},
		{"PID reused by another program", "chromium", []string{"chromium", "--user-data-dir=" + reused}, nil, ""},
		{"its program cannot be read", "chromium", []string{"chromium", "--user-data-dir=" + unreadable}, nil, "process 103"},
		{"its namespace cannot be read", "chromium", []string{"chromium", "--user-data-dir=" + hidden}, nil,
			`where wgns cannot tell whether it is inside tunnel "work" (its network namespace: permission denied)`},
		{"Debian's --temp-profile", "chromium", []string{"chromium", "--temp-profile"}, nil, ""},
		{"a URL after --", "chromium", []string{"chromium", "--", "--user-data-dir=" + own}, nil, "process 100"},
		{"XDG_CONFIG_HOME", "google-chrome", []string{"google-chrome"}, []string{"XDG_CONFIG_HOME=" + w.home + "/xdg"},
			"google-chrome is already running outside tunnel \"work\" on profile " + chrome},
		{"CHROME_CONFIG_HOME first", "brave-browser", []string{"brave-browser"}, []string{"XDG_CONFIG_HOME=" + w.home + "/xdg", "CHROME_CONFIG_HOME=" + w.home + "/cch"},
			"on profile " + brave},
		{"nothing held", "vivaldi", []string{"vivaldi"}, nil, ""},
	}
	t.Chdir(w.home)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := byName(tt.b)
			if !ok {
				t.Fatalf("%s is not a browser", tt.b)
			}
			err := check(sys, "work", b, tt.argv, w.env(tt.env...))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
	// Without a HOME there is no default profile to look at.
	if err := check(sys, "work", chromium, []string{"chromium"}, nil); err != nil {
		t.Errorf("without HOME: %v", err)
	}
}

func TestCheckFirefox(t *testing.T) {
	w := newWorld(t)
	def := w.lock(".config/mozilla/firefox/abcd.default-esr", "lock", "127.0.0.1:+200")
	inside := w.lock(".config/mozilla/firefox/efgh.inside", "lock", "127.0.0.1:+201")
	legacy := w.lock(".mozilla/firefox/old.default", "lock", "127.0.0.1:+200")
	w.lock(".config/mozilla/firefox/stale.x", "lock", "127.0.0.1:+999")
	w.write(".config/mozilla/firefox/profiles.ini", "[General]\nStartWithLastProfile=1\n\n[Profile0]\nName=default-esr\nIsRelative=1\nPath=abcd.default-esr\n\n[Profile1]\nName=inside\nIsRelative=1\nPath=efgh.inside\n\n[Profile2]\nName=abs\nIsRelative=0\nPath="+w.home+"/abs\n")
	abs := w.lock("abs", "lock", "127.0.0.1:+200")
	firefox, _ := byName("firefox-esr")
	tests := []struct {
		name string
		argv []string
		env  []string
		want string
	}{
		{"no profile: any Firefox outside takes the URL", []string{"firefox-esr", "http://x/"}, nil,
			`firefox-esr is already running outside tunnel "work" on profile ` + def + ` (process 200): started here, it would hand this command to that browser and exit, and the pages would load outside the tunnel. Run one of its own in the tunnel, on a profile of its own: mkdir -p ` + filepath.Dir(def) + `/wgns-work && wgns exec work -- firefox-esr --no-remote --profile ` + filepath.Dir(def) + `/wgns-work`},
		{"--profile in use inside", []string{"firefox-esr", "--profile", inside}, nil, ""},
		{"-profile=", []string{"firefox-esr", "-profile=" + inside}, nil, ""},
		{"--profile of its own", []string{"firefox-esr", "--no-remote", "--profile", w.home + "/new"}, nil, ""},
		{"--profile in use outside", []string{"firefox-esr", "--profile", def}, nil, "on profile " + def + " (process 200)"},
		{"-P by name, inside", []string{"firefox-esr", "-P", "inside"}, nil, ""},
		{"-P by name, outside", []string{"firefox-esr", "-P", "default-esr", "http://x/"}, nil, "on profile " + def},
		{"--P= with an absolute path", []string{"firefox-esr", "--P=abs"}, nil, "on profile " + abs},
		{"-P of a profile no profiles.ini lists", []string{"firefox-esr", "-P", "nosuch"}, nil, ""},
		{"the legacy directory too", []string{"firefox-esr", "--profile", legacy}, nil, "on profile " + legacy},
		{"XDG_CONFIG_HOME elsewhere: only the legacy one", []string{"firefox"}, []string{"XDG_CONFIG_HOME=" + w.home + "/empty"}, "on profile " + legacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(sys, "work", firefox, tt.argv, w.env(tt.env...))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

func TestIdentify(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "lib", "firefox-esr")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	alt := filepath.Join(dir, "x-www-browser")
	if err := os.Symlink(real, alt); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want string // the name, "" for no browser
	}{
		{"/usr/bin/chromium", "chromium"},
		{"/opt/google/chrome/chrome", "chrome"},
		{"/usr/bin/firefox", "firefox"},
		{alt, "firefox-esr"},
		{"/usr/bin/curl", ""},
		{"/usr/bin/chromium-wrapper", ""},
	} {
		b, ok := identify(tt.path)
		if ok != (tt.want != "") || b.name != tt.want {
			t.Errorf("identify(%s) = %+v, %v; want %q", tt.path, b, ok, tt.want)
		}
	}
}

// The real system: this process is alive and inside its own namespace; a PID that does not
// exist is not alive.
func TestProcSystem(t *testing.T) {
	var p procSystem
	if !p.alive(os.Getpid()) || p.alive(1<<22+1) {
		t.Error("alive is wrong")
	}
	if in, err := p.inside(os.Getpid()); err != nil || !in {
		t.Errorf("inside(self) = %v, %v", in, err)
	}
	if exe, err := p.exe(os.Getpid()); err != nil || !filepath.IsAbs(exe) {
		t.Errorf("exe(self) = %q, %v", exe, err)
	}
	if p.hostname() == "" {
		t.Error("no host name")
	}
}

// HideSessionBus does nothing for a user without a runtime directory.
func TestHideSessionBusWithoutRuntimeDir(t *testing.T) {
	if err := HideSessionBus(1<<31 - 7); err != nil {
		t.Error(err)
	}
}
