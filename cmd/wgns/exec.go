package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/identity"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/ready"
)

// ExecCmd is `wgns exec`.
type ExecCmd struct {
	User       string   `short:"u" help:"Run as this user (name or uid) instead of the invoking one (SUDO_UID); plain root stays root." placeholder:"USER"`
	NoNewPrivs bool     `help:"Set no_new_privs: setuid binaries and file capabilities give no privileges inside."`
	Name       string   `arg:"" help:"Tunnel name."`
	Command    []string `arg:"" passthrough:"" help:"The command and its arguments, after --."`
}

// parseExecFast parses exec's arguments without the full command-line model. It reports false
// for anything it does not handle (such as --help), which then goes through kong.
func parseExecFast(args []string) (*ExecCmd, bool) {
	c := &ExecCmd{}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "--" {
		a := args[0]
		switch {
		case a == "--user" || a == "-u":
			if len(args) < 2 {
				return nil, false
			}
			c.User, args = args[1], args[2:]
		case strings.HasPrefix(a, "--user="):
			c.User, args = strings.TrimPrefix(a, "--user="), args[1:]
		case a == "--no-new-privs":
			c.NoNewPrivs, args = true, args[1:]
		default:
			return nil, false
		}
	}
	if len(args) < 2 {
		return nil, false
	}
	c.Name, args = args[0], args[1:]
	if args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return nil, false
	}
	c.Command = args
	return c, true
}

// Run is exec through kong.
func (c *ExecCmd) Run() error {
	if len(c.Command) > 0 && c.Command[0] == "--" {
		c.Command = c.Command[1:]
	}
	if len(c.Command) == 0 {
		return &exitError{code: 125, msg: "exec: no command given (wgns exec NAME -- CMD [ARG...])"}
	}
	if code := c.run(); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// run enters the tunnel and replaces wgns with the command. It returns only on failure, with
// the exit status to use (125-127, like env and sudo).
func (c *ExecCmd) run() int {
	fail := func(code int, err error) int {
		fmt.Fprintln(os.Stderr, "wgns exec:", err)
		return code
	}
	if err := nsmgr.ValidateName(c.Name); err != nil {
		return fail(125, err)
	}
	if os.Geteuid() != 0 {
		return fail(125, errors.New("needs root (it enters a namespace and mounts its DNS view); run it with sudo"))
	}
	ns, err := ready.Open(c.Name)
	if err != nil {
		return fail(125, err)
	}
	ns.Close() // entered by name below, until nsmgr.Exec takes the descriptor
	who, err := identity.Resolve(c.User, os.Getenv, os.Getuid())
	if err != nil {
		return fail(125, err)
	}
	env := who.Env(os.Environ())
	path, err := nsmgr.LookPath(c.Command[0], envValue(env, "PATH"))
	if err != nil {
		return fail(execCode(err), err)
	}
	opts := nsmgr.ExecOptions{
		Path:       path,
		Argv:       c.Command,
		Env:        env,
		Mounts:     func() error { return dnsbind.Enter(c.Name) },
		NoNewPrivs: c.NoNewPrivs,
		Final:      true, // run returns only to exit
	}
	if !who.Root {
		opts.Cred = &nsmgr.Credential{UID: who.UID, GID: who.GID, Groups: who.Groups}
	}
	err = nsmgr.Exec(c.Name, opts)
	return fail(execCode(err), err)
}

func execCode(err error) int {
	var ee *nsmgr.ExecError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 125
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}
