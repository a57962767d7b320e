package doc

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A completion world: a directory holding the generated scripts and a fake "tiny" that lists
// dynamic names as the real program would, and a working directory with a few files.
type compWorld struct {
	bin  string // holds the fake tiny
	prog string // its path
	work string // the working directory: x.conf, y.txt, sub/
	dir  string // the generated scripts: tiny.bash, _tiny, tiny.fish
}

// fakeTiny answers `tiny __complete KIND` as wgns does, and fails for anything else.
const fakeTiny = `#!/bin/sh
[ "$1" = __complete ] || exit 2
case $2 in
tunnels) printf '%s\n' home work work2 ;;
configs) printf '%s\n' home office ;;
*) exit 2 ;;
esac
`

func newCompWorld(t *testing.T) *compWorld {
	t.Helper()
	w := &compWorld{bin: t.TempDir(), work: t.TempDir(), dir: t.TempDir()}
	w.prog = filepath.Join(w.bin, "tiny")
	if err := os.WriteFile(w.prog, []byte(fakeTiny), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"x.conf", "y.txt", "sub/z.conf"} {
		p := filepath.Join(w.work, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := tinySpec(t)
	for name, gen := range map[string]func(*bytes.Buffer) error{
		"tiny.bash": func(b *bytes.Buffer) error { return Bash(b, s) },
		"_tiny":     func(b *bytes.Buffer) error { return Zsh(b, s) },
		"tiny.fish": func(b *bytes.Buffer) error { return Fish(b, s) },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(w.dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// needShell skips the test when a shell is not installed (make deps installs them all).
func needShell(t *testing.T, sh string) {
	t.Helper()
	if _, err := exec.LookPath(sh); err != nil {
		t.Skipf("%s is not installed (make deps installs it)", sh)
	}
}

// compCase is a command line with the cursor at its end, and the candidates a shell must offer.
type compCase struct {
	line string // the words before the cursor, then the word at the cursor, split at spaces
	want []string
}

// Cases every shell must answer alike.
var commonCases = []compCase{
	{"tiny ", []string{"down", "run", "unit", "up"}},
	{"tiny d", []string{"down"}},
	{"tiny sec", nil}, // hidden commands are not offered
	{"tiny down ", []string{"home", "work", "work2"}},
	{"tiny down w", []string{"work", "work2"}},
	{"tiny down --grace 5s w", []string{"work", "work2"}},
	{"tiny -v down --no-color ", []string{"home", "work", "work2"}},
	{"tiny down work ", nil}, // down takes one argument
	{"tiny unit ", []string{"install", "show"}},
	{"tiny unit install --style ", []string{"joins", "path"}},
	{"tiny unit install --style j", []string{"joins"}},
	{"tiny unit install --style joins ", []string{"home", "work", "work2"}},
	{"tiny unit show h", []string{"home"}},
	{"tiny run h", []string{"home"}},
	{"tiny run -u roo", []string{"root"}},
	{"tiny run --user roo", []string{"root"}},
	{"tiny run -u root w", []string{"work", "work2"}},
	{"tiny up ", []string{"home", "office", "sub/", "x.conf"}},
	{"tiny up --dry-run o", []string{"office"}},
	{"tiny up x", []string{"x.conf"}},
	{"tiny up --log ", []string{"sub/", "x.conf", "y.txt"}},
	{"tiny run work -- ech", []string{"echo"}},
	{"tiny run work ech", []string{"echo"}},
}

// normalise sorts candidates and drops duplicates, and the slash that some shells add to a
// directory.
func normalise(c []string) []string {
	var out []string
	for _, s := range c {
		if s != "" {
			out = append(out, strings.TrimSuffix(s, "/"))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// contains reports whether every one of want is among got (for command names, where the
// machine's PATH adds more).
func containsAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

func checkCase(t *testing.T, shell string, tc compCase, got []string) {
	t.Helper()
	got = normalise(got)
	if strings.Contains(tc.line, "ech") {
		if !containsAll(got, tc.want) {
			t.Errorf("%s: %q offers %q, want %q among them", shell, tc.line, got, tc.want)
		}
		return
	}
	if !slices.Equal(got, normalise(tc.want)) {
		t.Errorf("%s: %q offers %q, want %q", shell, tc.line, got, normalise(tc.want))
	}
}

// bashComplete runs the bash completion function on words (the last one is at the cursor)
// and returns COMPREPLY. With loadBC, bash-completion is loaded first.
func (w *compWorld) bashComplete(t *testing.T, loadBC bool, words []string) []string {
	t.Helper()
	script := `
[ -n "$LOAD_BC" ] && . /usr/share/bash-completion/bash_completion
. "$SCRIPT"
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
_tiny
printf '%s\n' "${COMPREPLY[@]}"
`
	words = append([]string{w.prog}, words[1:]...)
	cmd := exec.Command("bash", append([]string{"--norc", "--noprofile", "-c", script, "bash"}, words...)...)
	cmd.Dir = w.work
	cmd.Env = append(os.Environ(), "SCRIPT="+filepath.Join(w.dir, "tiny.bash"))
	if loadBC {
		cmd.Env = append(cmd.Env, "LOAD_BC=1")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("bash completion of %q: %v\n%s%s", words, err, out, stderr.String())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestBashCompletes(t *testing.T) {
	needShell(t, "bash")
	w := newCompWorld(t)
	cases := append(slices.Clone(commonCases),
		// bash splits --style=j at "=" (COMP_WORDBREAKS): the words are --style, = and j.
		compCase{"tiny unit install --style = j", []string{"joins"}},
		compCase{"tiny unit install --style =", []string{"joins", "path"}},
		// With "=" not a word break, --style=j is one word.
		compCase{"tiny unit install --style=j", []string{"--style=joins"}},
		compCase{"tiny --", []string{"--help", "--verbose"}},
		compCase{"tiny down --", []string{"--color", "--grace", "--help", "--no-color", "--verbose"}},
		compCase{"tiny run -", []string{"--help", "--user", "--verbose", "-h", "-u", "-v"}},
		compCase{"tiny unit install --dir s", []string{"sub/"}},
		// The command's own arguments: files, without bash-completion.
		compCase{"tiny run work -- ls x", []string{"x.conf"}},
	)
	for _, tc := range cases {
		checkCase(t, "bash", tc, w.bashComplete(t, false, strings.Split(tc.line, " ")))
	}
}

// With bash-completion loaded, the command after exec's NAME is completed by its own
// completion: here tiny's, found through the `complete` it registered.
func TestBashCompletesCommandWithBashCompletion(t *testing.T) {
	needShell(t, "bash")
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
		t.Skip("bash-completion is not installed (make deps installs it)")
	}
	w := newCompWorld(t)
	for _, tc := range []compCase{
		{"tiny run work -- tiny d", []string{"down"}},
		{"tiny run work tiny unit ", []string{"install", "show"}},
	} {
		words := strings.Split(tc.line, " ")
		// _command_offset looks the inner command up by name: tiny must be found in PATH.
		t.Setenv("PATH", w.bin+":"+os.Getenv("PATH"))
		checkCase(t, "bash+bash-completion", tc, w.bashComplete(t, true, words))
	}
}

// fishComplete asks fish for the completions of line (complete -C) with the script loaded.
func (w *compWorld) fishComplete(t *testing.T, line string) []string {
	t.Helper()
	cmd := exec.Command("fish", "--no-config", "-c", `source $SCRIPT; complete -C $LINE`)
	cmd.Dir = w.work
	cmd.Env = append(os.Environ(), "SCRIPT="+filepath.Join(w.dir, "tiny.fish"), "LINE="+line,
		"PATH="+w.bin+":"+os.Getenv("PATH"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("fish completion of %q: %v\n%s%s", line, err, out, stderr.String())
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		got = append(got, strings.SplitN(l, "\t", 2)[0])
	}
	return got
}

func TestFishCompletes(t *testing.T) {
	needShell(t, "fish")
	w := newCompWorld(t)
	cases := append(slices.Clone(commonCases),
		compCase{"tiny --", []string{"--help", "--verbose"}},
		compCase{"tiny down --", []string{"--color", "--grace", "--help", "--no-color", "--verbose"}},
		compCase{"tiny unit install --style=j", []string{"--style=joins"}},
		compCase{"tiny unit install --dir s", []string{"sub/"}},
		// fish completes the inner command line itself (with its own completions).
		compCase{"tiny run work -- tiny d", []string{"down"}},
	)
	for _, tc := range cases {
		checkCase(t, "fish", tc, w.fishComplete(t, tc.line))
	}
}

// zshHarness runs zsh's completion system on a line in a pseudo-terminal (zpty) and prints
// what it would offer, one per line, between ^B and ^C: compadd is wrapped to record its
// matches, and the completion widget prints them and exits instead of inserting anything.
const zshHarness = `
zmodload zsh/zpty
zpty zc zsh -f -i
zpty -w zc 'fpath=('$SCRIPTDIR' $fpath); autoload -Uz compinit && compinit -u -d '$ZDOTDIR'/.zcompdump'
zpty -w zc 'zstyle ":completion:*" matcher-list ""; zstyle ":completion:*" list-prompt ""; zstyle ":completion:*" menu no'
zpty -w zc 'typeset -aU __got; compadd() { builtin compadd -O reply "$@"; __got+=("$reply[@]"); builtin compadd "$@" }'
zpty -w zc 'zle -C complete-word complete-word __record; bindkey "^I" complete-word'
zpty -w zc '__record() { unset "compstate[vared]"; _main_complete "$@"; print -n $'"'"'\C-B'"'"'; print -nlr -- "$__got[@]"; print -n $'"'"'\C-C'"'"'; exit }'
zpty -w zc 'cd '$WORKDIR'; PATH='$BINDIR':$PATH; vared -c __line'
zpty -w -n zc "$LINE"$'\t'
zpty -r zc REPLY $'*\C-B'
zpty -r zc REPLY $'*\C-C'
print -r -- "${REPLY%$'\C-C'}"
zpty -d zc
`

func (w *compWorld) zshComplete(t *testing.T, line string) []string {
	t.Helper()
	home := w.dir // compinit's dump, made by the first case
	cmd := exec.Command("zsh", "-f", "-c", zshHarness)
	cmd.Env = append(os.Environ(), "SCRIPTDIR="+w.dir, "WORKDIR="+w.work, "BINDIR="+w.bin,
		"LINE="+line, "ZDOTDIR="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("zsh completion of %q: %v\n%s", line, err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.ReplaceAll(strings.TrimSpace(string(out)), "\r", ""), "\n") {
		got = append(got, l)
	}
	return got
}

func TestZshCompletes(t *testing.T) {
	needShell(t, "zsh")
	w := newCompWorld(t)
	var cases []compCase
	for _, tc := range commonCases {
		if tc.line == "tiny down work " {
			// With no argument left to complete, zsh offers the flags.
			tc.want = []string{"--color", "--grace", "--help", "--no-color", "--verbose", "-h", "-v"}
		}
		cases = append(cases, tc)
	}
	cases = append(cases,
		compCase{"tiny --", []string{"--help", "--verbose"}},
		compCase{"tiny down --", []string{"--color", "--grace", "--help", "--no-color", "--verbose"}},
		compCase{"tiny unit install --style=j", []string{"joins"}},
		compCase{"tiny unit install --dir s", []string{"sub"}},
		compCase{"tiny run work -- tiny d", []string{"down"}},
	)
	for _, tc := range cases {
		checkCase(t, "zsh", tc, w.zshComplete(t, tc.line))
	}
}
