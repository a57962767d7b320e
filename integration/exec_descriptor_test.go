package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestIntegrationExecEntersThroughTheDescriptorItChecked: `wgns exec` opens /run/netns/NAME
// once, checks that descriptor (fstat, against the ready marker) and enters the namespace
// through the same descriptor, as strace (a witness no one here wrote) records it; no second
// open of the path leaves a window in which the name could lead elsewhere. Both ways of running
// the command are checked: as the caller (wgns becomes the command) and as another user (a
// child on its own terminal).
func TestIntegrationExecEntersThroughTheDescriptorItChecked(t *testing.T) {
	const name = "xfd"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	addUser(t, "wgnsalice")
	nsPath := "/run/netns/" + name
	openRe := regexp.MustCompile(`openat\(AT_FDCWD, "` + regexp.QuoteMeta(nsPath) + `", [^)]*\) = (\d+)`)
	for _, tc := range []struct {
		name  string
		flags []string
	}{{"as the caller", nil}, {"as another user", []string{"--user", "wgnsalice"}}} {
		t.Run(tc.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "strace")
			args := append(append([]string{"-f", "-qq", "-o", log, "-e", "trace=openat,open,fstat,newfstatat,setns", wgnsBin, "exec"}, tc.flags...), name, "--", "true")
			if _, e, code := runWith(t, envWithoutSudo(), nil, append([]string{"strace"}, args...)...); code != 0 {
				t.Fatalf("strace wgns exec: exit %d\n%s", code, e)
			}
			trace := readFile(t, log)
			opens := openRe.FindAllStringSubmatch(trace, -1)
			if len(opens) != 1 {
				t.Fatalf("%s was opened %d times, want once:\n%s", nsPath, len(opens), trace)
			}
			fd := opens[0][1]
			after := trace[strings.Index(trace, opens[0][0]):]
			checked := regexp.MustCompile(`(fstat\(` + fd + `, |newfstatat\(` + fd + `, "", )`).FindStringIndex(after)
			entered := regexp.MustCompile(`setns\(` + fd + `, CLONE_NEWNET\)\s+= 0`).FindStringIndex(after)
			if checked == nil || entered == nil || entered[0] < checked[0] {
				t.Errorf("want fd %s checked (fstat) and then entered (setns); the trace:\n%s", fd, trace)
			}
			if n := strings.Count(trace, ", CLONE_NEWNET)"); n != 1 {
				t.Errorf("%d setns calls into a network namespace, want 1:\n%s", n, trace)
			}
		})
	}
}

// TestIntegrationExecCommandLineForms: every form of exec's command line that --help and the
// README show runs the same command, through the front that users run and through the full
// wgns alike ("--" before NAME, after it, or not at all; flags before or after NAME); --help is
// answered by the full wgns.
func TestIntegrationExecCommandLineForms(t *testing.T) {
	const name = "xform"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	core := wgnsCore()
	forms := [][]string{
		{"--", name, "/bin/echo", "hi"},
		{name, "--", "echo", "hi"},
		{name, "echo", "hi"},
		{"--", name, "--", "echo", "hi"},
		{"--no-new-privs", "--", name, "--", "echo", "hi"},
		{"-u", "root", name, "echo", "hi"},
		{name, "--user", "root", "--", "echo", "hi"},
		{"--user=0", name, "--no-new-privs", "echo", "hi"},
	}
	for _, bin := range []string{wgnsBin, core} {
		if _, err := os.Stat(bin); err != nil {
			t.Errorf("the full wgns is not where the front runs it from: %v", err)
			continue
		}
		for _, f := range forms {
			o, e, code := runWith(t, envWithoutSudo(), nil, append([]string{bin, "exec"}, f...)...)
			if code != 0 || o != "hi\n" {
				t.Errorf("%s exec %q: exit %d, %q\n%s", bin, f, code, o, e)
			}
		}
		o, _, code := runWith(t, envWithoutSudo(), nil, bin, "exec", "--help")
		if code != 0 || !strings.Contains(o, "Usage: wgns exec <name> <command> ...") {
			t.Errorf("%s exec --help: exit %d\n%s", bin, code, o)
		}
	}
}
