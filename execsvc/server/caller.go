package server

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Caller is who asked for a command, as the kernel and the caller's own process say: the
// credentials of the process that connected (SO_PEERCRED, SO_PEERGROUPS; the same process must
// send the request, SCM_CREDENTIALS), and what the command must inherit from it to run as
// exactly that caller. It goes from the service to the session process as JSON.
type Caller struct {
	PID        int
	UID, GID   uint32
	Groups     []uint32
	Umask      uint32
	NoNewPrivs bool
	// Rlimits are the caller's resource limits, indexed by resource (RLIMIT_*).
	Rlimits []unix.Rlimit
}

// errRefused is wrapped by the errors that refuse a caller for what it is.
var errRefused = errors.New("refused")

// peer returns the credentials of the process at the other end of the connected socket fd when
// it connected, and a pidfd of that process (the caller closes it).
func peer(fd int) (*Caller, int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil, -1, fmt.Errorf("reading the caller's credentials: %w", err)
	}
	groups, err := peerGroups(fd)
	if err != nil {
		return nil, -1, fmt.Errorf("reading the caller's groups: %w", err)
	}
	pidfd, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	if err != nil {
		// Before Linux 6.5: a pidfd of the PID, checked below to be the same process.
		if pidfd, err = unix.PidfdOpen(int(cred.Pid), 0); err != nil {
			return nil, -1, fmt.Errorf("opening the caller's process %d: %w", cred.Pid, err)
		}
	}
	if pid, err := pidfdPID(pidfd); err != nil || pid != int(cred.Pid) {
		unix.Close(pidfd)
		return nil, -1, fmt.Errorf("the caller's process %d is gone (%v)", cred.Pid, err)
	}
	return &Caller{PID: int(cred.Pid), UID: cred.Uid, GID: cred.Gid, Groups: groups}, pidfd, nil
}

// peerGroups returns the supplementary groups of the peer of fd when it connected.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if errno == unix.ERANGE && int(n) > len(buf)*4 {
			buf = make([]uint32, n/4)
			continue
		}
		if errno != 0 {
			return nil, errno
		}
		return buf[:n/4], nil
	}
}

// pidfdPID returns the PID of the process pidfd refers to (-1 once it has exited and been
// reaped), from /proc/self/fdinfo.
func pidfdPID(pidfd int) (int, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(pidfd))
	if err != nil {
		return 0, err
	}
	v, ok := field(b, "Pid:")
	if !ok {
		return 0, errors.New("no Pid in the pidfd's fdinfo")
	}
	return strconv.Atoi(v)
}

// field returns the value of the line "key\tvalue" of a /proc file.
func field(b []byte, key string) (string, bool) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(key)); ok {
			return string(bytes.TrimSpace(v)), true
		}
	}
	return "", false
}

// more reports whether the number in the field key of the /proc status theirs is greater than
// in ours (a field that is missing counts as 0).
func more(theirs, ours []byte, key string) bool {
	t, _ := field(theirs, key)
	o, _ := field(ours, key)
	tn, _ := strconv.Atoi(t)
	on, _ := strconv.Atoi(o)
	return tn > on
}

// alive reports whether the process pidfd refers to still runs.
func alive(pidfd int) bool { return unix.PidfdSendSignal(pidfd, 0, nil, 0) == nil }

// rlimits is the number of resource limits Linux has (RLIM_NLIMITS).
const rlimits = 16

