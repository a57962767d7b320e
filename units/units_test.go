package units

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/google/go-cmp/cmp"

	"github.com/wgns/wgns/execsvc"
	"github.com/wgns/wgns/internal/golden"
)

func TestTemplate(t *testing.T) {
	tests := []struct {
		binary string
		golden string
	}{
		{"/opt/wgns/bin/wgns", "template-opt"},
		// Quoted: a space, a double quote, a backslash, % and $.
		{`/opt/my tools/wg"ns\%i$HOME`, "template-quoted"},
	}
	for _, tt := range tests {
		t.Run(tt.golden+"/"+tt.binary, func(t *testing.T) {
			golden.Check(t, tt.golden, Template(tt.binary))
			golden.Check(t, strings.Replace(tt.golden, "template", "service", 1), Service(tt.binary))
		})
	}
}

// The shipped file is what Template makes for the default binary, and the
// text Template replaces occurs in it exactly once.
func TestShippedTemplate(t *testing.T) {
	shipped, err := os.ReadFile(TemplateName)
	if err != nil {
		t.Fatal(err)
	}
	for _, binary := range []string{"", DefaultBinary} {
		if diff := cmp.Diff(string(shipped), Template(binary)); diff != "" {
			t.Errorf("Template(%q) differs from the shipped %s (-shipped +got):\n%s", binary, TemplateName, diff)
		}
	}
	if n := strings.Count(string(shipped), execPlaceholder); n != 1 {
		t.Errorf("%s holds %q %d times, want 1", TemplateName, execPlaceholder, n)
	}
	shippedNetns, err := os.ReadFile(NetnsTemplateName)
	if err != nil {
		t.Fatal(err)
	}
	shippedService, err := os.ReadFile(ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(shippedService), Service("")); diff != "" {
		t.Errorf("Service(\"\") differs from the shipped %s (-shipped +got):\n%s", ServiceName, diff)
	}
	if n := strings.Count(string(shippedService), execPlaceholder); n != 1 {
		t.Errorf("%s holds %q %d times, want 1", ServiceName, execPlaceholder, n)
	}
	shippedSocket, err := os.ReadFile(SocketName)
	if err != nil {
		t.Fatal(err)
	}
	files := TemplateFiles("/x/wgns")
	want := map[string]string{
		TemplateName:      Template("/x/wgns"),
		NetnsTemplateName: string(shippedNetns),
		SocketName:        string(shippedSocket),
		ServiceName:       Service("/x/wgns"),
	}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("TemplateFiles (-want +got):\n%s", diff)
	}
}

// The settings the design depends on, read back with a unit file parser, so a
// comment or a reordering cannot hide a lost line.
func TestTemplateOptions(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{Template("/opt/wgns"), []string{
			"Unit.Wants=network-online.target",
			"Unit.After=network-online.target nss-lookup.target",
			"Service.Type=notify",
			"Service.NotifyAccess=main",
			"Service.ExecStart=/opt/wgns up --foreground %i",
			"Service.KillMode=mixed",
			"Service.Restart=on-failure",
			"Service.RestartSec=2",
			"Install.WantedBy=multi-user.target",
		}},
		{Socket(), []string{
			"Socket.ListenStream=" + execsvc.Socket, // where the client connects
			"Socket.SocketMode=0666",
			"Socket.PassCredentials=yes",
			"Install.WantedBy=sockets.target",
		}},
		{Service("/opt/wgns"), []string{
			"Unit.Requires=wgns.socket",
			"Unit.After=wgns.socket",
			"Service.ExecStart=/opt/wgns serve",
			"Service.KillMode=mixed",
		}},
		{NetnsTemplate(), []string{
			"Unit.BindsTo=wgns@%i.service",
			"Unit.After=wgns@%i.service",
			"Service.Type=oneshot",
			"Service.RemainAfterExit=yes",
			"Service.NetworkNamespacePath=/run/netns/%I",
			"Service.PrivateTmp=yes",
			"Service.PrivateIPC=yes",
			"Service.ExecStart=/bin/true",
		}},
	}
	for _, tt := range tests {
		opts, err := unit.DeserializeOptions(strings.NewReader(tt.file))
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, o := range opts {
			have[o.Section+"."+o.Name+"="+o.Value] = true
		}
		for _, w := range tt.want {
			if !have[w] {
				t.Errorf("missing %s in:\n%s", w, tt.file)
			}
		}
	}
}

