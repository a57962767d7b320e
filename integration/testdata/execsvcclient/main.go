// Command execsvcclient speaks to the wgns exec service the way a hostile local user could: it
// forges credentials, hands a connection to another process, floods the socket, sends nothing,
// or sends what is not the protocol. The integration tests run it as real users of the world.
//
//	execsvcclient forge UID GID PID NAME CMD...  send a request claiming these credentials
//	execsvcclient pass LISTENER                   connect, hand the connection to the process at LISTENER, wait for stdin to close
//	execsvcclient receive LISTENER NAME CMD...    take a connection from LISTENER's first client, send a request on it
//	execsvcclient idle                            connect, send nothing, report when the service hangs up
//	execsvcclient flood N                         hold N connections that send nothing until stdin closes
//	execsvcclient big                             announce a request larger than the service accepts
//	execsvcclient fds NAME CMD...                 attach more descriptors than the standard files
//	execsvcclient garbage                         send bytes that are not the protocol
//	execsvcclient seccomp CMD...                  run CMD under a seccomp filter (that allows everything), as a sandbox would
//
// It prints one line per outcome, "answer: CODE MESSAGE" for the service's answer.
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/execsvc"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: execsvcclient MODE ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "forge":
		uid, _ := strconv.Atoi(args[0])
		gid, _ := strconv.Atoi(args[1])
		pid, _ := strconv.Atoi(args[2])
		fd := connect()
		req := request(args[3], args[4:])
		oob := unix.UnixCredentials(&unix.Ucred{Pid: int32(pid), Uid: uint32(uid), Gid: uint32(gid)})
		if err := unix.Sendmsg(fd, req.Marshal(), oob, nil, 0); err != nil {
			fmt.Printf("sendmsg: %v\n", err)
			return
		}
		answer(fd)
	case "pass":
		fd := connect()
		c, err := net.Dial("unix", args[0])
		if err != nil {
			fail(err.Error())
		}
		f, _ := c.(*net.UnixConn).File()
		if err := unix.Sendmsg(int(f.Fd()), []byte("x"), unix.UnixRights(fd), nil, 0); err != nil {
			fail("passing the connection: " + err.Error())
		}
		fmt.Println("passed")
		b := make([]byte, 1)
		os.Stdin.Read(b) // stay alive: the process that connected is still there
	case "receive":
		os.Remove(args[0])
		l, err := net.Listen("unix", args[0])
		if err != nil {
			fail(err.Error())
		}
		os.Chmod(args[0], 0o777)
		fmt.Println("listening")
		c, err := l.Accept()
		if err != nil {
			fail(err.Error())
		}
		f, _ := c.(*net.UnixConn).File()
		b := make([]byte, 1)
		oob := make([]byte, 64)
		_, oobn, _, _, err := unix.Recvmsg(int(f.Fd()), b, oob, 0)
		if err != nil {
			fail(err.Error())
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			fail(fmt.Sprintf("no connection received: %v", err))
		}
		req := request(args[1], args[2:])
		if err := unix.Sendmsg(fds[0], req.Marshal(), nil, nil, 0); err != nil {
			fmt.Printf("sendmsg: %v\n", err)
			return
		}
		answer(fds[0])
	case "idle":
		fd := connect()
		start := time.Now()
		answer(fd)
		fmt.Printf("hung up after %.0f s\n", time.Since(start).Seconds())
	case "flood":
		n, _ := strconv.Atoi(args[0])
		ok := 0
		for i := 0; i < n; i++ {
			if _, err := tryConnect(); err == nil {
				ok++
			}
		}
		fmt.Printf("connected %d\n", ok)
		b := make([]byte, 1)
		os.Stdin.Read(b)
	case "big":
		fd := connect()
		h := []byte{execsvc.FrameRequest, 0, 0, 0, 0}
		size := uint32(execsvc.MaxRequest + 1)
		h[1], h[2], h[3], h[4] = byte(size), byte(size>>8), byte(size>>16), byte(size>>24)
		if err := unix.Sendmsg(fd, h, nil, nil, 0); err != nil {
			fail(err.Error())
		}
		answer(fd)
	case "fds":
		fd := connect()
		req := request(args[0], args[1:])
		req.Files = 7
		if err := unix.Sendmsg(fd, req.Marshal(), unix.UnixRights(0, 1, 2, 0), nil, 0); err != nil {
			fmt.Printf("sendmsg: %v\n", err)
			return
		}
		answer(fd)
	case "seccomp":
		// no_new_privs and a seccomp filter belong to the thread that sets them, and execve
		// passes on those of the thread that calls it: all three on one thread (the goroutine
		// could move between them, and the command then ran unfiltered, now and then).
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fail(err.Error())
		}
		allow := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
		prog := unix.SockFprog{Len: 1, Filter: &allow[0]}
		if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
			fail("seccomp: " + err.Error())
		}
		if err := unix.Exec(args[0], args, os.Environ()); err != nil {
			fail(err.Error())
		}
	case "garbage":
		fd := connect()
		unix.Sendmsg(fd, []byte("GET / HTTP/1.0\r\n\r\n"), nil, nil, 0)
		answer(fd)
	default:
		fail("unknown mode " + os.Args[1])
	}
}

func request(name string, argv []string) *execsvc.Request {
	dir, _ := os.Getwd()
	return &execsvc.Request{Name: name, Argv: argv, Env: os.Environ(), Dir: dir}
}

func tryConnect() (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: execsvc.Socket}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func connect() int {
	fd, err := tryConnect()
	if err != nil {
		fail("connecting: " + err.Error())
	}
	return fd
}

// answer prints the service's answer: the exit frame's code and message, or how the
// connection ended.
func answer(fd int) {
	var got []byte
	b := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, b)
		if n > 0 {
			got = append(got, b[:n]...)
		}
		if err != nil || n == 0 {
			break
		}
	}
	for len(got) >= execsvc.HeaderSize {
		typ, n := execsvc.Header(got)
		if int(n) > len(got)-execsvc.HeaderSize {
			break
		}
		p := got[execsvc.HeaderSize : execsvc.HeaderSize+int(n)]
		got = got[execsvc.HeaderSize+int(n):]
		switch typ {
		case execsvc.FrameStarted:
			fmt.Println("started")
		case execsvc.FrameExit:
			e, _ := execsvc.ParseExit(p)
			fmt.Printf("answer: %d %s\n", e.Code, e.Message)
			return
		}
	}
	fmt.Println("closed without an answer")
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "execsvcclient:", msg)
	os.Exit(2)
}
