// Package execcmd is `wgns exec`: its command line and its work. Both programs that answer to
// `wgns` use it: the full command (cmd/wgns, through kong, with every other command) and the lean
// front (cmd/wgns-front), which runs exec without loading the rest and hands every other command
// to the full one.
//
// It must stay small: everything it imports is loaded, and initialised, at every `wgns exec`.
package execcmd

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/execsvc"
	"github.com/wgns/wgns/handoff"
	"github.com/wgns/wgns/identity"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/pty"
	"github.com/wgns/wgns/wgns/ready"
)

// Cmd is `wgns exec`'s command line, with kong's tags (the full command parses it with kong);
// Parse reads the same grammar without kong.
type Cmd struct {
	User       string   `short:"u" help:"Run as this user (name or uid) instead of the invoking one (SUDO_UID). Only root may name another user; under sudo, only the invoking user may be named." placeholder:"USER"`
	NoNewPrivs bool     `help:"Set no_new_privs: setuid binaries and file capabilities give no privileges inside."`
	SSHAgent   bool     `name:"ssh-agent" help:"Give the command your ssh agent (SSH_AUTH_SOCK, which sudo removes: found in your runtime directory). Without it, the command gets none."`
	Name       string   `arg:"" help:"Tunnel name."`
	Command    []string `arg:"" passthrough:"" help:"The command and its arguments, after --."`
}

// Parse parses exec's arguments (those after "exec") exactly as kong parses them into Cmd: flags
// before NAME and between NAME and the command; "--" before NAME ends the flags; the command
// starts at the first word after NAME that is not a flag of exec, "--" included (Argv drops it). It reports false for what it leaves to kong: help, anything kong would
// refuse, and the rare forms kong reads in its own way (an unknown flag right after NAME).
func Parse(args []string) (*Cmd, bool) {
	c := &Cmd{}
	flags := true
	for {
		if len(args) == 0 {
			return nil, false
		}
		a := args[0]
		if flags && a == "--" {
			flags, args = false, args[1:]
			continue
		}
		if flags && isFlag(a) {
			n, ok := c.flag(args)
			if !ok {
				return nil, false
			}
			args = args[n:]
			continue
		}
		c.Name, args = a, args[1:]
		break
	}
	for flags && len(args) > 0 && isFlag(args[0]) && args[0] != "--" {
		n, ok := c.flag(args)
		if !ok {
			return nil, false
		}
		args = args[n:]
	}
	if len(args) == 0 {
		return nil, false
	}
	c.Command = args
	return c, true
}

// Argv returns the command to run: Command without the "--" that may start it.
func (c *Cmd) Argv() []string {
	if len(c.Command) > 0 && c.Command[0] == "--" {
		return c.Command[1:]
	}
	return c.Command
}

// isFlag reports whether kong reads a as a flag ("-" alone is a word).
func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// flag reads the flag at args[0] into c and returns how many arguments it took, or false for a
// flag it leaves to kong.
func (c *Cmd) flag(args []string) (int, bool) {
	a := args[0]
	switch {
	case a == "--user" || a == "-u":
		// kong refuses a value that looks like a flag.
		if len(args) < 2 || isFlag(args[1]) {
			return 0, false
		}
		c.User = args[1]
		return 2, true
	case strings.HasPrefix(a, "--user="):
		c.User = a[len("--user="):]
		return 1, true
	case strings.HasPrefix(a, "-u"): // -uNAME; kong keeps an "=" as part of the value
		c.User = a[2:]
		return 1, true
	case a == "--no-new-privs":
		c.NoNewPrivs = true
		return 1, true
	case a == "--ssh-agent":
		c.SSHAgent = true
		return 1, true
	case strings.HasPrefix(a, "--no-new-privs="):
		switch a[len("--no-new-privs="):] {
		case "true", "1", "yes":
			c.NoNewPrivs = true
		case "false", "0", "no":
			c.NoNewPrivs = false
		default:
			return 0, false
		}
		return 1, true
	}
	return 0, false // --help, -h, unknown flags
}

// Execute enters the tunnel and runs the command, and returns the exit status wgns ends with:
// the command's own, or 125 (wgns failed), 126 (not executable), 127 (not found), like env and
// sudo. When the command runs as the user who asked (the sudo user, or root staying root), wgns
// becomes the command (execve), and Execute returns only on failure. When root runs it as
// another user, wgns stays as its parent: the command gets a terminal of its own, never the
// caller's (package pty), or a session of its own when there is no terminal, and Execute returns
// its exit status, or ends wgns by the signal that ended it.
func (c *Cmd) Execute() int { return c.execute(false) }

// ExecuteInInit is Execute for a caller that runs it during the initialization of package main
// (the front): when wgns becomes the command, it does so without locking the goroutine to its
// thread, which the runtime does then (see nsmgr's ExecOptions.InInit).
func (c *Cmd) ExecuteInInit() int { return c.execute(true) }

