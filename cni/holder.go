package cni

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/wgns/wgns/supervisor"
	"github.com/wgns/wgns/wgns"
	"github.com/wgns/wgns/wgns/config"
)

// holderSpec describes an attachment of the embedded WireGuard to the supervisor that makes and
// holds it (`wgns cni-holder`). It travels on a pipe: ConfigText may hold keys.
type holderSpec struct {
	Network     string        `json:"network"`
	ContainerID string        `json:"container_id"`
	IfName      string        `json:"cni_ifname"`
	Netns       string        `json:"netns"`
	Interface   string        `json:"interface"`
	Primary     *wgns.Primary `json:"primary,omitempty"`
	ConfigPath  string        `json:"config_path,omitempty"`
	ConfigText  string        `json:"config_text,omitempty"`
	ConfigName  string        `json:"config_name,omitempty"` // what errors call the ConfigText
}

func newHolderSpec(c *netConf, o wgns.AttachOptions) ([]byte, error) {
	s := holderSpec{Network: o.Key.Network, ContainerID: o.Key.ContainerID, IfName: o.Key.IfName, Netns: o.Netns,
		Interface: o.Interface, Primary: o.Primary, ConfigPath: c.Config}
	if c.ConfigText != "" {
		s.ConfigText, s.ConfigName = c.ConfigText, c.textName()
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, types.NewError(types.ErrInternal, "describing the attachment to its holder: "+err.Error(), "")
	}
	return b, nil
}

// Hold is `wgns cni-holder`: the supervisor of one attachment of the embedded WireGuard. It reads
// the attachment's description from descriptor specFD, makes the attachment (wgns.Attach), says
// so on readyFD, holds the device and supervises it until SIGTERM (DEL), when it detaches.
func Hold(readyFD, specFD int) error {
	f := os.NewFile(uintptr(specFD), "attachment description")
	if f == nil {
		return fmt.Errorf("no attachment description on descriptor %d", specFD)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	f.Close()
	if err != nil {
		return fmt.Errorf("reading the attachment description: %w", err)
	}
	var s holderSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decoding the attachment description: %w", err)
	}
	var cfg *config.Config
	if s.ConfigText != "" {
		cfg, err = config.Parse(s.ConfigName, []byte(s.ConfigText))
	} else {
		cfg, err = config.Load(s.ConfigPath)
	}
	if err != nil {
		return err
	}
	o := wgns.AttachOptions{Key: wgns.AttachKey{Network: s.Network, ContainerID: s.ContainerID, IfName: s.IfName},
		Netns: s.Netns, Interface: s.Interface, Config: cfg, Mode: wgns.ModeUserspace, Primary: s.Primary}
	return supervisor.Run(supervisor.RunOptions{Name: o.Key.ID(), ReadyFD: readyFD, Attach: &o})
}
