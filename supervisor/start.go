package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/wgns"
)

// StartOptions says which supervisor Start starts.
type StartOptions struct {
	Name       string
	ConfigPath string    // absolute
	Mode       wgns.Mode // "" lets the supervisor pick (kernel WireGuard when the kernel has it)
	Strict     bool      // refuse a config with lines wgns would ignore (up --strict)
	// Timeout bounds the wait for the supervisor's word (default 60 s).
	Timeout time.Duration
	// Attach, when set, starts the holder of a CNI attachment instead (`wgns cni-holder`), which
	// reads this description of it from a pipe (fd 4): an inline config's keys must reach
	// neither argv nor the environment. LogPath is then its log, and Name names it in messages.
	Attach  []byte
	LogPath string
}

// specFD is the descriptor number of an attachment's description in its holder.
const specFD = 4

// readyFD is the descriptor number of the readiness pipe in the supervisor: the first after
// stdin, stdout and stderr.
const readyFD = 3

// Start starts a detached supervisor for a tunnel (`wgns up --foreground`, in a session of its
// own, writing to RunDir/NAME.log) and waits until it says the tunnel is ready, or fails. It
// returns the warnings the supervisor gave while bringing the tunnel up. When the supervisor
// fails, the error is its own reason, said once.
//
// The supervisor inherits only stdin (/dev/null), stdout and stderr (the log) and the readiness
// pipe: every other descriptor of this process is marked close-on-exec first, so that a lock or
// socket held by whoever ran `wgns up` is not held for the tunnel's life.
func Start(o StartOptions) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the wgns binary: %w", err)
	}
	return starter{binary: self, runDir: wgns.RunDir}.start(o)
}

// starter starts supervisors: the wgns binary to run, and the directory of their logs (tests
// run a stand-in binary in a directory of their own).
type starter struct {
	binary string
	runDir string
	env    []string // added to the supervisor's environment
}

func (s starter) start(o StartOptions) ([]string, error) {
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if err := os.MkdirAll(s.runDir, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(s.runDir, o.Name+".log")
	if o.LogPath != "" {
		logPath = o.LogPath
		if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
			return nil, err
		}
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("making the readiness pipe: %w", err)
	}
	defer pr.Close()

	args := []string{"up", "--foreground", "--ready-fd", strconv.Itoa(readyFD), "--name", o.Name}
	if o.Strict {
		args = append(args, "--strict")
	}
	switch o.Mode {
	case wgns.ModeKernel:
		args = append(args, "--kernel")
	case wgns.ModeUserspace:
		args = append(args, "--userspace")
	}
	args = append(args, o.ConfigPath)
	var spec *os.File
	if o.Attach != nil {
		args = []string{"cni-holder", "--ready-fd", strconv.Itoa(readyFD), "--spec-fd", strconv.Itoa(specFD)}
		var sw *os.File
		if spec, sw, err = os.Pipe(); err != nil {
			pw.Close()
			return nil, fmt.Errorf("making the pipe for the attachment's description: %w", err)
		}
		defer spec.Close()
		go func() { sw.Write(o.Attach); sw.Close() }()
	}
	cmd := exec.Command(s.binary, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.ExtraFiles = []*os.File{pw}
	if spec != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, spec)
	}
	cmd.Dir = "/"
	cmd.Env = append(append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}, testHookEnv()...), s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Descriptors this process inherited (a caller's lock, say) must not reach the supervisor:
	// os/exec passes on every descriptor that is not close-on-exec.
	if err := unix.CloseRange(readyFD, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return nil, fmt.Errorf("marking descriptors close-on-exec: %w", err)
	}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("starting the supervisor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	type result struct {
		o   outcome
		err error
	}
	read := make(chan result, 1)
	go func() {
		o, err := readOutcome(pr)
		read <- result{o, err}
	}()

	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	select {
	case res := <-read:
		switch {
		case res.o.ready:
			return res.o.warnings, nil
		case res.o.err != "":
			<-exited // it exits right after saying why, having undone what it made
			dropLog(o.Name, logPath)
			return res.o.warnings, errors.New(res.o.err)
		}
		// It died without a word (a SIGKILL, say): what it wrote to its log is all there is.
		var werr error
		select {
		case werr = <-exited:
		case <-timer.C:
		}
		msg := readFrom(logPath, logStart)
		dropLog(o.Name, logPath)
		if msg == "" {
			msg = fmt.Sprintf("the supervisor exited: %v", werr)
		}
		return res.o.warnings, errors.New(msg)
	case <-timer.C:
		cmd.Process.Signal(syscall.SIGTERM)
		return nil, fmt.Errorf("the supervisor did not become ready in %s (see %s)", o.Timeout, logPath)
	}
}

// dropLog removes the log of a supervisor that failed, once it has undone everything (no state
// left): its reason was said to the caller, and nothing of the tunnel remains to explain.
func dropLog(name, path string) {
	if _, err := wgns.ReadState(name); errors.Is(err, fs.ErrNotExist) {
		os.Remove(path)
	}
}

// readFrom returns what was written to path since off, without a leading "wgns: " (the caller
// adds its own).
func readFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	f.Seek(off, io.SeekStart)
	b, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	return string(bytes.TrimPrefix(bytes.TrimSpace(b), []byte("wgns: ")))
}
