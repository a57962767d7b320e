package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// execIdentity is who a program runs as, and the environment identity gives it.
type execIdentity struct {
	Net              string            // the network namespace, as readlink /proc/self/ns/net shows it
	Uid, Gid, Groups string            // as /proc/self/status shows them
	Env              map[string]string // variables that must have these values
}

// identityScript prints the program's credentials and environment.
const identityScript = `echo Net: $(readlink /proc/self/ns/net); grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo @@; env`

// identityEnv is the caller's environment in every identity case, beyond SUDO_*: variables
// identity drops (loader, resolver, session bus) and one it keeps.
var identityEnv = []string{"LD_LIBRARY_PATH=/nonexistent-wgns", "LOCALDOMAIN=leak.example", "RES_OPTIONS=ndots:9",
	"HOSTALIASES=/tmp/wgns-hosts", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/0/bus", "MAIL=/var/mail/root",
	"WGNS_TEST_KEPT=kept"}

// parseIdentity reads identityScript's output.
func parseIdentity(t *testing.T, out string) (status map[string]string, env map[string]string) {
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

// openFDs returns the file descriptors `ls -l /proc/self/fd` lists with their targets, without the
// one ls reads the directory with.
func openFDs(t *testing.T, out string) map[string]string {
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
	addFixedUsers(t)
	var ns unix.Stat_t
	if err := unix.Stat("/run/netns/"+name, &ns); err != nil {
		t.Fatal(err)
	}
	netns := fmt.Sprintf("net:[%d]", ns.Ino)

	// The test process's groups: what a root that stays root keeps.
	var rootGroups string
	for l := range strings.Lines(readFile(t, "/proc/self/status")) {
		if v, ok := strings.CutPrefix(l, "Groups:"); ok {
			rootGroups = strings.Join(strings.Fields(v), " ")
		}
	}
	const userPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
	const rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	wgnsexec := execIdentity{Uid: "4711 4711 4711 4711", Gid: "4711 4711 4711 4711", Groups: "4711 4712 4713",
		Env: map[string]string{"HOME": "/home/wgnsexec", "SHELL": "/bin/bash", "USER": "wgnsexec", "LOGNAME": "wgnsexec",
			"PATH": "/home/wgnsexec/.local/bin:/home/wgnsexec/bin:" + userPath}}
	wgnsother := execIdentity{Uid: "4720 4720 4720 4720", Gid: "4714 4714 4714 4714", Groups: "4712 4714",
		Env: map[string]string{"HOME": "/srv/wgnsother", "SHELL": "/bin/sh", "USER": "wgnsother", "LOGNAME": "wgnsother",
			"PATH": "/srv/wgnsother/.local/bin:/srv/wgnsother/bin:" + userPath}}
	root := execIdentity{Uid: "0 0 0 0", Gid: "0 0 0 0", Groups: rootGroups,
		Env: map[string]string{"HOME": "/root", "SHELL": "/bin/bash", "USER": "root", "LOGNAME": "root", "PATH": rootPath}}
	sudo := []string{"SUDO_UID=4711", "SUDO_GID=4711", "SUDO_USER=wgnsexec", "SUDO_COMMAND=/usr/local/bin/wgns exec"}

	cases := []struct {
		name  string
		env   []string // beyond envWithoutSudo and identityEnv
		flags []string // before NAME
		want  execIdentity
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
			env := envWithoutSudo(append(slices.Clone(identityEnv), tc.env...)...)
			args := append(append([]string{wgnsBin, "exec"}, tc.flags...), name, "--")
			o, e, code := runWith(t, env, nil, append(args, "sh", "-c", identityScript)...)
			if code != 0 {
				t.Fatalf("wgns exec: exit %d\n%s%s", code, o, e)
			}
			status, gotEnv := parseIdentity(t, o)
			tc.want.Net = netns
			got := execIdentity{Net: status["Net"], Uid: status["Uid"], Gid: status["Gid"], Groups: status["Groups"], Env: map[string]string{}}
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
			o, e, code = runWith(t, env, []*os.File{secret}, append(args, "ls", "-l", "/proc/self/fd")...)
			if code != 0 {
				t.Fatalf("wgns exec ls: exit %d\n%s%s", code, o, e)
			}
			if fds := openFDs(t, o); len(fds) != 3 || fds["0"] == "" || fds["1"] == "" || fds["2"] == "" {
				t.Errorf("the program's file descriptors: %v, want only 0, 1 and 2\n%s", fds, o)
			}
		})
	}

	t.Run("control: ip netns exec passes the fd on", func(t *testing.T) {
		o, e, code := runWith(t, nil, []*os.File{secret}, "ip", "netns", "exec", name, "ls", "-l", "/proc/self/fd")
		if fds := openFDs(t, o); code != 0 || fds["3"] != secret.Name() {
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
			o, e, code := runWith(t, envWithoutSudo(tc.env...), nil, args...)
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
	addFixedUsers(t)
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
			o, e, code := runWith(t, envWithoutSudo(tc.env...), nil, args...)
			if got := strings.Join(strings.Fields(o), " "); code != 0 || got != tc.want {
				t.Errorf("wgns exec %q: exit %d, %q, want %q\n%s", tc.flags, code, got, tc.want, e)
			}
		})
	}
}
