package vm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCpioReadByCpio: GNU cpio (a reader no one here wrote) lists what the writer wrote, with
// the right types and modes, and unpacks the same contents, in both the aligned and unaligned
// cases of names and data.
func TestCpioReadByCpio(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("no cpio(1) to read the archive with")
	}
	files := map[string]string{
		"init":         "#!/bin/sh\necho hi\n",
		"bin/a":        "",
		"bin/abc":      "123",
		"modules/x.ko": strings.Repeat("k", 4097),
	}
	write := func(withDevice bool) []byte {
		var b bytes.Buffer
		c := &cpioWriter{w: &b}
		c.dir("bin", 0o755)
		c.dir("/modules/", 0o700)
		for _, n := range []string{"init", "bin/a", "bin/abc", "modules/x.ko"} {
			c.file(n, 0o644, []byte(files[n]))
		}
		c.symlink("bin/sh", "busybox")
		if withDevice {
			c.char("dev/console", 0o600, 5, 1)
		}
		if err := c.close(); err != nil {
			t.Fatal(err)
		}
		if b.Len()%4 != 0 {
			t.Errorf("archive of %d bytes is not 4-byte aligned", b.Len())
		}
		return b.Bytes()
	}

	list := exec.Command(cpio, "-t", "-v", "--quiet")
	list.Stdin = bytes.NewReader(write(true))
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	want := []string{"drwxr-xr-x bin", "drwx------ modules", "-rw-r--r-- init", "-rw-r--r-- bin/a",
		"-rw-r--r-- bin/abc", "-rw-r--r-- modules/x.ko", "lrwxrwxrwx bin/sh -> busybox", "crw------- dev/console"}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("cpio -tv lists %d entries, want %d:\n%s", len(lines), len(want), out)
	}
	for i, l := range lines {
		f := strings.Fields(l)
		got := f[0] + " " + strings.Join(f[8:], " ")
		if f[0][0] == 'c' {
			got = f[0] + " " + f[len(f)-1]
		}
		if got != want[i] {
			t.Errorf("entry %d: %q, want %q (line %q)", i, got, want[i], l)
		}
	}

	dir := t.TempDir()
	in := exec.Command(cpio, "-i", "-d", "--quiet", "--no-absolute-filenames")
	in.Dir = dir
	in.Stdin = bytes.NewReader(write(false))
	if out, err := in.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	for n, content := range files {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || string(b) != content {
			t.Errorf("%s unpacked as %q (%v), want %d bytes", n, b, err, len(content))
		}
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q (%v), want busybox", l, err)
	}
}
