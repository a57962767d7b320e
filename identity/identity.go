// Package identity decides who a command started by wgns runs as, and with what environment.
//
// wgns runs as root (usually through sudo); the command it starts in a tunnel should run as the
// user who asked for it, with that user's groups and a deliberately built environment. Users and
// groups are read from /etc/passwd and /etc/group (the "files" source of NSS, which is what Go's
// os/user reads without cgo, plus the login shell, which os/user does not give); users known
// only to other sources (LDAP, systemd's dynamic users) are not found.
package identity

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/errkind"
)

// ErrNoUser is wrapped by the errors of Resolve when a user named by --user, SUDO_UID or the
// real uid does not exist.
var ErrNoUser = errors.New("no such user")

// ErrNotPermitted is wrapped by the errors of Resolve when the caller may not run a command as
// the user it names: only root may name another user.
var ErrNotPermitted = errors.New("not permitted")

// ErrBadSudoEnv matches (errors.Is) the errors of Resolve when the SUDO_* variables are
// malformed or contradict each other or the user database.
var ErrBadSudoEnv = errors.New("inconsistent sudo environment")

// badSudo is an error about the SUDO_* variables: it matches ErrBadSudoEnv without saying so.
func badSudo(format string, args ...any) error {
	return errkind.Errorf(ErrBadSudoEnv, format, args...)
}

// Target is who a command runs as: the user's ids, all its groups (the primary first; none for
// root), its name, home directory and login shell from passwd, and whether it is root (then wgns
// keeps its own credentials, groups included, rather than switching). Caller is the uid of the user who asked for the command:
// SUDO_UID under sudo, else the real uid. A command whose UID differs from Caller runs for
// someone else (root running it as another user), and must not get the caller's terminal.
type Target struct {
	UID, GID uint32
	Groups   []uint32
	Name     string
	Home     string
	Shell    string
	Root     bool
	Caller   uint32
}

// Resolve decides who a command runs as. First it finds who asked, the caller:
//
//   - when the real uid is 0 and SUDO_UID is set (wgns was run by sudo), the user sudo was called
//     by. SUDO_UID must be a decimal uid that exists in passwd; SUDO_USER, if set, must be that
//     user's name; SUDO_GID, if set, must be decimal and one of that user's groups (its primary
//     group unless the user had switched with newgrp). SUDO_UID 0 means root;
//   - else the real uid (realUID).
//
// The command runs as the caller, unless userFlag names a user (a name, or a uid when all
// digits). Only a root caller may name another user: for anyone else (a user who may run wgns
// through sudo) userFlag may only name the caller itself, by name or uid, and the command then
// runs as the caller's own account; naming any other user, root included, is refused with an
// error wrapping ErrNotPermitted. This is what makes a sudoers rule that lets a user run
// `wgns exec` safe: whatever the rest of the command line says, the command runs as that user.
// GID is the primary group from passwd in every case.
//
// getenv reads the environment (os.Getenv) and realUID is os.Getuid().
func Resolve(userFlag string, getenv func(string) string, realUID int) (*Target, error) {
	return system.resolve(userFlag, getenv, realUID)
}

// userDB reads users and groups from a passwd and a group file, each read once per Resolve.
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
	users, err := readFile(db.passwd)
	if err != nil {
		return nil, err
	}
	// The group file is read only when groups are needed: not for root, whose credentials wgns
	// keeps (the exec path of root is the one to keep short).
	var groupFile []byte
	groupsRead := false
	readGroups := func() ([]byte, error) {
		if !groupsRead {
			if groupFile, err = readFile(db.group); err != nil {
				return nil, err
			}
			groupsRead = true
		}
		return groupFile, nil
	}
	// Who asked. caller stays nil for a caller that is not looked up (yet).
	var (
		caller    *account
		callerUID uint32
		viaSudo   bool
	)
	if sudoUID := getenv("SUDO_UID"); realUID == 0 && sudoUID != "" {
		if caller, err = sudoAccount(users, readGroups, sudoUID, getenv); err != nil {
			return nil, err
		}
		callerUID, viaSudo = caller.uid, true
	} else {
		if realUID < 0 || int64(realUID) > int64(^uint32(0)) {
			return nil, fmt.Errorf("uid %d: %w", realUID, ErrNoUser)
		}
		callerUID = uint32(realUID)
	}

	a := caller
	if userFlag != "" {
		named, err := byFlag(users, userFlag)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", userFlag, err)
		}
		switch {
		case callerUID == 0:
			a = named
		case named.uid != callerUID:
			return nil, notPermitted(users, userFlag, caller, callerUID, viaSudo)
		}
		// A non-root caller naming itself runs as its own account (not as another passwd entry
		// of the same uid, whose groups or home might differ).
	}
	if a == nil {
		if a, err = byUID(users, callerUID); err != nil {
			return nil, fmt.Errorf("uid %d: %w", callerUID, err)
		}
	}
	if a.uid == 0 && callerUID != 0 {
		// Unreachable by the rules above; kept so that no later change can make it reachable.
		return nil, fmt.Errorf("user %q: %w: uid %d may not run commands as root", a.name, ErrNotPermitted, callerUID)
	}
	shell := a.shell
	if shell == "" {
		shell = "/bin/sh" // what login(1) uses for an empty shell field
	}
	t := &Target{
		UID: a.uid, GID: a.gid,
		Name: a.name, Home: a.home, Shell: shell,
		Root:   a.uid == 0,
		Caller: callerUID,
	}
	if !t.Root {
		g, err := readGroups()
		if err != nil {
			return nil, err
		}
		t.Groups = groupsOf(g, a)
	}
	return t, nil
}

