package execsvc

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []*Request{
		{Name: "work", Argv: []string{"curl", "-s", "https://example.net/"}, Env: []string{"HOME=/home/alice", "EMPTY="}, Dir: "/home/alice", Flags: FlagNoNewPrivs | FlagBackground, Files: 5},
		{Name: "w", Argv: []string{""}, Env: nil, Dir: ""},
		{Name: "big", Argv: []string{strings.Repeat("x", 1<<20)}, Env: []string{strings.Repeat("y=", 1000)}},
	} {
		b := r.Marshal()
		typ, n := Header(b)
		if typ != FrameRequest || int(n) != len(b)-HeaderSize {
			t.Fatalf("header %q %d for %d bytes", typ, n, len(b))
		}
		got, err := ParseRequest(b[HeaderSize:])
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(r, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
	}
}

// A payload that is not a request is refused, whatever it holds: nothing is read past its end,
// and no count makes the parser allocate more than the payload could hold.
func TestParseRequestRefuses(t *testing.T) {
	good := (&Request{Name: "work", Argv: []string{"id"}, Env: []string{"A=1"}, Dir: "/"}).Marshal()[HeaderSize:]
	tests := []struct {
		name string
		p    []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"another version", append([]byte{2, 0, 0, 0}, good[4:]...), "version 2, this wgns speaks 1"},
		{"cut short", good[:len(good)-1], "a string longer than the frame"},
		{"bytes after the end", append(append([]byte{}, good...), 0), "bytes after the end"},
		{"a string longer than the frame", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, "a string longer than the frame"},
		{"a list of a billion", append(append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, 0, 0, 0, 0, 0, 0, 0), 0, 0xca, 0x9a, 0x3b), "a list longer than the frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRequest(tt.p)
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrProtocol saying %q", err, tt.want)
			}
		})
	}
}

func TestExitRoundTrip(t *testing.T) {
	for _, e := range []Exit{{Code: 0}, {Code: 130, Signal: 2}, {Code: 125, Message: "tunnel \"x\" is not up"},
		{Code: 143, Signal: 15, Message: strings.Repeat("m", 2*MaxFrame)}} {
		b := e.Marshal()
		typ, n := Header(b)
		if typ != FrameExit || n > MaxFrame {
			t.Fatalf("header %q %d", typ, n)
		}
		got, err := ParseExit(b[HeaderSize:])
		if err != nil {
			t.Fatal(err)
		}
		want := e
		if len(want.Message) > MaxFrame-64 {
			want.Message = want.Message[:MaxFrame-64] // cut to fit a frame
		}
		if got != want {
			t.Errorf("round trip %+v, want %+v", got, want)
		}
	}
	if s, err := ParseSignal(SignalFrame(15)[HeaderSize:]); err != nil || s != 15 {
		t.Errorf("signal frame: %d, %v", s, err)
	}
}

// fakeService listens at a socket of the test's, reads one request as the service would, and
// answers with the frames answer returns.
func fakeService(t *testing.T, answer func(fd int, req *Request, rights []int, cred *unix.Ucred) [][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { unix.Close(lfd); <-done })
	go func() {
		defer close(done)
		fd, _, err := unix.Accept(lfd)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		buf := make([]byte, 1<<16)
		oob := make([]byte, 256)
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
		if err != nil {
			t.Error(err)
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		var rights []int
		var cred *unix.Ucred
		for i := range msgs {
			if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				rights = append(rights, fds...)
			} else if c, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
				cred = c
			}
		}
		req, err := ParseRequest(buf[HeaderSize:n])
		if err != nil {
			t.Error(err)
			return
		}
		for _, f := range answer(fd, req, rights, cred) {
			unix.Write(fd, f)
		}
		for _, r := range rights {
			unix.Close(r)
		}
	}()
	return path
}

// The client sends the request with its own credentials and its open standard files, and
// returns the service's answer; signals it gets while the command runs reach the service.
func TestRunClient(t *testing.T) {
	var got *Request
	var cred *unix.Ucred
	var nfds int
	var sig uint32
	path := fakeService(t, func(fd int, req *Request, rights []int, c *unix.Ucred) [][]byte {
		got, cred, nfds = req, c, len(rights)
		unix.Write(fd, StartedFrame())
		// The client passes on a signal it gets once the command runs.
		syscall.Kill(os.Getpid(), syscall.SIGUSR1)
		h := make([]byte, HeaderSize+4)
		if _, err := unix.Read(fd, h); err == nil {
			sig, _ = ParseSignal(h[HeaderSize:])
		}
		return [][]byte{Exit{Code: 7, Message: "done"}.Marshal()}
	})
	req := &Request{Name: "work", Argv: []string{"id"}, Env: []string{"A=1"}, Dir: "/"}
	e, err := run(path, req)
	if err != nil {
		t.Fatal(err)
	}
	if e != (Exit{Code: 7, Message: "done"}) {
		t.Errorf("exit %+v", e)
	}
	if got == nil || got.Name != "work" || !reflect.DeepEqual(got.Argv, []string{"id"}) || got.Files != 7 || nfds != 3 {
		t.Errorf("the service got %+v with %d descriptors", got, nfds)
	}
	if cred == nil || int(cred.Pid) != os.Getpid() || cred.Uid != uint32(os.Getuid()) {
		t.Errorf("the service got credentials %+v, want this process's", cred)
	}
	if sig != uint32(syscall.SIGUSR1) {
		t.Errorf("the service got signal %d, want SIGUSR1", sig)
	}
}

// No service: ErrNoService. A service that hangs up without an answer: an error, not an exit.
func TestRunClientFailures(t *testing.T) {
	if _, err := run(filepath.Join(t.TempDir(), "none.sock"), &Request{Name: "w", Argv: []string{"id"}}); !errors.Is(err, ErrNoService) {
		t.Errorf("no socket: %v, want ErrNoService", err)
	}
	path := fakeService(t, func(int, *Request, []int, *unix.Ucred) [][]byte { return nil })
	if e, err := run(path, &Request{Name: "w", Argv: []string{"id"}}); err == nil || !strings.Contains(err.Error(), "broke off before the command's end") {
		t.Errorf("a service that hangs up: %+v, %v", e, err)
	}
}
