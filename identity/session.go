package identity

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/envlist"
)

// runtimeRoot holds the users' runtime directories (/run/user/UID); tests use a directory of
// their own.
var runtimeRoot = "/run/user"

// RuntimeDir returns uid's runtime directory, /run/user/UID, as systemd-logind makes it.
func RuntimeDir(uid uint32) string {
	return runtimeRoot + "/" + strconv.FormatUint(uint64(uid), 10)
}

// sshAgentSockets are where a user's ssh agent listens in the runtime directory when
// SSH_AUTH_SOCK does not say: OpenSSH's ssh-agent.service on Debian, gcr's and GNOME Keyring's
// agents, and gpg-agent's ssh support.
var sshAgentSockets = [...]string{"openssh_agent", "ssh-agent.socket", "gcr/ssh", "keyring/ssh", "gnupg/S.gpg-agent.ssh"}

// ErrNoSSHAgent is wrapped by the error of SessionEnv when an ssh agent is asked for and the
// user has none that wgns can find.
var ErrNoSSHAgent = errors.New("no ssh agent")

// SessionEnv is Env, with what sudo strips from the user's own desktop session put back, only
// where it belongs to t (the user the command runs as, not root):
//
//   - XDG_RUNTIME_DIR is /run/user/UID when that is a directory of t's, which no one else may
//     enter (mode 0700 or stricter): PulseAudio and PipeWire clients find their sockets there;
//     otherwise it is unset;
//   - WAYLAND_DISPLAY is the caller's when it names a socket of t's (in that directory, or by
//     an absolute path), else the first of wayland-0 ... wayland-9 there that is a socket of t's,
//     else unset.
//
// With sshAgent, SSH_AUTH_SOCK is the caller's when it is a socket of t's, else the first socket
// of t's in the runtime directory among sshAgentSockets; without, it is unset (Env removes it):
// the agent signs for whoever reaches it, and a program in a tunnel gets it only if asked. For
// root staying root, only the agent is looked at: the rest of root's environment is its own.
func (t *Target) SessionEnv(environ []string, sshAgent bool) ([]string, error) {
	env := t.Env(environ)
	dir := RuntimeDir(t.UID)
	dirOK := ownDir(dir, t.UID)
	if !t.Root {
		env = unset(env, "XDG_RUNTIME_DIR")
		env = unset(env, "WAYLAND_DISPLAY")
		if dirOK {
			env = append(env, "XDG_RUNTIME_DIR="+dir)
		}
		if w := t.wayland(envlist.Value(environ, "WAYLAND_DISPLAY"), dir, dirOK); w != "" {
			env = append(env, "WAYLAND_DISPLAY="+w)
		}
	}
	if !sshAgent {
		return env, nil
	}
	if s := envlist.Value(environ, "SSH_AUTH_SOCK"); s != "" && ownSocket(s, t.UID) {
		return append(env, "SSH_AUTH_SOCK="+s), nil
	}
	if dirOK {
		for _, name := range sshAgentSockets {
			if p := dir + "/" + name; ownSocket(p, t.UID) {
				return append(env, "SSH_AUTH_SOCK="+p), nil
			}
		}
	}
	return nil, fmt.Errorf("%w of user %q: SSH_AUTH_SOCK does not name a socket of that user (sudo removes it: keep it with sudo --preserve-env=SSH_AUTH_SOCK), and there is none in %s (%s)",
		ErrNoSSHAgent, t.Name, dir, strings.Join(sshAgentSockets[:], ", "))
}

// wayland returns the WAYLAND_DISPLAY of t: given, the caller's, when it names a socket of t's,
// else the first wayland-N socket of t's in the runtime directory dir (if dirOK), else "".
func (t *Target) wayland(given, dir string, dirOK bool) string {
	if given != "" {
		path := given
		if !strings.HasPrefix(given, "/") {
			if !dirOK || strings.Contains(given, "/") {
				path = ""
			} else {
				path = dir + "/" + given
			}
		}
		if path != "" && ownSocket(path, t.UID) {
			return given
		}
	}
	if !dirOK {
		return ""
	}
	for n := 0; n <= 9; n++ {
		name := "wayland-" + strconv.Itoa(n)
		if ownSocket(dir+"/"+name, t.UID) {
			return name
		}
	}
	return ""
}

// ownDir reports whether path is a directory (not a symbolic link) owned by uid that group and
// others cannot enter.
func ownDir(path string, uid uint32) bool {
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Uid == uid && st.Mode&0o077 == 0
}

// ownSocket reports whether path is a socket (not a symbolic link to one) owned by uid.
func ownSocket(path string, uid uint32) bool {
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK && st.Uid == uid
}

// unset removes every key=... from env.
func unset(env []string, key string) []string {
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
