package wgns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wgns/wgns/internal/atomicfile"
	"github.com/wgns/wgns/nsmgr"
	"golang.org/x/sys/unix"
)

// RunDir holds wgns's runtime state: one NAME.json per tunnel, NAME.lock, NAME.ready, NAME.log,
// and with ports NAME.ports and NAME.port.
const RunDir = "/run/wgns"

// runDir is RunDir, or a directory of a test's own.
var runDir = RunDir

// Mode is how a tunnel's WireGuard device is implemented.
type Mode string

// The two WireGuard implementations.
const (
	ModeKernel    Mode = "kernel"
	ModeUserspace Mode = "userspace"
)

// OrDefault returns m, or for "" the mode wgns picks: kernel WireGuard if the kernel has it
// (KernelWireGuard), else the embedded one.
func (m Mode) OrDefault() Mode {
	if m != "" {
		return m
	}
	if KernelWireGuard() {
		return ModeKernel
	}
	return ModeUserspace
}

// Step is how far the making of a tunnel got. Steps are recorded in the state file as they are
// reached, so that a crash leaves a record of what was made.
type Step string

// The steps of making a tunnel, in order.
const (
	StepNamespace Step = "namespace"
	StepFirewall  Step = "firewall"
	StepInterface Step = "interface"
	StepAddresses Step = "addresses"
	StepRoutes    Step = "routes"
	StepPeers     Step = "peers"
	StepDNS       Step = "dns"
	StepReady     Step = "ready"
)

// State is what wgns records about a tunnel in RunDir/NAME.json (see stateFile for the format).
type State struct {
	Name   string
	Mode   Mode
	Config string // the config file it was brought up from
	Step   Step
	Ready  bool
	Netns  nsmgr.ID // the namespace wgns made, to tell it from one swapped in under the same name
	PID    int      // the tunnel's holder process, 0 if none
	Start  uint64   // the holder's start time in clock ticks, against PID reuse
	Since  time.Time
	// Users is the config's [Namespace] Users as read by the last up or repair (USER or
	// @GROUP each): who may run programs in the tunnel through `wgns serve`.
	Users []string
}

// stateFile is the format of RunDir/NAME.json, owned here: fields are only ever added, and a
// newer wgns reads every older file. Version 1 (until November 2026) had no "version" and wrote
// the namespace as "netns": {"Dev": N, "Ino": N}, Go's default encoding of nsmgr.ID; version 2
// writes "netns_dev" and "netns_ino".
type stateFile struct {
	Version  int       `json:"version"`
	Name     string    `json:"name"`
	Mode     Mode      `json:"mode"`
	Config   string    `json:"config"`
	Step     Step      `json:"step"`
	Ready    bool      `json:"ready"`
	NetnsDev uint64    `json:"netns_dev"`
	NetnsIno uint64    `json:"netns_ino"`
	PID      int       `json:"pid,omitempty"`
	PIDStart uint64    `json:"pid_start,omitempty"`
	Since    time.Time `json:"since"`
	Users    []string  `json:"users,omitempty"`

	V1Netns *struct {
		Dev uint64 `json:"Dev"`
		Ino uint64 `json:"Ino"`
	} `json:"netns,omitempty"`
}

// stateVersion is the version of stateFile that this wgns writes.
const stateVersion = 2

func (s *State) file() stateFile {
	return stateFile{Version: stateVersion, Name: s.Name, Mode: s.Mode, Config: s.Config, Step: s.Step, Ready: s.Ready,
		NetnsDev: s.Netns.Dev, NetnsIno: s.Netns.Ino, PID: s.PID, PIDStart: s.Start, Since: s.Since, Users: s.Users}
}

func (f *stateFile) state() *State {
	s := &State{Name: f.Name, Mode: f.Mode, Config: f.Config, Step: f.Step, Ready: f.Ready,
		Netns: nsmgr.ID{Dev: f.NetnsDev, Ino: f.NetnsIno}, PID: f.PID, Start: f.PIDStart, Since: f.Since, Users: f.Users}
	if f.Version < 2 && f.V1Netns != nil {
		s.Netns = nsmgr.ID{Dev: f.V1Netns.Dev, Ino: f.V1Netns.Ino}
	}
	return s
}

