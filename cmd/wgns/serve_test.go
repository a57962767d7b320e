package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wgns/wgns/execsvc"
)

// wgns serve listens by default where the client connects.
func TestServeDefaultSocket(t *testing.T) {
	f, _ := reflect.TypeOf(ServeCmd{}).FieldByName("Socket")
	if got := f.Tag.Get("default"); got != execsvc.Socket {
		t.Errorf("wgns serve --socket defaults to %q; the client connects to %q", got, execsvc.Socket)
	}
}

// wgns serve by hand listens on a socket every user may connect to, replaces one a service that
// is gone left, and refuses a path where a service answers or where something else is.
func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	ln, err := listenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o666 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the socket is %v, %v; want a socket of mode 0666", fi.Mode(), err)
	}
	if _, err := listenUnix(path); err == nil || !strings.Contains(err.Error(), "a service answers there already") {
		t.Errorf("a second service on the same socket: %v", err)
	}
	// A socket whose service is gone (closed without removing it).
	ln.SetUnlinkOnClose(false)
	ln.Close()
	ln, err = listenUnix(path)
	if err != nil {
		t.Fatalf("replacing a stale socket: %v", err)
	}
	ln.Close()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := listenUnix(file); err == nil || !strings.Contains(err.Error(), "it exists and is not a socket; leaving it alone") {
		t.Errorf("a regular file: %v", err)
	}
}