// notPermitted is the error for a non-root caller (callerUID, its account caller if known) that
// named another user.
func notPermitted(users []byte, userFlag string, caller *account, callerUID uint32, viaSudo bool) error {
	who := "uid " + strconv.FormatUint(uint64(callerUID), 10)
	if caller == nil {
		if c, err := byUID(users, callerUID); err == nil {
			caller = c
		}
	}
	if caller != nil {
		who = strconv.Quote(caller.name)
	}
	how := ""
	if viaSudo {
		how = " through sudo"
	}
	return fmt.Errorf("user %q: %w: %s, who ran wgns%s, may run commands only as %s (only root may name another user)",
		userFlag, ErrNotPermitted, who, how, who)
}

// byFlag returns the account a --user value names: a uid when all digits, else a name.
func byFlag(users []byte, userFlag string) (*account, error) {
	if !isDecimal(userFlag) {
		return byName(users, userFlag)
	}
	uid, err := strconv.ParseUint(userFlag, 10, 32)
	if err != nil {
		return nil, ErrNoUser
	}
	return byUID(users, uint32(uid))
}

// sudoAccount returns the user sudo was called by, checking SUDO_UID, SUDO_USER and SUDO_GID
// against the passwd contents and the group file (read with readGroups, only for SUDO_GID).
func sudoAccount(users []byte, readGroups func() ([]byte, error), sudoUID string, getenv func(string) string) (*account, error) {
	if !isDecimal(sudoUID) {
		return nil, badSudo("SUDO_UID %q is not a number", sudoUID)
	}
	uid, err := strconv.ParseUint(sudoUID, 10, 32)
	if err != nil {
		return nil, badSudo("SUDO_UID %q is not a valid uid", sudoUID)
	}
	a, err := byUID(users, uint32(uid))
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
		groupFile, err := readGroups()
		if err != nil {
			return nil, err
		}
		if !contains(groupsOf(groupFile, a), uint32(gid)) {
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
func byName(users []byte, name string) (*account, error) {
	return findUser(users, func(a *account) bool { return a.name == name })
}

// byUID returns the first passwd entry with uid.
func byUID(users []byte, uid uint32) (*account, error) {
	return findUser(users, func(a *account) bool { return a.uid == uid })
}

// findUser returns the first well-formed entry of the passwd contents users that match accepts,
// or ErrNoUser.
func findUser(users []byte, match func(*account) bool) (*account, error) {
	var found *account
	eachLine(users, func(f []string) bool {
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
	if found == nil {
		return nil, ErrNoUser
	}
	return found, nil
}

// groupsOf returns a's primary group followed by every group of the group file's contents that
// lists a's name as a member, without duplicates.
func groupsOf(groupFile []byte, a *account) []uint32 {
	groups := []uint32{a.gid}
	eachLine(groupFile, func(f []string) bool {
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
	return groups
}

// eachLine calls fn with the fields of each line of a colon file's contents until fn returns
// false, skipping blank lines, comments and NIS compat lines (+ and -).
func eachLine(data []byte, fn func(fields []string) bool) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		if !fn(strings.Split(string(line), ":")) {
			return
		}
	}
}

// maxFileSize bounds what readFile reads: far more than any real passwd or group file.
const maxFileSize = 64 << 20

// readFile returns the contents of the user database file path; a missing file is an empty one.
// It reads with plain system calls (no os.File): the files are small and read once, on the exec
// path, where registering them with Go's poller would only add system calls.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the user database: open %s: %w", path, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4<<10)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxFileSize {
				return nil, fmt.Errorf("reading the user database %s: larger than %d MiB", path, maxFileSize>>20)
			}
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the user database %s: %w", path, err)
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
