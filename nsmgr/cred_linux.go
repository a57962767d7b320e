//go:build !386 && !arm

package nsmgr

import "golang.org/x/sys/unix"

// The system calls that set a thread's group and user IDs (32-bit IDs).
const (
	sysSetresgid = unix.SYS_SETRESGID
	sysSetresuid = unix.SYS_SETRESUID
)
