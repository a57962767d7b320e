package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wgns/wgns/internal/shellquote"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/units"
)

// UnitCmd is `wgns unit`: the systemd side of wgns.
type UnitCmd struct {
	Install  UnitInstallCmd  `cmd:"" help:"Write a drop-in so systemd UNIT runs inside NAME with its DNS; UNIT cannot run while NAME is down, and stops when it goes down."`
	Remove   UnitRemoveCmd   `cmd:"" help:"Remove the drop-in that confines UNIT to NAME."`
	Show     UnitShowCmd     `cmd:"" help:"Print the drop-in that confines UNIT to NAME."`
	Template UnitTemplateCmd `cmd:"" help:"Print a unit file wgns ships (wgns@.service by default)."`
}

// UnitInstallCmd is `wgns unit install`.
type UnitInstallCmd struct {
	Style string `enum:"path,joins" default:"path" help:"How UNIT enters NAME: path (NetworkNamespacePath=) or joins (JoinsNamespaceOf= wgns-netns@NAME.service and PrivateNetwork=yes)."`
	Dir   string `default:"/etc/systemd/system" placeholder:"DIR" help:"Unit directory to write the drop-in under."`
	Name  string `arg:"" help:"Tunnel name."`
	Unit  string `arg:"" help:"The systemd service, e.g. transmission-daemon.service (.service may be left out)."`
}

// UnitRemoveCmd is `wgns unit remove`.
type UnitRemoveCmd struct {
	Dir  string `default:"/etc/systemd/system" placeholder:"DIR" help:"Unit directory the drop-in is under."`
	Name string `arg:"" help:"Tunnel name."`
	Unit string `arg:"" help:"The systemd service."`
}

// UnitShowCmd is `wgns unit show`.
type UnitShowCmd struct {
	Dir  string `default:"/etc/systemd/system" placeholder:"DIR" help:"Unit directory the drop-in is under."`
	Name string `arg:"" help:"Tunnel name."`
	Unit string `arg:"" help:"The systemd service."`
}

// UnitTemplateCmd is `wgns unit template`.
type UnitTemplateCmd struct {
	Binary string `placeholder:"PATH" help:"The wgns binary wgns@.service and wgns.service run (default /usr/local/bin/wgns)."`
	File   string `arg:"" optional:"" enum:"wgns@.service,wgns-netns@.service,wgns.socket,wgns.service" default:"wgns@.service" help:"Which unit file: wgns@.service (a tunnel), wgns-netns@.service (holds the namespace for --style joins), wgns.socket or wgns.service (wgns serve, for sudo-free exec)."`
}

// reloadSystemd is units.Reload, replaced in tests.
var reloadSystemd = units.Reload

// reloadTimeout bounds a daemon-reload; systemd answers once the reload is done.
const reloadTimeout = 90 * time.Second

// unitSearchPath is where systemd looks for system unit files, most local first.
var unitSearchPath = []string{
	"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system", "/lib/systemd/system",
}

// Run installs the drop-in.
func (c *UnitInstallCmd) Run() error { return c.run(os.Stdout, os.Stderr) }

func (c *UnitInstallCmd) run(out, errOut io.Writer) error {
	if err := needRootForDir(c.Dir, "install"); err != nil {
		return err
	}
	name, unit, err := unitArgs(c.Name, c.Unit)
	if err != nil {
		return err
	}
	style, err := units.ParseStyle(c.Style)
	if err != nil {
		return err
	}
	paths, written, err := units.Install(c.Dir, name, unit, style)
	if err != nil {
		return err
	}
	changed := len(written) > 0
	for _, p := range written {
		fmt.Fprintf(out, "wrote %s\n", p)
	}
	if !changed {
		fmt.Fprintf(out, "%s is up to date; nothing changed\n", strings.Join(paths, " and "))
	}
	fmt.Fprintf(out, "%s runs inside tunnel %s (style %s), only while %s is active, and starts again with it\n",
		unit, name, style, units.InstanceName(name))
	for _, t := range missingTemplates(c.Dir, style) {
		fmt.Fprintf(errOut, "wgns: warning: %s is not installed; install it with `make install`, or: wgns unit template %s > %s\n",
			t, t, filepath.Join(c.Dir, t))
	}
	if ok, err := reload(errOut); !ok {
		return err
	}
	if changed {
		fmt.Fprintf(out, "systemd reloaded; if %s is running, restart it to move it into %s: systemctl restart %s\n",
			unit, name, shellquote.Word(unit))
	}
	return nil
}

