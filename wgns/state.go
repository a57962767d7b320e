package wgns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wgns/wgns/nsmgr"
	"golang.org/x/sys/unix"
)

// RunDir holds wgns's runtime state: one NAME.json per tunnel, NAME.lock, NAME.ready, NAME.log.
const RunDir = "/run/wgns"

// Mode is how a tunnel's WireGuard device is implemented.
type Mode string

// The two WireGuard implementations.
const (
	ModeKernel    Mode = "kernel"
	ModeUserspace Mode = "userspace"
)

// State is what wgns records about a tunnel in RunDir/NAME.json. It is written at every step of
// up, so that a crash leaves a record of what was made.
type State struct {
	Name   string    `json:"name"`
	Mode   Mode      `json:"mode"`
	Config string    `json:"config"`
	Step   string    `json:"step"`
	Ready  bool      `json:"ready"`
	Netns  nsmgr.ID  `json:"netns"`
	PID    int       `json:"pid,omitempty"`
	Start  uint64    `json:"pid_start,omitempty"` // the holder's start time in clock ticks, against PID reuse
	Since  time.Time `json:"since"`
}

func statePath(name string) string { return filepath.Join(RunDir, name+".json") }

// LogPath is where a detached embedded-WireGuard process writes its messages.
func LogPath(name string) string { return filepath.Join(RunDir, name+".log") }

func lockPath(name string) string { return filepath.Join(RunDir, name+".lock") }

// ReadState reads NAME's state; the error wraps fs.ErrNotExist when wgns has no record of NAME.
func ReadState(name string) (*State, error) {
	b, err := os.ReadFile(statePath(name))
	if err != nil {
		return nil, fmt.Errorf("reading state of %q: %w", name, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading state of %q: %s: %w", name, statePath(name), err)
	}
	return &s, nil
}

func writeState(s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(statePath(s.Name), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("recording state of %q: %w", s.Name, err)
	}
	return nil
}

func removeState(name string) error {
	var errs []error
	for _, p := range []string{ReadyPath(name), statePath(name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ErrNotUp is returned when a named tunnel is not up.
var ErrNotUp = errors.New("not up")

// lock takes the per-NAME lock, creating RunDir if needed. The caller must call the returned
// unlock function.
func lock(name string) (unlock func(), err error) {
	if err := os.MkdirAll(RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", RunDir, err)
	}
	f, err := os.OpenFile(lockPath(name), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock of %q: %w", name, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %q: %w", name, err)
	}
	return func() { f.Close() }, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// procStart returns a process's start time (field 22 of /proc/PID/stat), or 0 if it is gone or
// a zombie (which holds no device any more).
func procStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// holderAlive reports whether the process recorded as holding the tunnel still runs, and is
// not about to die of a SIGKILL already sent to it (kill returns before its target is gone).
func (s *State) holderAlive() bool {
	return s.PID > 0 && s.Start != 0 && procStart(s.PID) == s.Start && !killPending(s.PID)
}

// killPending reports whether pid has a SIGKILL pending (SigPnd or ShdPnd in /proc/PID/status).
func killPending(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	const sigkillBit = 1 << (9 - 1)
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "SigPnd" && k != "ShdPnd") {
			continue
		}
		if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&sigkillBit != 0 {
			return true
		}
	}
	return false
}

func idString(id nsmgr.ID) string {
	return strconv.FormatUint(id.Dev, 10) + ":" + strconv.FormatUint(id.Ino, 10)
}
