package units

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// verifyDir writes the template units (running binary) and a dummy service
// into a fresh unit directory and confines the service to tunnel name with
// Install. It returns the directory.
func verifyDir(t *testing.T, binary, name, service string, style Style) string {
	t.Helper()
	dir := t.TempDir()
	files := TemplateFiles(binary)
	files[service] = "[Unit]\nDescription=a service confined by wgns\n\n[Service]\nExecStart=/bin/sleep infinity\n"
	for file, text := range files {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := Install(dir, name, service, style); err != nil {
		t.Fatal(err)
	}
	return dir
}

// analyzeVerify runs systemd-analyze verify on units of dir (file names, or
// instance names of templates in dir) and returns everything it printed.
// systemd-analyze exits 0 on warnings, so any output counts as a finding.
func analyzeVerify(t *testing.T, analyze, dir string, units ...string) string {
	t.Helper()
	args := []string{"verify"}
	for _, u := range units {
		args = append(args, filepath.Join(dir, u))
	}
	cmd := exec.Command(analyze, args...)
	// dir first, then the default search path (the trailing colon), so
	// targets like network-online.target resolve and nothing of the host
	// shadows the units under test.
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":", "SYSTEMD_LOG_COLOR=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		out.WriteString("[" + err.Error() + "]")
	}
	return strings.TrimSpace(out.String())
}

// writeExecutable makes an executable named base in a directory whose name
// has a space.
func writeExecutable(t *testing.T, base string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "my tools")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, base)
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Needs quoting in ExecStart= (the space) and escaping (%).
	quoted := writeExecutable(t, "wg%ns$1")

	tests := []struct {
		name, binary, service, instance string
		style                           Style
	}{
		{"work", self, "dummy.service", "dummy.service", StylePath},
		{"work", self, "dummy.service", "dummy.service", StyleJoins},
		{"my-vpn", quoted, "dummy.service", "dummy.service", StylePath},
		{"a+b=c.d", quoted, "dummy.service", "dummy.service", StyleJoins},
		// A drop-in for a template applies to each of its instances.
		{"my-vpn", self, "dummy@.service", `dummy@x\x2dy.service`, StyleJoins},
		{"a+b=c.d", self, "dummy@.service", "dummy@x.service", StylePath},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+string(tt.style)+"/"+tt.service, func(t *testing.T) {
			dir := verifyDir(t, tt.binary, tt.name, tt.service, tt.style)
			units := []string{tt.instance, TemplateName, NetnsTemplateName, InstanceName(tt.name), NetnsInstanceName(tt.name), SocketName, ServiceName}
			if out := analyzeVerify(t, analyze, dir, units...); out != "" {
				t.Errorf("systemd-analyze verify %s:\n%s", strings.Join(units, " "), out)
			}
		})
	}
}

// The check above can fail: a broken drop-in or a template whose binary is
// missing is reported.
func TestSystemdAnalyzeVerifyFinds(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	dir := verifyDir(t, self, "work", "dummy.service", StylePath)
	path := DropInPath(dir, "work", "dummy.service")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("NetworkNamespacePaht=/run/netns/work\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out := analyzeVerify(t, analyze, dir, "dummy.service"); !strings.Contains(out, "NetworkNamespacePaht") {
		t.Errorf("a misspelt key in the drop-in was not reported; output:\n%s", out)
	}

	missing := filepath.Join(t.TempDir(), "wgns")
	dir = verifyDir(t, missing, "work", "dummy.service", StylePath)
	if out := analyzeVerify(t, analyze, dir, InstanceName("work")); !strings.Contains(out, missing) {
		t.Errorf("a missing binary in the template was not reported; output:\n%s", out)
	}
	if out := analyzeVerify(t, analyze, dir, ServiceName); !strings.Contains(out, missing) {
		t.Errorf("a missing binary in %s was not reported; output:\n%s", ServiceName, out)
	}

	// systemd refuses quotes and backslashes in an executable's name. Its
	// complaint shows the path as it parsed it: the quoting round-trips.
	special := writeExecutable(t, `wg"n\s%1`)
	dir = verifyDir(t, special, "work", "dummy.service", StylePath)
	want := "Executable name contains special characters: " + special + "\n"
	if out := analyzeVerify(t, analyze, dir, TemplateName); !strings.Contains(out+"\n", want) {
		t.Errorf("systemd did not parse ExecStart= back to %q; output:\n%s", special, out)
	}
}
