package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/execsvc"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns"
)

// fakeTunnels: records by name.
type fakeTunnels map[string]*wgns.State

func (f fakeTunnels) state(name string) (*wgns.State, error) {
	if st, ok := f[name]; ok {
		return st, nil
	}
	return nil, fmt.Errorf("reading the state of tunnel %q: %w", name, fs.ErrNotExist)
}

// fakeAccounts: users by uid, and each group's members by uid.
type fakeAccounts struct {
	users  map[uint32]string
	groups map[string][]uint32
}

func (f fakeAccounts) name(uid uint32) (string, error) {
	if n, ok := f.users[uid]; ok {
		return n, nil
	}
	return "", errors.New("unknown user")
}

func (f fakeAccounts) member(uid uint32, group string) (bool, error) {
	for _, m := range f.groups[group] {
		if m == uid {
			return true, nil
		}
	}
	return false, nil
}

func TestCheck(t *testing.T) {
	ns := nsmgr.ID{Dev: 4, Ino: 100}
	tunnels := fakeTunnels{
		"work":    {Name: "work", Ready: true, Netns: ns, Users: []string{"alice", "@desk"}},
		"nobody":  {Name: "nobody", Ready: true, Netns: ns},
		"half":    {Name: "half", Ready: false, Netns: ns, Users: []string{"alice"}},
		"rootgrp": {Name: "rootgrp", Ready: true, Netns: ns, Users: []string{"@nosuch"}},
	}
	accounts := fakeAccounts{users: map[uint32]string{1000: "alice", 1001: "bob", 1002: "carol", 1003: "desk"},
		groups: map[string][]uint32{"desk": {1002}}}
	tests := []struct {
		name  string
		tun   string
		uid   uint32
		netns nsmgr.ID
		want  string // "" when granted
		is    error
	}{
		{"named", "work", 1000, nsmgr.ID{}, "", nil},
		{"named, same namespace", "work", 1000, ns, "", nil},
		{"in a named group", "work", 1002, nsmgr.ID{}, "", nil},
		{"a user named like the group is not in it", "work", 1003, nsmgr.ID{}, `user "desk" is not granted`, errNotGranted},
		{"not named", "work", 1001, nsmgr.ID{}, `user "bob" is not granted to run programs in tunnel "work"`, errNotGranted},
		{"no Users at all", "nobody", 1000, nsmgr.ID{}, `user "alice" is not granted`, errNotGranted},
		{"a group that does not exist", "rootgrp", 1000, nsmgr.ID{}, `user "alice" is not granted`, errNotGranted},
		{"not up", "gone", 1000, nsmgr.ID{}, `tunnel "gone" is not up`, errNotUp},
		{"not ready", "half", 1000, nsmgr.ID{}, `tunnel "half" is not up: it is being set up, or is broken`, errNotUp},
		{"brought up anew", "work", 1000, nsmgr.ID{Dev: 4, Ino: 99}, `tunnel "work" was brought up anew, in another namespace`, nil},
		{"an unknown uid", "work", 4242, nsmgr.ID{}, "uid 4242: unknown user", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := check(tunnels, accounts, tt.tun, tt.uid, tt.netns)
			if tt.want == "" {
				if err != nil || got != ns {
					t.Errorf("check = %v, %v; want granted in %v", got, err, ns)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check: %v, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("check: %v does not wrap %v", err, tt.is)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	lims, err := parseLimits([]byte(`Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             96365                96365                processes 
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       96365                96365                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
`))
	if err != nil {
		t.Fatal(err)
	}
	if l := lims[unix.RLIMIT_NOFILE]; l.Cur != 1024 || l.Max != 524288 {
		t.Errorf("RLIMIT_NOFILE %+v", l)
	}
	if l := lims[unix.RLIMIT_STACK]; l.Cur != 8388608 || l.Max != unix.RLIM_INFINITY {
		t.Errorf("RLIMIT_STACK %+v", l)
	}
	if l := lims[unix.RLIMIT_RTTIME]; l.Cur != unix.RLIM_INFINITY {
		t.Errorf("RLIMIT_RTTIME %+v", l)
	}
	// This process's own file, as the kernel writes it.
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Fatal(err)
	}
	lims, err = parseLimits(b)
	if err != nil {
		t.Fatal(err)
	}
	var own unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &own)
	if lims[unix.RLIMIT_NOFILE] != own {
		t.Errorf("/proc/self/limits says NOFILE %+v, getrlimit %+v", lims[unix.RLIMIT_NOFILE], own)
	}
	for _, bad := range []string{"", "Limit\nMax cpu time              lots unlimited\n"} {
		if _, err := parseLimits([]byte(bad)); err == nil {
			t.Errorf("parseLimits(%q) succeeded", bad)
		}
	}
}

// connPair returns the service's side of a connection whose client side is client, with
// SO_PASSCRED on the service's side as the listener gives it.
func connPair(t *testing.T) (service *net.UnixConn, client int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "service")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); unix.Close(fds[1]) })
	return c.(*net.UnixConn), fds[1]
}