// inspect reads from the caller's process what its command must inherit (umask, no_new_privs,
// resource limits), and refuses a caller that runs confined in a way the command would escape:
// in other namespaces than the service's (a container or a sandbox, whose files, processes or
// users are not the ones wgns sees), under seccomp filters or an AppArmor profile that the
// service does not have (where the service runs in a container, its callers share its filters
// and profile, and nothing is escaped). It
// must be called while pidfd still refers to the process (it checks, after reading, that it
// still runs, so that the PID was not reused meanwhile).
func (c *Caller) inspect(pidfd int) error {
	proc := "/proc/" + strconv.Itoa(c.PID)
	for _, ns := range []string{"user", "mnt", "pid"} {
		var ours, theirs unix.Stat_t
		if err := unix.Stat("/proc/self/ns/"+ns, &ours); err != nil {
			return fmt.Errorf("reading the service's %s namespace: %w", ns, err)
		}
		if err := unix.Stat(proc+"/ns/"+ns, &theirs); err != nil {
			return fmt.Errorf("reading the %s namespace of the caller's process %d: %w", ns, c.PID, err)
		}
		if ours.Dev != theirs.Dev || ours.Ino != theirs.Ino {
			return fmt.Errorf("%w: process %d runs in a %s namespace of its own (a container or a sandbox); the command would run outside it, with the host's view of files, processes and users",
				errRefused, c.PID, map[string]string{"user": "user", "mnt": "mount", "pid": "PID"}[ns])
		}
	}
	status, err := os.ReadFile(proc + "/status")
	if err != nil {
		return fmt.Errorf("reading the caller's process %d: %w", c.PID, err)
	}
	// Confined more than the service itself is (a container confines both alike).
	own, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("reading the service's own status: %w", err)
	}
	if more(status, own, "Seccomp:") || more(status, own, "Seccomp_filters:") {
		return fmt.Errorf("%w: process %d runs under a seccomp filter the service does not (a sandbox); the command would run without it", errRefused, c.PID)
	}
	c.NoNewPrivs = false
	if v, _ := field(status, "NoNewPrivs:"); v == "1" {
		c.NoNewPrivs = true
	}
	umask, ok := field(status, "Umask:")
	if !ok {
		return fmt.Errorf("reading the umask of the caller's process %d: not in its status", c.PID)
	}
	m, err := strconv.ParseUint(umask, 8, 32)
	if err != nil {
		return fmt.Errorf("reading the umask of the caller's process %d: %w", c.PID, err)
	}
	c.Umask = uint32(m) & 0o777
	if profile, err := os.ReadFile(proc + "/attr/apparmor/current"); err == nil {
		ours, _ := os.ReadFile("/proc/self/attr/apparmor/current")
		if p := string(bytes.TrimSpace(profile)); p != "" && p != "unconfined" && p != string(bytes.TrimSpace(ours)) {
			return fmt.Errorf("%w: process %d is confined by the AppArmor profile %q; the command would run without it", errRefused, c.PID, p)
		}
	}
	limits, err := os.ReadFile(proc + "/limits")
	if err != nil {
		return fmt.Errorf("reading the resource limits of the caller's process %d: %w", c.PID, err)
	}
	if c.Rlimits, err = parseLimits(limits); err != nil {
		return fmt.Errorf("reading the resource limits of the caller's process %d: %w", c.PID, err)
	}
	if !alive(pidfd) {
		return fmt.Errorf("the caller's process %d ended", c.PID)
	}
	return nil
}

// parseLimits reads /proc/PID/limits: a header, then one line per resource in the kernel's order
// (RLIMIT_CPU, RLIMIT_FSIZE, ...), its name in a column of 26 characters, then the soft and hard
// limits ("unlimited" or a number). (prlimit would need CAP_SYS_RESOURCE to read another
// process's limits; the file needs nothing.)
func parseLimits(b []byte) ([]unix.Rlimit, error) {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) != rlimits+1 {
		return nil, fmt.Errorf("%d resources listed, want %d", len(lines)-1, rlimits)
	}
	const nameWidth = 26
	lims := make([]unix.Rlimit, rlimits)
	for i, line := range lines[1:] {
		if len(line) <= nameWidth {
			return nil, fmt.Errorf("line %q", line)
		}
		f := bytes.Fields(line[nameWidth:])
		if len(f) < 2 {
			return nil, fmt.Errorf("line %q", line)
		}
		for j, v := range [2]*uint64{&lims[i].Cur, &lims[i].Max} {
			if string(f[j]) == "unlimited" {
				*v = unix.RLIM_INFINITY
				continue
			}
			n, err := strconv.ParseUint(string(f[j]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %q: %w", line, err)
			}
			*v = n
		}
	}
	return lims, nil
}

// verifySender checks the credentials the kernel attached to the request (SCM_CREDENTIALS)
// against those of the process that connected: the request must come from that very process,
// not from one it handed its connection to.
func (c *Caller) verifySender(sent *unix.Ucred) error {
	if sent == nil {
		return fmt.Errorf("%w: the request came without the sender's credentials", errRefused)
	}
	if int(sent.Pid) != c.PID || sent.Uid != c.UID || sent.Gid != c.GID {
		return fmt.Errorf("%w: the request was sent by process %d (uid %d, gid %d), not by process %d (uid %d, gid %d), which connected; a connection to the service cannot be handed on",
			errRefused, sent.Pid, sent.Uid, sent.Gid, c.PID, c.UID, c.GID)
	}
	return nil
}
