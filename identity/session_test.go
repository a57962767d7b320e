package identity

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgns/wgns/internal/envlist"
)

// runtimeWorld makes a runtime root with one user's runtime directory, owned by this process's
// user (the user the tests' targets are), and returns that directory.
func runtimeWorld(t *testing.T, mode os.FileMode) (dir string, me *Target) {
	t.Helper()
	old := runtimeRoot
	runtimeRoot = t.TempDir()
	t.Cleanup(func() { runtimeRoot = old })
	uid := uint32(os.Getuid())
	me = &Target{UID: uid, GID: uint32(os.Getgid()), Name: "me", Home: "/home/me", Shell: "/bin/sh"}
	dir = filepath.Join(runtimeRoot, strconv.FormatUint(uint64(uid), 10))
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir, me
}

// listen makes a socket at path (its directory made too), closed when the test ends.
func listen(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

// session returns the variables SessionEnv sets or keeps among those it decides on.
func session(env []string) map[string]string {
	m := map[string]string{}
	for _, k := range []string{"XDG_RUNTIME_DIR", "WAYLAND_DISPLAY", "SSH_AUTH_SOCK"} {
		if v := envlist.Value(env, k); v != "" {
			m[k] = v
		}
	}
	return m
}

func TestSessionEnv(t *testing.T) {
	dir, me := runtimeWorld(t, 0o700)
	listen(t, filepath.Join(dir, "wayland-1"))
	listen(t, filepath.Join(dir, "wayland-0.lock-not-a-socket"))
	listen(t, filepath.Join(dir, "openssh_agent"))
	elsewhere := filepath.Join(t.TempDir(), "agent.sock")
	listen(t, elsewhere)
	if err := os.WriteFile(filepath.Join(dir, "wayland-0"), nil, 0o600); err != nil { // a file, not a socket
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "wayland-1"), filepath.Join(dir, "wayland-2")); err != nil {
		t.Fatal(err)
	}
	other := *me
	other.UID++ // another user: nothing here is theirs

	tests := []struct {
		name    string
		t       *Target
		environ []string
		ssh     bool
		want    map[string]string
	}{
		{"under sudo: what sudo stripped comes back", me, []string{"SUDO_UID=1000"}, false,
			map[string]string{"XDG_RUNTIME_DIR": dir, "WAYLAND_DISPLAY": "wayland-1"}},
		{"the caller's display, when it is the user's socket", me, []string{"WAYLAND_DISPLAY=wayland-1"}, false,
			map[string]string{"XDG_RUNTIME_DIR": dir, "WAYLAND_DISPLAY": "wayland-1"}},
		{"an absolute display", me, []string{"WAYLAND_DISPLAY=" + filepath.Join(dir, "wayland-1")}, false,
			map[string]string{"XDG_RUNTIME_DIR": dir, "WAYLAND_DISPLAY": filepath.Join(dir, "wayland-1")}},
		{"a display that is not a socket: the user's own instead", me, []string{"WAYLAND_DISPLAY=wayland-0"}, false,
			map[string]string{"XDG_RUNTIME_DIR": dir, "WAYLAND_DISPLAY": "wayland-1"}},
		{"a display through a symbolic link: not taken", me, []string{"WAYLAND_DISPLAY=wayland-2"}, false,
			map[string]string{"XDG_RUNTIME_DIR": dir, "WAYLAND_DISPLAY": "wayland-1"}},
		{"a display of a path with a slash", me, []string{"WAYLAND_DISPLAY=../x/wayland-1"}, false,
			map[string]string{"XDG_RUNTIME_DIR": dir, "WAYLAND_DISPLAY": "wayland-1"}},
		{"someone else's runtime directory is not given", me, []string{"XDG_RUNTIME_DIR=/run/user/0"}, false,
			map[string]string{"XDG_RUNTIME_DIR": dir, "WAYLAND_DISPLAY": "wayland-1"}},
		{"another user: nothing of this session", &other, []string{"XDG_RUNTIME_DIR=" + dir, "WAYLAND_DISPLAY=wayland-1", "SSH_AUTH_SOCK=" + elsewhere}, false,
			map[string]string{}},
		{"no agent unless asked", me, []string{"SSH_AUTH_SOCK=" + elsewhere}, false,
			map[string]string{"XDG_RUNTIME_DIR": dir, "WAYLAND_DISPLAY": "wayland-1"}},
		{"the caller's agent when asked", me, []string{"SSH_AUTH_SOCK=" + elsewhere}, true,
			map[string]string{"XDG_RUNTIME_DIR": dir, "WAYLAND_DISPLAY": "wayland-1", "SSH_AUTH_SOCK": elsewhere}},
		{"the agent in the runtime directory, when sudo removed the variable", me, nil, true,
			map[string]string{"XDG_RUNTIME_DIR": dir, "WAYLAND_DISPLAY": "wayland-1", "SSH_AUTH_SOCK": filepath.Join(dir, "openssh_agent")}},
		{"root keeps its own", &Target{UID: me.UID, Name: "root", Home: "/root", Root: true}, []string{"XDG_RUNTIME_DIR=/elsewhere", "WAYLAND_DISPLAY=wayland-9"}, false,
			map[string]string{"WAYLAND_DISPLAY": "wayland-9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := tt.t.SessionEnv(tt.environ, tt.ssh)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, session(env)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			// Each variable once, and the rest of Env as it was.
			seen := map[string]bool{}
			for _, kv := range env {
				if seen[kv] {
					t.Errorf("%s twice", kv)
				}
				seen[kv] = true
			}
		})
	}

	// Asked for an agent another user's program cannot have: refused, saying where it looked.
	_, err := other.SessionEnv([]string{"SSH_AUTH_SOCK=" + elsewhere}, true)
	if !errors.Is(err, ErrNoSSHAgent) {
		t.Errorf("an agent for another user: %v, want ErrNoSSHAgent", err)
	}
}

// A runtime directory that others may enter is not the user's private one: not given.
func TestSessionEnvOpenRuntimeDir(t *testing.T) {
	dir, me := runtimeWorld(t, 0o755)
	listen(t, filepath.Join(dir, "wayland-0"))
	env, err := me.SessionEnv(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := session(env); len(got) != 0 {
		t.Errorf("from a runtime directory of mode 0755: %v", got)
	}
}
