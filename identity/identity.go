// Package identity decides who a command started by wgns runs as, and with what environment.
//
// wgns runs as root (usually through sudo); the command it starts in a tunnel should run as the
// user who asked for it, with that user's groups and a deliberately built environment. Users and
// groups are read from /etc/passwd and /etc/group (the "files" source of NSS, which is what Go's
// os/user reads without cgo, plus the login shell, which os/user does not give); users known
// only to other sources (LDAP, systemd's dynamic users) are not found.
package identity

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrNoUser is wrapped by the errors of Resolve when a user named by --user, SUDO_UID or the
// real uid does not exist.
var ErrNoUser = errors.New("no such user")

// ErrBadSudoEnv matches (errors.Is) the errors of Resolve when the SUDO_* variables are
// malformed or contradict each other or the user database.
var ErrBadSudoEnv = errors.New("inconsistent sudo environment")

// sudoError is an error about the SUDO_* variables; it is ErrBadSudoEnv without saying so.
type sudoError struct{ msg string }

func (e *sudoError) Error() string        { return e.msg }
func (e *sudoError) Is(target error) bool { return target == ErrBadSudoEnv }

func badSudo(format string, args ...any) error {
	return &sudoError{fmt.Sprintf(format, args...)}
}

// Target is who a command runs as: the user's ids, all its groups (the primary first), its name,
// home directory and login shell from passwd, and whether it is root (then wgns keeps its own
// credentials rather than switching).
type Target struct {
	UID, GID uint32
	Groups   []uint32
	Name     string
	Home     string
	Shell    string
	Root     bool
}

// Resolve decides who a command runs as:
//
//   - userFlag, when not empty, names the user (a name, or a uid when all digits);
//   - else, when the real uid is 0 and SUDO_UID is set (wgns was run by sudo), the user sudo was
//     called by. SUDO_UID must be a decimal uid that exists in passwd; SUDO_USER, if set, must
//     be that user's name; SUDO_GID, if set, must be decimal and one of that user's groups
//     (its primary group unless the user had switched with newgrp); GID is the primary group
//     from passwd either way. SUDO_UID 0 means root;
//   - else the caller itself (realUID).
//
// getenv reads the environment (os.Getenv) and realUID is os.Getuid().
func Resolve(userFlag string, getenv func(string) string, realUID int) (*Target, error) {
	return system.resolve(userFlag, getenv, realUID)
}

// userDB reads users and groups from a passwd and a group file.
type userDB struct {
	passwd, group string
}

var system = userDB{passwd: "/etc/passwd", group: "/etc/group"}

// account is one line of passwd.
type account struct {
	name        string
	uid, gid    uint32
	home, shell string
}

func (db userDB) resolve(userFlag string, getenv func(string) string, realUID int) (*Target, error) {
	var (
		a   *account
		err error
	)
	switch sudoUID := getenv("SUDO_UID"); {
	case userFlag != "":
		if isDecimal(userFlag) {
			uid, perr := strconv.ParseUint(userFlag, 10, 32)
			if perr != nil {
				return nil, fmt.Errorf("user %q: %w", userFlag, ErrNoUser)
			}
			a, err = db.byUID(uint32(uid))
		} else {
			a, err = db.byName(userFlag)
		}
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", userFlag, err)
		}
	case realUID == 0 && sudoUID != "":
		if a, err = db.sudoAccount(sudoUID, getenv); err != nil {
			return nil, err
		}
	default:
		if realUID < 0 || int64(realUID) > int64(^uint32(0)) {
			return nil, fmt.Errorf("uid %d: %w", realUID, ErrNoUser)
		}
		if a, err = db.byUID(uint32(realUID)); err != nil {
			return nil, fmt.Errorf("uid %d: %w", realUID, err)
		}
	}
	groups, err := db.groupsOf(a)
	if err != nil {
		return nil, err
	}
	shell := a.shell
	if shell == "" {
		shell = "/bin/sh" // what login(1) uses for an empty shell field
	}
	return &Target{
		UID: a.uid, GID: a.gid, Groups: groups,
		Name: a.name, Home: a.home, Shell: shell,
		Root: a.uid == 0,
	}, nil
}

// sudoAccount returns the user sudo was called by, checking SUDO_UID, SUDO_USER and SUDO_GID.
func (db userDB) sudoAccount(sudoUID string, getenv func(string) string) (*account, error) {
	if !isDecimal(sudoUID) {
		return nil, badSudo("SUDO_UID %q is not a number", sudoUID)
	}
	uid, err := strconv.ParseUint(sudoUID, 10, 32)
	if err != nil {
		return nil, badSudo("SUDO_UID %q is not a valid uid", sudoUID)
	}
	a, err := db.byUID(uint32(uid))
	if err != nil {
		return nil, fmt.Errorf("SUDO_UID %d: %w", uid, err)
	}
	if u := getenv("SUDO_USER"); u != "" && u != a.name {
		return nil, badSudo("SUDO_USER %q is not user %q of SUDO_UID %d", u, a.name, uid)
	}
	if g := getenv("SUDO_GID"); g != "" {
		if !isDecimal(g) {
			return nil, badSudo("SUDO_GID %q is not a number", g)
		}
		gid, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, badSudo("SUDO_GID %q is not a valid gid", g)
		}
		groups, err := db.groupsOf(a)
		if err != nil {
			return nil, err
		}
		if !contains(groups, uint32(gid)) {
			return nil, badSudo("SUDO_GID %d is not a group of user %q", gid, a.name)
		}
	}
	return a, nil
}

// isDecimal reports whether s is a non-empty string of ASCII digits.
func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func contains(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// byName returns the first passwd entry named name.
func (db userDB) byName(name string) (*account, error) {
	return db.findUser(func(a *account) bool { return a.name == name })
}

// byUID returns the first passwd entry with uid.
func (db userDB) byUID(uid uint32) (*account, error) {
	return db.findUser(func(a *account) bool { return a.uid == uid })
}

// findUser returns the first well-formed passwd entry that match accepts, or an error wrapping
// ErrNoUser.
func (db userDB) findUser(match func(*account) bool) (*account, error) {
	var found *account
	err := readColonFile(db.passwd, func(f []string) bool {
		if len(f) < 7 {
			return true
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return true
		}
		a := &account{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5], shell: f[6]}
		if match(a) {
			found = a
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, ErrNoUser
	}
	return found, nil
}

// groupsOf returns a's primary group followed by every group of the group file that lists a's
// name as a member, without duplicates.
func (db userDB) groupsOf(a *account) ([]uint32, error) {
	groups := []uint32{a.gid}
	err := readColonFile(db.group, func(f []string) bool {
		if len(f) < 4 {
			return true
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return true
		}
		for _, m := range strings.Split(f[3], ",") {
			if strings.TrimSpace(m) == a.name && !contains(groups, uint32(gid)) {
				groups = append(groups, uint32(gid))
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return groups, nil
}

// readColonFile calls fn with the fields of each line of path until fn returns false, skipping
// blank lines, comments and NIS compat lines (+ and -). A missing file is an empty one.
func readColonFile(path string, fn func(fields []string) bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the user database: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		if !fn(strings.Split(line, ":")) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the user database %s: %w", path, err)
	}
	return nil
}