func TestInstanceName(t *testing.T) {
	tests := []struct {
		name, instance, netns string
	}{
		{"wg0", `wgns@wg0.service`, `wgns-netns@wg0.service`},
		{"my-vpn", `wgns@my\x2dvpn.service`, `wgns-netns@my\x2dvpn.service`},
		{"a+b=c.d", `wgns@a\x2bb\x3dc.d.service`, `wgns-netns@a\x2bb\x3dc.d.service`},
		{"home_vpn.2", `wgns@home_vpn.2.service`, `wgns-netns@home_vpn.2.service`},
		{".x", `wgns@\x2ex.service`, `wgns-netns@\x2ex.service`},
	}
	escape, _ := exec.LookPath("systemd-escape")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := InstanceName(tt.name); got != tt.instance {
				t.Errorf("InstanceName(%q) = %q, want %q", tt.name, got, tt.instance)
			}
			if got := NetnsInstanceName(tt.name); got != tt.netns {
				t.Errorf("NetnsInstanceName(%q) = %q, want %q", tt.name, got, tt.netns)
			}
			// What %I gives back.
			inst := strings.TrimSuffix(strings.TrimPrefix(tt.instance, "wgns@"), ".service")
			if got := unit.UnitNameUnescape(inst); got != tt.name {
				t.Errorf("unescaping %q = %q, want %q", inst, got, tt.name)
			}
			if escape == "" {
				return
			}
			// systemd's own escaping agrees, both ways.
			out, err := exec.Command(escape, "--template=wgns@.service", "--", tt.name).Output()
			if err != nil {
				t.Fatalf("systemd-escape: %v", err)
			}
			if got := strings.TrimSpace(string(out)); got != tt.instance {
				t.Errorf("systemd-escape --template gives %q, InstanceName %q", got, tt.instance)
			}
			out, err = exec.Command(escape, "--unescape", "--instance", "--", tt.instance).Output()
			if err != nil {
				t.Fatalf("systemd-escape --unescape: %v", err)
			}
			if got := strings.TrimSpace(string(out)); got != tt.name {
				t.Errorf("systemd-escape --unescape --instance %q = %q, want %q", tt.instance, got, tt.name)
			}
		})
	}
}

func TestParseStyle(t *testing.T) {
	tests := []struct {
		in      string
		want    Style
		wantErr string
	}{
		{"path", StylePath, ""},
		{"joins", StyleJoins, ""},
		{"", "", `unknown drop-in style "": use "path" or "joins"`},
		{"Path", "", `unknown drop-in style "Path": use "path" or "joins"`},
	}
	for _, tt := range tests {
		got, err := ParseStyle(tt.in)
		if got != tt.want || errText(err) != tt.wantErr {
			t.Errorf("ParseStyle(%q) = %q, %q; want %q, %q", tt.in, got, errText(err), tt.want, tt.wantErr)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDropIn(t *testing.T) {
	tests := []struct {
		golden, name, unit string
		style              Style
	}{
		{"dropin-path", "work", "transmission-daemon.service", StylePath},
		{"dropin-joins", "work", "transmission-daemon.service", StyleJoins},
		{"dropin-path-escaped", "my-vpn", `foo@bar\x2dbaz.service`, StylePath},
		{"dropin-joins-escaped", "a+b=c.d", "foo@.service", StyleJoins},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := DropIn(tt.name, tt.unit, tt.style)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tt.golden, got)
			// Parsed back, it holds what the serialiser was given.
			if _, err := unit.DeserializeOptions(strings.NewReader(got)); err != nil {
				t.Errorf("drop-in does not parse: %v", err)
			}
		})
	}
}