func statePath(name string) string { return filepath.Join(runDir, name+".json") }

// LogPath is where a detached embedded-WireGuard process writes its messages.
func LogPath(name string) string { return filepath.Join(runDir, name+".log") }

func lockPath(name string) string { return filepath.Join(runDir, name+".lock") }

// PortPath is where the supervisor writes the port the provider forwards to NAME (PortForward):
// the number alone, readable by everyone.
func PortPath(name string) string { return filepath.Join(runDir, name+".port") }

// PortsPath is where the supervisor records NAME's published and forwarded ports for status.
func PortsPath(name string) string { return filepath.Join(runDir, name+".ports") }

// ReadState reads NAME's state; the error wraps fs.ErrNotExist when wgns has no record of NAME.
func ReadState(name string) (*State, error) {
	b, err := os.ReadFile(statePath(name))
	if err != nil {
		return nil, fmt.Errorf("reading the state of tunnel %q: %w", name, err)
	}
	return parseState(name, b)
}

func parseState(name string, b []byte) (*State, error) {
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading the state of tunnel %q: %s: %w", name, statePath(name), err)
	}
	if f.Version > stateVersion {
		return nil, fmt.Errorf("reading the state of tunnel %q: %s has format version %d; this wgns reads up to %d", name, statePath(name), f.Version, stateVersion)
	}
	return f.state(), nil
}

func writeState(s *State) error {
	b, err := json.MarshalIndent(s.file(), "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(statePath(s.Name), append(b, '\n'), 0o600, atomicfile.Options{}); err != nil {
		return fmt.Errorf("recording the state of tunnel %q: %w", s.Name, err)
	}
	return nil
}

func removeState(name string) error {
	var errs []error
	for _, p := range []string{ReadyPath(name), PortPath(name), PortsPath(name), statePath(name), failoverPath(name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// readReady returns the namespace ID that NAME's ready marker holds, "" if there is none.
func readReady(name string) string {
	b, err := os.ReadFile(ReadyPath(name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func removeReady(name string) { os.Remove(ReadyPath(name)) }

// ErrNotUp is returned when a named tunnel is not up.
var ErrNotUp = errors.New("not up")

// lockWait bounds how long lock waits for another wgns process working on the same tunnel.
var lockWait = 60 * time.Second

// lock takes the per-NAME lock, creating RunDir if needed; the caller must call the returned
// unlock function. RunDir is root's alone (0700), so only wgns itself can hold the lock; still,
// the wait is bounded, and the error names the process that holds it (each holder writes its
// PID and command into the lock file).
func lock(name string) (unlock func(), err error) {
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(lockPath(name), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(lockWait)
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("locking tunnel %q (%s): %w", name, lockPath(name), err)
		}
		if time.Now().After(deadline) {
			holder, _ := io.ReadAll(io.LimitReader(f, 512))
			f.Close()
			return nil, fmt.Errorf("tunnel %q is busy: %s has held its lock for %s", name, lockOwner(holder), lockWait)
		}
		time.Sleep(pause)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+strings.Join(os.Args, " ")), 0)
	return func() { f.Close() }, nil
}

// lockOwner describes the process a lock file names, if it still runs.
func lockOwner(content []byte) string {
	pidText, cmd, _ := strings.Cut(strings.TrimSpace(string(content)), " ")
	pid, err := strconv.Atoi(pidText)
	if err != nil || nsmgr.StartTime(pid) == 0 {
		return "another wgns process"
	}
	return fmt.Sprintf("process %d (%s)", pid, cmd)
}

// holderAlive reports whether the process recorded as holding the tunnel still runs, and is
// not about to die of a SIGKILL already sent to it (kill returns before its target is gone).
func (s *State) holderAlive() bool {
	return s.PID > 0 && s.Start != 0 && nsmgr.StartTime(s.PID) == s.Start && !killPending(s.PID)
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