// needRootForDir refuses unit install and remove without root when they would write systemd's
// own directory (a --dir of one's own is fine, for trying it out).
func needRootForDir(dir, cmd string) error {
	if dir != units.DefaultDir {
		return nil
	}
	return needRoot("unit "+cmd, "it writes drop-ins under "+units.DefaultDir+" and reloads systemd")
}

// Run removes the drop-in.
func (c *UnitRemoveCmd) Run() error { return c.run(os.Stdout, os.Stderr) }

func (c *UnitRemoveCmd) run(out, errOut io.Writer) error {
	if err := needRootForDir(c.Dir, "remove"); err != nil {
		return err
	}
	name, unit, err := unitArgs(c.Name, c.Unit)
	if err != nil {
		return err
	}
	paths, removed, err := units.Remove(c.Dir, name, unit)
	if err != nil {
		return err
	}
	if len(removed) == 0 {
		fmt.Fprintf(out, "%s does not exist; nothing to do\n", paths[0])
		return nil
	}
	for _, p := range removed {
		fmt.Fprintf(out, "removed %s\n", p)
	}
	if ok, err := reload(errOut); !ok {
		return err
	}
	fmt.Fprintf(out, "systemd reloaded; if %s is running, restart it to take it out of %s: systemctl restart %s\n",
		unit, name, shellquote.Word(unit))
	return nil
}

// Run prints the drop-in.
func (c *UnitShowCmd) Run() error { return c.run(os.Stdout) }

func (c *UnitShowCmd) run(out io.Writer) error {
	name, unit, err := unitArgs(c.Name, c.Unit)
	if err != nil {
		return err
	}
	text, err := units.Show(c.Dir, name, unit)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, text)
	return err
}

// Run prints the unit file.
func (c *UnitTemplateCmd) Run() error { return c.run(os.Stdout) }

func (c *UnitTemplateCmd) run(out io.Writer) error {
	bin := c.Binary
	if bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return fmt.Errorf("finding the absolute path of --binary %q: %w", bin, err)
		}
		bin = abs
	}
	files := units.TemplateFiles(bin)
	text, ok := files[c.File]
	if !ok {
		return fmt.Errorf("printing unit file %q: wgns ships only %s, %s, %s and %s", c.File, units.TemplateName, units.NetnsTemplateName, units.SocketName, units.ServiceName)
	}
	_, err := io.WriteString(out, text)
	return err
}

// unitArgs checks a tunnel name by the full rules and completes a unit name given without its
// type, as systemctl does (foo becomes foo.service).
func unitArgs(name, unit string) (string, string, error) {
	if err := nsmgr.ValidateName(name); err != nil {
		return "", "", err
	}
	return name, serviceName(unit), nil
}

// unitTypes are the suffixes of systemd's unit types.
var unitTypes = []string{".service", ".socket", ".target", ".device", ".mount", ".automount",
	".swap", ".timer", ".path", ".slice", ".scope"}

// serviceName appends .service to a unit name that has no unit type suffix.
func serviceName(unit string) string {
	for _, s := range unitTypes {
		if strings.HasSuffix(unit, s) {
			return unit
		}
	}
	if unit == "" {
		return unit
	}
	return unit + ".service"
}

// missingTemplates lists the shipped template units that style needs and that neither dir nor
// systemd's unit search path holds.
func missingTemplates(dir string, style units.Style) []string {
	need := []string{units.TemplateName}
	if style == units.StyleJoins {
		need = append(need, units.NetnsTemplateName)
	}
	var missing []string
	for _, t := range need {
		found := false
		for _, d := range append([]string{dir}, unitSearchPath...) {
			if _, err := os.Stat(filepath.Join(d, t)); err == nil {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, t)
		}
	}
	return missing
}

// reload asks systemd for a daemon-reload and reports whether it happened. When systemd is not
// running it says how to reload later and returns no error: the file on disk is right, and
// systemd reads it when it starts. Any other failure is an error; running the command again
// reloads again.
func reload(errOut io.Writer) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	err := reloadSystemd(ctx)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, units.ErrNoSystemd):
		fmt.Fprintln(errOut, "wgns: systemd is not running; run systemctl daemon-reload when it is")
		return false, nil
	}
	return false, err
}
