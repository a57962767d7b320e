// Package handoff keeps a program started in a tunnel from handing its work to a process of the
// same user outside the tunnel, where that work would use the host's network.
//
// A program in a tunnel shares the desktop with the rest of the session: the X server, the
// files and path sockets under /tmp, $XDG_RUNTIME_DIR and the home directory are the same inside
// and out (path sockets are not scoped by the network namespace). Programs that keep one
// instance per user or per profile use exactly those to find a running instance and pass it
// their command line, then exit: the page then opens in the instance outside, and its traffic
// and DNS go out on the host's network. What wgns does about each way out:
//
//   - Chromium and its family find the running browser of a profile through the profile's
//     SingletonLock and SingletonSocket (a socket under /tmp) and send it their command line.
//     Nothing short of a private /tmp closes that channel, and closing it is worse than the
//     hand-off: measured with Debian's Chromium 156, a Chromium that cannot reach the singleton
//     socket of a live instance starts a second browser on the same profile (Chromium's own
//     code kills the first after a timeout). Firefox (153 ESR, on X11 as on Wayland) asks the
//     session bus for the Firefox of its profile; exec disables the bus (below), and Firefox
//     then waits and shows "Firefox is already running, but is not responding" (it no longer
//     reads MOZ_NO_REMOTE). So Check refuses to start a browser whose profile is in use by a
//     browser outside the tunnel, naming that process and saying how to run one of its own (a
//     profile of its own per tunnel); a browser on a profile of its own, or on one whose
//     browser runs in the same tunnel, starts normally.
//   - The session bus activates services outside the tunnel on request (portals opening URLs,
//     the user's systemd manager starting units, notification and keyring daemons). exec sets
//     DBUS_SESSION_BUS_ADDRESS=disabled: (package identity), which every D-Bus library honours,
//     and HideSessionBus covers the bus socket and the user manager's private socket in the
//     program's mount namespace, for programs that look for them by path.
//
// Check recognises a browser by the name of the file it runs (and through Debian's
// x-www-browser alternatives): a browser started through a script or a shell of the user's own
// is not recognised.
//
// It is part of `wgns exec` and must stay small: no initialisation at start-up.
package handoff

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/envlist"
)

// family is a kind of browser, by its single-instance mechanism.
type family int

const (
	chromium family = iota + 1
	firefox
)

// browser is a program Check recognises.
type browser struct {
	name   string // the command's name, for messages
	family family
	config string // Chromium family: its directory under the user's config directory
}

