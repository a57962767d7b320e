package units

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type fakeConn struct {
	reloads, closes int
	err             error
}

func (f *fakeConn) ReloadContext(context.Context) error { f.reloads++; return f.err }
func (f *fakeConn) Close()                              { f.closes++ }

func TestReload(t *testing.T) {
	booted := t.TempDir()
	notDir := filepath.Join(t.TempDir(), "system")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "system")

	tests := []struct {
		name       string
		bootedPath string
		connectErr error
		reloadErr  error
		wantErr    string
		noSystemd  bool
		wantCalls  int // reloads and closes
	}{
		{name: "ok", bootedPath: booted, wantCalls: 1},
		{name: "not booted", bootedPath: missing, noSystemd: true,
			wantErr: "reloading systemd units (daemon-reload): no " + missing + ": systemd is not running"},
		{name: "not a dir", bootedPath: notDir, noSystemd: true,
			wantErr: "reloading systemd units (daemon-reload): no " + notDir + ": systemd is not running"},
		{name: "no bus", bootedPath: booted, connectErr: errors.New("dial unix /run/dbus/system_bus_socket: connect: no such file or directory"),
			wantErr: "reloading systemd units (daemon-reload): connecting to systemd: dial unix /run/dbus/system_bus_socket: connect: no such file or directory"},
		{name: "refused", bootedPath: booted, reloadErr: errors.New("Access denied"), wantCalls: 1,
			wantErr: "reloading systemd units (daemon-reload): Access denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := &fakeConn{err: tt.reloadErr}
			r := reloader{bootedPath: tt.bootedPath, connect: func(context.Context) (managerConn, error) {
				if tt.connectErr != nil {
					return nil, tt.connectErr
				}
				return conn, nil
			}}
			err := r.reload(context.Background())
			if errText(err) != tt.wantErr {
				t.Errorf("error\n got: %v\nwant: %s", err, tt.wantErr)
			}
			if errors.Is(err, ErrNoSystemd) != tt.noSystemd {
				t.Errorf("errors.Is(%v, ErrNoSystemd) = %v, want %v", err, !tt.noSystemd, tt.noSystemd)
			}
			if conn.reloads != tt.wantCalls || conn.closes != tt.wantCalls {
				t.Errorf("%d reloads, %d closes; want %d of each", conn.reloads, conn.closes, tt.wantCalls)
			}
		})
	}
}

// The real Reload on a machine without systemd as PID 1 (this one, and CI's)
// must say so with the sentinel, without trying D-Bus.
func TestReloadWithoutSystemd(t *testing.T) {
	if _, err := os.Lstat("/run/systemd/system"); err == nil {
		t.Skip("systemd is running here")
	}
	if err := Reload(context.Background()); !errors.Is(err, ErrNoSystemd) {
		t.Errorf("Reload() = %v, want ErrNoSystemd", err)
	}
}

// listenNotify makes a notify socket like systemd's and points NOTIFY_SOCKET
// at it.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// receive returns the next datagram. The deadline only stops a broken test
// from hanging: a sent datagram is already queued when send returns.
func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("reading the notify socket: %v", err)
	}
	return string(buf[:n])
}

func TestNotifier(t *testing.T) {
	conn := listenNotify(t)
	n := NewNotifier()
	if !n.Enabled() {
		t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
	}
	steps := []struct {
		send func() error
		want string
	}{
		{func() error { return n.Status("bringing up work") }, "STATUS=bringing up work"},
		{n.Ready, "READY=1"},
		{func() error { return n.Status("up\nREADY=1\r\nMAINPID=1") }, "STATUS=up READY=1 MAINPID=1"},
		{n.Stopping, "STOPPING=1"},
	}
	for _, s := range steps {
		if err := s.send(); err != nil {
			t.Fatalf("sending %q: %v", s.want, err)
		}
		if got := receive(t, conn); got != s.want {
			t.Errorf("received %q, want %q", got, s.want)
		}
	}
	// NOTIFY_SOCKET stays for later messages.
	if os.Getenv("NOTIFY_SOCKET") == "" {
		t.Error("NOTIFY_SOCKET was unset")
	}
}

func TestNotifierDisabled(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	n := NewNotifier()
	if n.Enabled() {
		t.Error("Enabled() = true without NOTIFY_SOCKET")
	}
	for _, f := range []func() error{n.Ready, n.Stopping, func() error { return n.Status("x") }} {
		if err := f(); err != nil {
			t.Errorf("without NOTIFY_SOCKET: %v, want nil", err)
		}
	}
}

func TestNotifierNoListener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone")
	t.Setenv("NOTIFY_SOCKET", path)
	err := NewNotifier().Ready()
	want := `notifying the service manager of "READY=1": dial unixgram ` + path + `: connect: no such file or directory`
	if err == nil || err.Error() != want {
		t.Errorf("Ready() error\n got: %v\nwant: %s", err, want)
	}
}