// readRequest takes a request from the process that connected, whole, within the deadline,
// with at most the standard files; anything else is refused.
func TestReadRequest(t *testing.T) {
	s := New(nil, nil)
	req := &execsvc.Request{Name: "work", Argv: []string{"id"}, Env: []string{"A=1"}, Dir: "/", Files: 3}
	me := &Caller{PID: os.Getpid(), UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}

	t.Run("whole, in pieces", func(t *testing.T) {
		c, client := connPair(t)
		b := req.Marshal()
		if err := unix.Sendmsg(client, b[:3], unix.UnixRights(0, 1), nil, 0); err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(50 * time.Millisecond)
			unix.Write(client, b[3:])
		}()
		got, files, err := s.readRequest(c, me)
		if err != nil {
			t.Fatal(err)
		}
		closeAll(files)
		if got.Name != "work" || len(files) != 2 {
			t.Errorf("got %+v with %d files", got, len(files))
		}
	})
	for _, tc := range []struct {
		name   string
		who    *Caller
		send   []byte
		rights []int
		want   string
	}{
		{"from another process than the one that connected", &Caller{PID: 1, UID: me.UID, GID: me.GID}, req.Marshal(), []int{0, 1},
			"the request was sent by process"},
		{"more files than it names", me, req.Marshal(), []int{0, 1, 2}, "the request names 2 standard files and has 3 attached"},
		{"files it does not have", me, req.Marshal(), nil, "the request names 2 standard files and has 0 attached"},
		{"another frame first", me, execsvc.ResizeFrame(), nil, "a frame of type 'W' and 0 bytes where a request was due"},
		{"too large", me, []byte{'R', 1, 0, 0x30, 0}, nil, "a frame of type 'R' and 3145729 bytes where a request was due"},
		{"bytes after the request", me, append(req.Marshal(), 'x'), []int{0, 1}, "bytes after the request"},
		{"hung up half way", me, req.Marshal()[:9], []int{0, 1}, "the client hung up before its request was whole"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, client := connPair(t)
			var oob []byte
			if len(tc.rights) > 0 {
				oob = unix.UnixRights(tc.rights...)
			}
			if err := unix.Sendmsg(client, tc.send, oob, nil, 0); err != nil {
				t.Fatal(err)
			}
			unix.Shutdown(client, unix.SHUT_WR)
			_, files, err := s.readRequest(c, tc.who)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if files != nil {
				t.Errorf("files returned with a refusal")
			}
		})
	}
}

// relevant: the records of tunnels and the user database matter, a lost event too; other files
// do not.
func TestRelevant(t *testing.T) {
	event := func(mask uint32, name string) []byte {
		n := (len(name) + 1 + 15) &^ 15
		b := make([]byte, unix.SizeofInotifyEvent+n)
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		ev.Mask, ev.Len = mask, uint32(n)
		copy(b[unix.SizeofInotifyEvent:], name)
		return b
	}
	for _, tc := range []struct {
		b    []byte
		want bool
	}{
		{event(unix.IN_MOVED_TO, "work.json"), true},
		{event(unix.IN_DELETE, "work.json"), true},
		{event(unix.IN_CLOSE_WRITE, "group"), true},
		{event(unix.IN_MOVED_TO, "passwd"), true},
		{event(unix.IN_CLOSE_WRITE, "work.lock"), false},
		{event(unix.IN_MOVED_TO, "resolv.conf"), false},
		{append(event(unix.IN_CLOSE_WRITE, "x.log"), event(unix.IN_MOVED_TO, "gshadow")...), false},
		{append(event(unix.IN_CLOSE_WRITE, "x.log"), event(unix.IN_MOVED_TO, "y.json")...), true},
		{event(unix.IN_Q_OVERFLOW, ""), true},
	} {
		if got := relevant(tc.b); got != tc.want {
			t.Errorf("relevant(%q) = %v", tc.b[unix.SizeofInotifyEvent:], got)
		}
	}
}

// descendants and signalTree reach a process below a child that has left (reparented here as
// this test is made its subreaper), and nothing else.
func TestTree(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skip(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	r, w, _ := os.Pipe()
	p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "sleep 60 & echo $!; exec sleep 60"},
		&os.ProcAttr{Files: []*os.File{nil, w, os.Stderr}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	fmt.Fscan(r, &grandchild)
	self := os.Getpid()
	d := descendants(self, false)
	if !contains(d, p.Pid) || !contains(d, grandchild) {
		t.Fatalf("descendants %v, want %d and %d", d, p.Pid, grandchild)
	}
	signalTree(self, unix.SIGKILL)
	p.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for unix.Kill(grandchild, 0) == nil {
		var ws unix.WaitStatus
		unix.Wait4(grandchild, &ws, unix.WNOHANG, nil)
		if time.Now().After(deadline) {
			t.Fatalf("process %d below this one was not killed", grandchild)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