// identify returns the browser that the program at path is, by its file name, or for Debian's
// alternatives for "the browser" (x-www-browser and the like, symbolic links) by the name of the
// file they lead to; false for any other program. Other programs cost no system call.
func identify(path string) (browser, bool) {
	base := filepath.Base(path)
	if b, ok := byName(base); ok {
		return b, true
	}
	switch base {
	case "x-www-browser", "gnome-www-browser", "www-browser":
	default:
		return browser{}, false
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil || real == path {
		return browser{}, false
	}
	return byName(filepath.Base(real))
}

// byName returns the browser a command name belongs to.
func byName(name string) (browser, bool) {
	b := browser{name: name, family: chromium}
	switch name {
	case "chromium", "chromium-browser":
		b.config = "chromium"
	case "google-chrome", "google-chrome-stable", "chrome":
		b.config = "google-chrome"
	case "google-chrome-beta", "google-chrome-unstable":
		b.config = name
	case "brave-browser", "brave-browser-stable", "brave":
		b.config = "BraveSoftware/Brave-Browser"
	case "microsoft-edge", "microsoft-edge-stable", "msedge":
		b.config = "microsoft-edge"
	case "microsoft-edge-beta", "microsoft-edge-dev":
		b.config = name
	case "vivaldi", "vivaldi-stable", "vivaldi-bin":
		b.config = "vivaldi"
	case "firefox", "firefox-esr", "firefox-bin":
		b.family = firefox
	default:
		return browser{}, false
	}
	return b, true
}

// browserExe reports whether exe, the file a process runs, is a browser of family f: a lock
// whose process runs something else is stale (its PID was reused), as the browsers themselves
// decide.
func browserExe(exe string, f family) bool {
	switch filepath.Base(exe) {
	case "chromium", "chromium-browser", "chrome", "brave", "msedge", "vivaldi-bin":
		return f == chromium
	case "firefox", "firefox-esr", "firefox-bin":
		return f == firefox
	}
	return false
}

// system is what Check learns about processes; the real one reads /proc.
type system interface {
	// hostname is this machine's host name, as the browsers write it in their locks.
	hostname() string
	// alive reports whether a process pid exists.
	alive(pid int) bool
	// exe returns the file process pid runs.
	exe(pid int) (string, error)
	// inside reports whether process pid is in the calling thread's network namespace.
	inside(pid int) (bool, error)
}

// Check returns an error when the program at path, with argv and env, is a browser whose
// profile is in use by a browser running outside the tunnel name: started, it would hand its
// command line to that browser and exit, and its pages would load outside. It returns nil for
// any other program, and for a browser that would run on its own or hand over to one in the
// same tunnel.
//
// It must run as the user the program runs as (it reads that user's profiles, with that user's
// rights), on a thread in the tunnel's network namespace and in the program's working directory
// (nsmgr's ExecOptions.Check is such a place).
func Check(name, path string, argv, env []string) error {
	b, ok := identify(path)
	if !ok {
		return nil
	}
	return check(procSystem{}, name, b, argv, env)
}

func check(sys system, name string, b browser, argv, env []string) error {
	var used []profileUse
	switch b.family {
	case chromium:
		used = chromiumInUse(sys, b, argv, env)
	case firefox:
		used = firefoxInUse(sys, argv, env)
	}
	for _, u := range used {
		in, err := sys.inside(u.pid)
		if err == nil && in {
			continue // the browser it would hand over to runs in this tunnel
		}
		where := fmt.Sprintf("outside tunnel %q", name)
		if err != nil {
			where = fmt.Sprintf("where wgns cannot tell whether it is inside tunnel %q (%v)", name, err)
		}
		return fmt.Errorf("%s is already running %s on profile %s (process %d): started here, it would hand this command to that browser and exit, and the pages would load outside the tunnel. Run one of its own in the tunnel, on a profile of its own: %s",
			b.name, where, u.profile, u.pid, ownProfile(name, b, u.profile))
	}
	return nil
}

// profileUse is a profile in use: its directory and the process of the browser that holds it.
type profileUse struct {
	profile string
	pid     int
}

// holder returns the process that holds a browser lock naming host and pid, if it is a live
// browser of family f on this machine.
func holder(sys system, f family, host string, pid int) (int, bool) {
	if pid <= 0 || (host != "" && host != sys.hostname()) || !sys.alive(pid) {
		return 0, false // stale, or another machine's (the browser itself says so)
	}
	if exe, err := sys.exe(pid); err == nil && !browserExe(exe, f) {
		return 0, false // the PID is another program's now
	}
	return pid, true
}

// ownProfile is the command line that runs b in tunnel name on a profile of its own, next to
// the profile in use.
func ownProfile(name string, b browser, inUse string) string {
	dir := filepath.Dir(inUse)
	if b.family == chromium {
		return fmt.Sprintf("wgns exec %s -- %s --user-data-dir=%s", name, b.name, filepath.Join(dir, filepath.Base(inUse)+"-"+name))
	}
	own := filepath.Join(dir, "wgns-"+name)
	return fmt.Sprintf("mkdir -p %s && wgns exec %s -- %s --no-remote --profile %s", own, name, b.name, own)
}

// configHome is the user's configuration directory: XDG_CONFIG_HOME when absolute, else
// HOME/.config ("" without a HOME).
func configHome(env []string) string {
	if d := envlist.Value(env, "XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return d
	}
	if h := envlist.Value(env, "HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".config")
	}
	return ""
}

// absolute makes p absolute against the working directory.
func absolute(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// procSystem is the system, through /proc.
type procSystem struct{}

func (procSystem) hostname() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Nodename[:])
}

func (procSystem) alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

func (procSystem) exe(pid int) (string, error) {
	return os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
}

func (procSystem) inside(pid int) (bool, error) {
	var ours, theirs unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &ours); err != nil {
		return false, err
	}
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &theirs); err != nil {
		var errno unix.Errno
		if errors.As(err, &errno) {
			return false, fmt.Errorf("its network namespace: %w", errno)
		}
		return false, err
	}
	return ours.Dev == theirs.Dev && ours.Ino == theirs.Ino, nil
}
