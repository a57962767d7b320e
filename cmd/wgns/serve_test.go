package main

import (
	"reflect"
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
