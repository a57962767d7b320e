package identity

import (
	"strconv"
	"strings"
)

// RootPath is the PATH of a command run as root (Debian's for root, sudo's secure_path).
const RootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// UserPath is the system part of the PATH of a command run as a user other than root (Debian's
// login.defs ENV_PATH); Target.Path puts the user's own directories before it.
const UserPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"

// Path returns the PATH of a command run as t. For root it is RootPath. For anyone else it is
// what a login shell of t gets on Debian: UserPath, after HOME/.local/bin and HOME/bin (which
// Debian's ~/.profile adds when they exist; they are listed whether or not they exist yet, so
// that no file of t's home is looked at before wgns runs as t). sudo replaces the caller's PATH
// with its secure_path, so the caller's own PATH is not known; this is the one a login of the
// user would have. It is safe to take from the user's home: the command is looked up as t, so a
// PATH t chose gives t nothing t could not run anyway.
func (t *Target) Path() string {
	if t.Root {
		return RootPath
	}
	if len(t.Home) < 2 || t.Home[0] != '/' {
		return UserPath // no home, or "/": nothing of the user's own
	}
	home := strings.TrimSuffix(t.Home, "/")
	return home + "/.local/bin:" + home + "/bin:" + UserPath
}

// NoSessionBus is the DBUS_SESSION_BUS_ADDRESS of every command: an address of no transport, on
// which every D-Bus library fails to connect. Leaving the variable unset would not do: libdbus,
// GLib, sd-bus and godbus then look for the bus at $XDG_RUNTIME_DIR/bus (or autolaunch one
// through X11), a path socket that reaches the user's session bus outside the namespace, where
// services (portals, browsers' and terminals' single-instance handlers, notification daemons)
// act on the host's network on the command's behalf.
const NoSessionBus = "disabled:"

// dropped reports whether the variable k is removed from the caller's environment, besides
// SUDO_* and the ones Env sets: those that change how the dynamic loader or libc of the command
// behave (glibc ignores them in setuid programs), including the resolver's (LOCALDOMAIN,
// RES_OPTIONS, HOSTALIASES would override the namespace's resolv.conf), and MAIL (the caller's
// mailbox). (A switch, not a map: no initialisation at every start of wgns.)
func dropped(k string) bool {
	switch k {
	case "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_TRACE", "NIS_PATH",
		"NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "MAIL":
		return true
	}
	return false
}

// Env returns the environment of a command run as t, built from the caller's environ:
//
//   - HOME, SHELL, USER and LOGNAME come from passwd, PATH is t.Path(), and
//     DBUS_SESSION_BUS_ADDRESS is NoSessionBus;
//   - SUDO_*, LD_* and the other variables that change the loader, libc or the resolver are
//     removed, and so is MAIL;
//   - XDG_RUNTIME_DIR is kept only if it is /run/user/UID of t (Wayland, PipeWire and
//     PulseAudio find their sockets there; the session bus there is out of reach, see
//     NoSessionBus);
//   - SSH_AUTH_SOCK is removed: the agent signs for any program that reaches it, and
//     SessionEnv gives it back only when asked;
//   - everything else (TERM, LANG, LC_*, DISPLAY, WAYLAND_DISPLAY, XAUTHORITY, NOTIFY_SOCKET,
//     ...) is kept, in its order; of a variable set twice the last is kept, and entries that
//     are not KEY=VALUE are removed.
//
// The result is what the command gets, not a sandbox: a program can still connect to any path
// socket it can reach (X11's /tmp/.X11-unix, the system bus), and such sockets are not scoped by
// the network namespace.
func (t *Target) Env(environ []string) []string {
	set := []string{
		"HOME=" + t.Home,
		"SHELL=" + t.Shell,
		"USER=" + t.Name,
		"LOGNAME=" + t.Name,
		"PATH=" + t.Path(),
		"DBUS_SESSION_BUS_ADDRESS=" + NoSessionBus,
	}
	ours := make(map[string]bool, len(set))
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		ours[k] = true
	}
	runtimeDir := "/run/user/" + strconv.FormatUint(uint64(t.UID), 10)

	keep := func(k, v string) bool {
		switch {
		case ours[k], dropped(k), k == "SSH_AUTH_SOCK", strings.HasPrefix(k, "SUDO_"), strings.HasPrefix(k, "LD_"):
			return false
		case k == "XDG_RUNTIME_DIR":
			return v == runtimeDir
		}
		return true
	}
	// The index of the last occurrence of each kept key.
	last := make(map[string]int, len(environ))
	for i, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" && keep(k, v) {
			last[k] = i
		}
	}
	env := make([]string, 0, len(last)+len(set))
	for i, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if j, ok := last[k]; ok && j == i {
			env = append(env, kv)
		}
	}
	return append(env, set...)
}