func (c *Cmd) execute(inInit bool) int {
	fail := func(code int, err error) int {
		fmt.Fprintln(os.Stderr, "wgns exec:", err)
		return code
	}
	argv := c.Argv()
	if len(argv) == 0 {
		return fail(125, errors.New("no command given (wgns exec NAME -- CMD [ARG...])"))
	}
	if err := nsmgr.ValidateName(c.Name); err != nil {
		return fail(125, err)
	}
	if os.Geteuid() != 0 {
		return c.viaService(argv)
	}
	ns, err := ready.Open(c.Name)
	if err != nil {
		return fail(125, err)
	}
	defer ns.Close()
	who, err := identity.Resolve(c.User, os.Getenv, os.Getuid())
	if err != nil {
		return fail(125, err)
	}
	env, err := who.SessionEnv(os.Environ(), c.SSHAgent)
	if err != nil {
		return fail(125, fmt.Errorf("--ssh-agent: %w", err))
	}
	opts := nsmgr.ExecOptions{
		Argv:       argv, // looked up as the user it runs as, in the PATH of its environment
		Env:        env,
		View:       dnsbind.Entry{Name: c.Name},
		Check:      func(path string) error { return handoff.Check(c.Name, path, argv, env) },
		NoNewPrivs: c.NoNewPrivs,
	}
	if !who.Root {
		opts.Cred = &nsmgr.Credential{UID: who.UID, GID: who.GID, Groups: who.Groups}
		opts.Mounts = func() error { return handoff.HideSessionBus(who.UID) }
	}
	if who.UID == who.Caller {
		opts.Final = true // Exec returns only to exit
		opts.InInit = inInit
		err := nsmgr.Exec(c.Name, ns, opts)
		return fail(execCode(err), err)
	}
	exit, err := pty.Run(pty.Options{Stdin: openStd(os.Stdin), Stdout: openStd(os.Stdout), Stderr: openStd(os.Stderr), Owner: int(who.UID)},
		func(files [3]*os.File, ctty int) (*os.Process, error) {
			return nsmgr.Start(c.Name, ns, opts, nsmgr.Child{Files: files[:], Setsid: true, Ctty: ctty})
		})
	if err != nil {
		return fail(execCode(err), err)
	}
	endAsProgram(exit)
	return exit.Code
}

// viaService runs the command through the wgns service (`wgns serve`), for a user who is not
// root: the service runs it as that user if the tunnel's Users name the user. --user may only
// name the caller (as under sudo), and is not sent: the service runs the command as whoever
// connects.
func (c *Cmd) viaService(argv []string) int {
	fail := func(code int, err error) int {
		fmt.Fprintln(os.Stderr, "wgns exec:", err)
		return code
	}
	if c.User != "" {
		if _, err := identity.Resolve(c.User, func(string) string { return "" }, os.Getuid()); err != nil {
			return fail(125, err)
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return fail(125, fmt.Errorf("finding the working directory: %w", err))
	}
	req := &execsvc.Request{Name: c.Name, Argv: argv, Env: os.Environ(), Dir: dir}
	if c.NoNewPrivs {
		req.Flags |= execsvc.FlagNoNewPrivs
	}
	exit, err := execsvc.Run(req)
	if errors.Is(err, execsvc.ErrNoService) {
		return fail(125, fmt.Errorf("%w: without sudo, exec asks it to run the command for a user the tunnel's [Namespace] Users names (an admin starts it with systemctl enable --now wgns.socket); or run exec with sudo", err))
	}
	if err != nil {
		return fail(125, err)
	}
	if exit.Message != "" {
		fmt.Fprintln(os.Stderr, "wgns exec:", exit.Message)
	}
	endAsProgram(pty.Exit{Code: exit.Code, Signal: unix.Signal(exit.Signal)})
	return exit.Code
}

// endAsProgram ends wgns by the signal that ended the program, when that is one that ends a
// process without a core dump (an interrupt, a hang-up, a termination), as sudo does: the shell
// that started wgns then sees what it would have seen of the program itself (a script stops
// where a program was interrupted with Ctrl-C). It returns if the program exited, or another
// signal ended it (the status is then 128+N).
func endAsProgram(exit pty.Exit) {
	switch exit.Signal {
	case unix.SIGINT, unix.SIGTERM, unix.SIGHUP:
		// With its handler reset, Go's runtime ends the process by the signal itself. Sent to
		// this thread, it is handled before tgkill returns (sent to the process, it could be
		// handled by another thread after wgns had exited with the status).
		signal.Reset(exit.Signal)
		runtime.LockOSThread()
		unix.Tgkill(unix.Getpid(), unix.Gettid(), exit.Signal)
		runtime.UnlockOSThread()
	}
}

// openStd returns f, or nil if its descriptor is not open (the command then gets it closed too).
func openStd(f *os.File) *os.File {
	if _, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil {
		return nil
	}
	return f
}

// execCode is the exit status for an error of nsmgr: its Code, else 125.
func execCode(err error) int {
	var ee *nsmgr.ExecError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 125
}
