//go:build 386 || arm

package nsmgr

import "golang.org/x/sys/unix"

// The system calls that set a thread's group and user IDs: on these architectures the plain
// ones take 16-bit IDs.
const (
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
