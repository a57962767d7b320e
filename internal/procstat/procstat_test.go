package procstat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Fields skips a command name that holds spaces and parentheses, and returns nil for a process
// that is gone.
func TestFields(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "a) b (c")
	if err := os.Symlink("/bin/sleep", exe); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	f := Fields(pid)
	if len(f) < 20 {
		t.Fatalf("Fields(%d) = %q: want 20 or more fields", pid, f)
	}
	if f[0] != "S" && f[0] != "R" {
		t.Errorf("state %q, want S or R", f[0])
	}
	if f[1] != strconv.Itoa(os.Getpid()) {
		t.Errorf("parent %q, want %d", f[1], os.Getpid())
	}
	cmd.Process.Kill()
	cmd.Wait()
	if f := Fields(pid); f != nil {
		t.Errorf("Fields of a reaped process = %q, want nil", f)
	}
}
