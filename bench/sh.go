package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// fatalf reports a failure of the harness itself and ends the run. Nothing needs undoing: the
// world (its namespaces, links and processes) ends with the run.
func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

// progressf prints a progress line on stderr.
func progressf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// run runs a command and returns its combined output.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// mustRun runs a command and ends the run if it fails.
func mustRun(name string, args ...string) string {
	out, err := run(name, args...)
	if err != nil {
		fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// waitFor polls cond every millisecond until it holds or limit passes, and reports whether it
// held.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// mustWaitFor is waitFor that ends the run on a timeout.
func mustWaitFor(limit time.Duration, what string, cond func() bool) {
	if !waitFor(limit, cond) {
		fatalf("timed out after %v waiting for %s", limit, what)
	}
}

// exists reports whether path exists (without following a final symlink).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// spawner starts commands with as little harness overhead as possible (fork, exec, wait4, no
// goroutines or pipes), so that the time measured is the command's: stdin is /dev/null, stdout
// and stderr go to a scratch file that is kept for error messages.
type spawner struct {
	devnull *os.File
	out     *os.File
}

func newSpawner() *spawner {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		fatalf("opening %s: %v", os.DevNull, err)
	}
	out, err := os.CreateTemp("", "wgns-bench-out-")
	if err != nil {
		fatalf("creating a scratch file: %v", err)
	}
	os.Remove(out.Name())
	return &spawner{devnull: devnull, out: out}
}

// result is one timed command.
type result struct {
	Elapsed time.Duration // from just before fork to just after the child was reaped
	Code    int           // exit status, or 128+signal
	Output  string        // stdout and stderr, only when Code != 0 or keep was asked
	CPU     time.Duration // user + system CPU time of the command (and its children)
	MinFlt  int64         // minor page faults
	MaxRSS  int64         // peak resident set size, KiB
}

// run runs argv (argv[0] an absolute path) with env and returns its time and status. With keep,
// the output is returned even on success.
func (s *spawner) run(argv, env []string, keep bool) result {
	s.out.Truncate(0)
	s.out.Seek(0, 0)
	attr := &syscall.ProcAttr{Env: env, Files: []uintptr{s.devnull.Fd(), s.out.Fd(), s.out.Fd()}}
	start := time.Now()
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err != nil {
		fatalf("starting %s: %v", strings.Join(argv, " "), err)
	}
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err = syscall.Wait4(pid, &ws, 0, &ru)
		if err != syscall.EINTR {
			break
		}
	}
	r := result{Elapsed: time.Since(start)}
	r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	r.MinFlt, r.MaxRSS = ru.Minflt, ru.Maxrss
	if err != nil {
		fatalf("waiting for %s: %v", strings.Join(argv, " "), err)
	}
	if ws.Signaled() {
		r.Code = 128 + int(ws.Signal())
	} else {
		r.Code = ws.ExitStatus()
	}
	if r.Code != 0 || keep {
		if fi, err := s.out.Stat(); err == nil {
			b := make([]byte, min(fi.Size(), 1<<20))
			n, _ := s.out.ReadAt(b, 0)
			r.Output = string(b[:n])
		}
	}
	return r
}

// mustRun is run that ends the bench when the command fails.
func (s *spawner) mustRun(argv, env []string) result {
	r := s.run(argv, env, false)
	if r.Code != 0 {
		fatalf("%s: exit %d\n%s", strings.Join(argv, " "), r.Code, r.Output)
	}
	return r
}

// lookPath returns the absolute path of a program, ending the run if there is none.
func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		fatalf("%s is needed: %v", name, err)
	}
	return p
}
