package config

import (
	"reflect"
	"testing"
)

func TestParseUsers(t *testing.T) {
	const ns = "[Namespace]\n" // line 7
	tests := []struct {
		name  string
		lines string // after [Namespace], from line 8
		want  []User
		err   string
	}{
		{name: "users and groups, commas and spaces", lines: "Users = alice, @wgns bob\n",
			want: []User{{Name: "alice"}, {Name: "wgns", Group: true}, {Name: "bob"}}},
		{name: "repeatable", lines: "Users = alice\nusers=@video\n",
			want: []User{{Name: "alice"}, {Name: "video", Group: true}}},
		{name: "what useradd --badname takes", lines: "Users = Alice.B, _svc, a-b, host$, 0day, @x_1\n",
			want: []User{{Name: "Alice.B"}, {Name: "_svc"}, {Name: "a-b"}, {Name: "host$"}, {Name: "0day"}, {Name: "x_1", Group: true}}},
		{name: "a user and a group of the same name", lines: "Users = wgns, @wgns\n",
			want: []User{{Name: "wgns"}, {Name: "wgns", Group: true}}},
		{name: "the group root is a group like others", lines: "Users = @root\n",
			want: []User{{Name: "root", Group: true}}},
		{name: "empty line", lines: "Users =\n", want: nil},

		{name: "listed twice", lines: "Users = alice\nUsers = bob, alice\n",
			err: "wg0.conf:9: Users alice is listed twice (first on line 8)"},
		{name: "group listed twice", lines: "Users = @wgns @wgns\n",
			err: "wg0.conf:8: Users @wgns is listed twice (first on line 8)"},
		{name: "root", lines: "Users = root\n",
			err: `wg0.conf:8: invalid Users entry "root": root needs no grant: it runs wgns exec itself, without the service`},
		{name: "a uid", lines: "Users = 1000\n",
			err: `wg0.conf:8: invalid Users entry "1000": a number; name the user or group (IDs are not accepted)`},
		{name: "a gid", lines: "Users = @100\n",
			err: `wg0.conf:8: invalid Users entry "@100": a number; name the user or group (IDs are not accepted)`},
		{name: "a lone @", lines: "Users = @\n",
			err: `wg0.conf:8: invalid Users entry "@": no name (write USER or @GROUP)`},
		{name: "a path", lines: "Users = ../etc\n",
			err: `wg0.conf:8: invalid Users entry "../etc": a name has only letters, digits and _.- (and may end in $)`},
		{name: "a dash first", lines: "Users = -alice\n",
			err: `wg0.conf:8: invalid Users entry "-alice": a name cannot start with -`},
		{name: "dots", lines: "Users = ..\n",
			err: `wg0.conf:8: invalid Users entry "..": not a name`},
		{name: "a $ inside", lines: "Users = a$b\n",
			err: `wg0.conf:8: invalid Users entry "a$b": a name has only letters, digits and _.- (and may end in $)`},
		{name: "only a $", lines: "Users = $\n",
			err: `wg0.conf:8: invalid Users entry "$": a name has only letters, digits and _.- (and may end in $)`},
		{name: "sudoers' ALL", lines: "Users = ALL, %wgns\n",
			err: `wg0.conf:8: invalid Users entry "%wgns": a name has only letters, digits and _.- (and may end in $)`},
		{name: "too long", lines: "Users = abcdefghijabcdefghijabcdefghijabc\n",
			err: `wg0.conf:8: invalid Users entry "abcdefghijabcdefghijabcdefghijabc": longer than 32 characters`},
		{name: "a key is not shown", lines: "Users = @{A}\n",
			err: `wg0.conf:8: invalid Users entry (value not shown: it looks like a key): longer than 32 characters`},
		{name: "in the wrong section", lines: "", err: "wg0.conf:4: Users belongs in [Namespace], not in [Interface]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := ifc + peerB + ns + tt.lines
			if tt.name == "in the wrong section" {
				conf = ifc + "Users = alice\n" + peerB
			}
			input := expand(t, conf)
			cfg, err := newLoader(fakeFS{}, 0).parse("wg0.conf", []byte(input))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v\nwant %s", err, tt.err)
				}
				assertNoKeys(t, err.Error(), input)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Namespace.Users, tt.want) {
				t.Errorf("Users = %v, want %v", cfg.Namespace.Users, tt.want)
			}
		})
	}
}

func TestUserString(t *testing.T) {
	for _, tt := range []struct {
		u    User
		want string
	}{{User{Name: "alice"}, "alice"}, {User{Name: "wgns", Group: true}, "@wgns"}} {
		if got := tt.u.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.u, got, tt.want)
		}
		if back, why := ParseUser(tt.want); why != "" || back != tt.u {
			t.Errorf("ParseUser(%q) = %#v, %q", tt.want, back, why)
		}
	}
}
