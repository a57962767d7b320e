package wgns

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/atomicfile"
	"github.com/wgns/wgns/nsmgr"
)

// AttachKey identifies an attachment as CNI does: the network's name, the container's ID and
// the interface name the runtime passed (CNI_IFNAME).
type AttachKey struct {
	Network     string
	ContainerID string
	IfName      string
}

// ID is the key's name among wgns's records: a hash, since container IDs and network names are
// long and their characters are the runtime's choice.
func (k AttachKey) ID() string {
	sum := sha256.Sum256([]byte(k.Network + "\x00" + k.ContainerID + "\x00" + k.IfName))
	return hex.EncodeToString(sum[:16])
}

// String describes the key for messages.
func (k AttachKey) String() string {
	return fmt.Sprintf("container %s, interface %s, network %s", k.ContainerID, k.IfName, k.Network)
}

// hostName is the name an attachment's interface has in the host namespace before it is moved
// into the container's and renamed (kernel WireGuard), and its control socket's name (the
// embedded one): unique per attachment, a valid interface name, and recognisably wgns's.
func hostName(id string) string { return "wgc" + id[:12] }

// Primary is what a chained attachment keeps on the interface the plugin before wgns made.
type Primary struct {
	// Interface is that interface (CNI_IFNAME).
	Interface string `json:"interface"`
	// Keep lists the prefixes that stay on it (the cluster's pod and service ranges): routed
	// through it, and the only traffic the firewall lets pass it.
	Keep []netip.Prefix `json:"keep"`
	// Gateways are the next hops the kept prefixes are routed through, at most one per address
	// family; a kept prefix of a family without one is routed on-link.
	Gateways []netip.Addr `json:"gateways,omitempty"`
}

// gateway is the gateway for p's family, or the zero Addr.
func (p *Primary) gateway(pfx netip.Prefix) netip.Addr {
	for _, g := range p.Gateways {
		if g.Is4() == pfx.Addr().Is4() {
			return g
		}
	}
	return netip.Addr{}
}

// Attachment is wgns's record of one attachment (RunDir/cni/ID.json): what was asked, and how
// far making it got (State: its step, readiness, the namespace's ID, the holder process).
type Attachment struct {
	Key AttachKey
	// Netns is the namespace's path as the runtime gave it at ADD (CNI_NETNS).
	Netns string
	// Interface is the WireGuard interface's name inside the namespace.
	Interface string
	// HostName is its name in the host namespace before the move (kernel), or its control
	// socket's (embedded).
	HostName string
	// Primary is set when the attachment is chained after another plugin.
	Primary *Primary
	// Replaced lists the primary interface's routes that the tunnel's took over (its default
	// route, typically): Detach routes them through the primary's gateway again.
	Replaced []netip.Prefix
	// Kept lists the routes of kept prefixes that Attach added on the primary interface (those
	// the primary plugin had routed already are not its to remove).
	Kept  []netip.Prefix
	State State
}

// attachFile is the format of RunDir/cni/ID.json: fields are only ever added.
type attachFile struct {
	Version     int            `json:"version"`
	Network     string         `json:"network"`
	ContainerID string         `json:"container_id"`
	IfName      string         `json:"cni_ifname"`
	Netns       string         `json:"netns"`
	NetnsDev    uint64         `json:"netns_dev"`
	NetnsIno    uint64         `json:"netns_ino"`
	Interface   string         `json:"interface"`
	HostName    string         `json:"host_name"`
	Primary     *Primary       `json:"primary,omitempty"`
	Replaced    []netip.Prefix `json:"replaced,omitempty"`
	Kept        []netip.Prefix `json:"kept_routes,omitempty"`
	Mode        Mode           `json:"mode"`
	Config      string         `json:"config"`
	Step        Step           `json:"step"`
	Ready       bool           `json:"ready"`
	PID         int            `json:"pid,omitempty"`
	PIDStart    uint64         `json:"pid_start,omitempty"`
	Since       time.Time      `json:"since"`
}

const attachVersion = 1

func attachDir() string { return filepath.Join(runDir, "cni") }

func attachPath(id string) string { return filepath.Join(attachDir(), id+".json") }