func TestDropInRefuses(t *testing.T) {
	tests := []struct {
		name, unit string
		style      Style
		sentinel   error
		wantErr    string
	}{
		{"", "foo.service", StylePath, ErrInvalidName, "invalid tunnel name: the name is empty"},
		{"..", "foo.service", StylePath, ErrInvalidName, `invalid tunnel name "..": not . or ..`},
		{"a/b", "foo.service", StylePath, ErrInvalidName, `invalid tunnel name "a/b": '/' is not allowed; use letters, digits and _=+.-`},
		{"a b", "foo.service", StylePath, ErrInvalidName, `invalid tunnel name "a b": ' ' is not allowed; use letters, digits and _=+.-`},
		{"a%i", "foo.service", StylePath, ErrInvalidName, `invalid tunnel name "a%i": '%' is not allowed; use letters, digits and _=+.-`},
		{"a:b", "foo.service", StylePath, ErrInvalidName, `invalid tunnel name "a:b": ':' is not allowed; use letters, digits and _=+.-`},
		{"wg0", "", StylePath, ErrInvalidUnit, `invalid unit name: the name is empty; name a service like "transmission-daemon.service"`},
		{"wg0", "transmission-daemon", StylePath, ErrInvalidUnit, `invalid unit name "transmission-daemon": not a service; name one like "transmission-daemon.service" or "foo@bar.service"`},
		{"wg0", "foo.socket", StylePath, ErrInvalidUnit, `invalid unit name "foo.socket": not a service; name one like "transmission-daemon.service" or "foo@bar.service"`},
		{"wg0", ".service", StylePath, ErrInvalidUnit, `invalid unit name ".service": not a service; name one like "transmission-daemon.service" or "foo@bar.service"`},
		{"wg0", "../foo.service", StylePath, ErrInvalidUnit, `invalid unit name "../foo.service": '/' is not allowed; systemd allows letters, digits and :_.\@- (see systemd-escape)`},
		{"wg0", "my app.service", StylePath, ErrInvalidUnit, `invalid unit name "my app.service": ' ' is not allowed; systemd allows letters, digits and :_.\@- (see systemd-escape)`},
		{"wg0", "a+b.service", StylePath, ErrInvalidUnit, `invalid unit name "a+b.service": '+' is not allowed; systemd allows letters, digits and :_.\@- (see systemd-escape)`},
		{"wg0", "@foo.service", StylePath, ErrInvalidUnit, `invalid unit name "@foo.service": nothing before the @`},
		{"wg0", strings.Repeat("a", 248) + ".service", StylePath, ErrInvalidUnit, `invalid unit name "` + strings.Repeat("a", 248) + `.service": longer than 255 characters`},
		{"wg0", `wgns@wg0.service`, StylePath, ErrInvalidUnit, `invalid unit name "wgns@wg0.service": a unit of wgns itself cannot be confined to a tunnel`},
		{"wg0", `wgns-netns@wg0.service`, StyleJoins, ErrInvalidUnit, `invalid unit name "wgns-netns@wg0.service": a unit of wgns itself cannot be confined to a tunnel`},
		{"wg0", "foo.service", "both", nil, `unknown drop-in style "both": use "path" or "joins"`},
	}
	for _, tt := range tests {
		got, err := DropIn(tt.name, tt.unit, tt.style)
		if err == nil {
			t.Errorf("DropIn(%q, %q, %q) = %q, want an error", tt.name, tt.unit, tt.style, got)
			continue
		}
		if err.Error() != tt.wantErr {
			t.Errorf("DropIn(%q, %q, %q) error\n got: %v\nwant: %s", tt.name, tt.unit, tt.style, err, tt.wantErr)
		}
		if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
			t.Errorf("DropIn(%q, %q, %q) error %v is not %v", tt.name, tt.unit, tt.style, err, tt.sentinel)
		}
	}
	// The longest name systemd accepts is accepted.
	if _, err := DropIn("wg0", strings.Repeat("a", 247)+".service", StylePath); err != nil {
		t.Errorf("255-character unit name refused: %v", err)
	}
}