// AttachLogPath is where the holder of an attachment's embedded WireGuard writes its messages.
func AttachLogPath(id string) string { return filepath.Join(attachDir(), id+".log") }

func readAttachment(id string) (*Attachment, error) {
	b, err := os.ReadFile(attachPath(id))
	if err != nil {
		return nil, fmt.Errorf("reading the record of attachment %s: %w", id, err)
	}
	var f attachFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading the record of attachment %s: %s: %w", id, attachPath(id), err)
	}
	if f.Version > attachVersion {
		return nil, fmt.Errorf("reading the record of attachment %s: %s has format version %d; this wgns reads up to %d", id, attachPath(id), f.Version, attachVersion)
	}
	return &Attachment{
		Key:   AttachKey{Network: f.Network, ContainerID: f.ContainerID, IfName: f.IfName},
		Netns: f.Netns, Interface: f.Interface, HostName: f.HostName, Primary: f.Primary, Replaced: f.Replaced, Kept: f.Kept,
		State: State{Name: f.Netns, Mode: f.Mode, Config: f.Config, Step: f.Step, Ready: f.Ready,
			Netns: nsmgr.ID{Dev: f.NetnsDev, Ino: f.NetnsIno}, PID: f.PID, Start: f.PIDStart, Since: f.Since},
	}, nil
}

func writeAttachment(a *Attachment) error {
	st := a.State
	f := attachFile{Version: attachVersion, Network: a.Key.Network, ContainerID: a.Key.ContainerID, IfName: a.Key.IfName,
		Netns: a.Netns, NetnsDev: st.Netns.Dev, NetnsIno: st.Netns.Ino, Interface: a.Interface, HostName: a.HostName,
		Primary: a.Primary, Replaced: a.Replaced, Kept: a.Kept, Mode: st.Mode, Config: st.Config, Step: st.Step, Ready: st.Ready, PID: st.PID,
		PIDStart: st.Start, Since: st.Since}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(attachDir(), 0o700); err != nil {
		return fmt.Errorf("recording attachment %s: %w", a.Key.ID(), err)
	}
	if err := atomicfile.Write(attachPath(a.Key.ID()), append(b, '\n'), 0o600, atomicfile.Options{}); err != nil {
		return fmt.Errorf("recording attachment %s: %w", a.Key.ID(), err)
	}
	return nil
}

func removeAttachment(id string) error {
	os.Remove(AttachLogPath(id))
	if err := os.Remove(attachPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the record of attachment %s: %w", id, err)
	}
	return nil
}

// listAttachments reads every attachment record; one that cannot be read is reported in the
// error and the rest are returned.
func listAttachments() ([]*Attachment, error) {
	ents, err := os.ReadDir(attachDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing attachments: %w", err)
	}
	var out []*Attachment
	var errs []error
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		a, err := readAttachment(id)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *Attachment) int { return strings.Compare(a.Key.ID(), b.Key.ID()) })
	return out, errors.Join(errs...)
}

// lockAttachment takes RunDir/cni/ID.lock, waiting at most lockWait. Unlike a tunnel's, the lock
// file is removed with the attachment (pods come and go by the thousand): the unlock function
// removes it when gone is true, and a locker that finds its file replaced after the wait takes
// the new one.
func lockAttachment(id string) (func(gone bool), error) {
	if err := os.MkdirAll(attachDir(), 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(attachDir(), id+".lock")
	deadline := time.Now().Add(lockWait)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("locking attachment %s: %w", id, err)
		}
		for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			if err == nil || (err != unix.EWOULDBLOCK && err != unix.EINTR) {
				break
			}
			if time.Now().After(deadline) {
				f.Close()
				return nil, fmt.Errorf("attachment %s is busy: another wgns process has held its lock (%s) for %s", id, path, lockWait)
			}
			time.Sleep(pause)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking attachment %s (%s): %w", id, path, err)
		}
		// The holder before may have removed the file as it finished: this lock is then on a
		// file no one else will open.
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &now) == nil && held.Ino == now.Ino && held.Dev == now.Dev {
			return func(gone bool) {
				if gone {
					os.Remove(path)
				}
				f.Close()
			}, nil
		}
		f.Close()
	}
}
