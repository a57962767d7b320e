package main

import (
	"fmt"
	"sort"
	"strings"
)

// upVerdict adds to the up section, for each of its goals, where the time goes and what meeting
// the goal would take, from the steps and the options measured. goStart is the Go runtime's
// start-up in ms (0 if the exec section did not run).
func upVerdict(s *Section, d *upData, od *optData, goStart float64) {
	target := 0.2 * d.quickPing.Median
	type step struct {
		label string
		ms    float64
	}
	var steps []step
	for k, v := range d.upSteps {
		label, ok := upWork[k]
		if !ok {
			label = strings.TrimPrefix(k, "step:")
		}
		steps = append(steps, step{label, v})
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].ms > steps[j].ms })
	var top []string
	for i, st := range steps {
		if i == 5 {
			break
		}
		top = append(top, fmt.Sprintf("%s %s ms", st.label, fmtNum(st.ms)))
	}
	s.Notes = append(s.Notes, fmt.Sprintf("Up: the goal is %s ms (0.2 × wg-quick's %s ms); wgns takes %s ms. Its costliest steps "+
		"(next section): %s.", fmtNum(target), fmtNum(d.quickPing.Median), fmtNum(d.ping.Median), strings.Join(top, "; ")))

	if od != nil {
		var saves []string
		est := d.ping.Median
		iface := d.upSteps["step:interface"]
		if iface > od.tunInNS.Median+od.move.Median/2 {
			save := od.tunHost.Median + od.move.Median - od.tunInNS.Median
			est -= save
			saves = append(saves, fmt.Sprintf("creating the TUN inside the namespace instead of moving it saves about %s ms", fmtNum(save)))
		} else {
			s.Notes = append(s.Notes, fmt.Sprintf("The interface step takes %s ms: the TUN is not moved between namespaces (moving one costs %s ms, options section).",
				fmtNum(iface), fmtNum(od.move.Median)))
		}
		if fw := d.upSteps["step:firewall"]; fw > od.nftCt.Median+1 {
			save := fw - od.nftCt.Median
			est -= save
			saves = append(saves, fmt.Sprintf("installing the firewall on the fresh namespace without the add-delete-add transaction about %s ms "+
				"(the firewall step takes %s ms; a table whose chain has a `ct state` rule costs %s ms when added alone)",
				fmtNum(save), fmtNum(fw), fmtNum(od.nftCt.Median)))
		}
		starts := d.upSteps["start"] + d.upSteps["log"]
		text := "What up's goal would take: "
		if len(saves) > 0 {
			text += strings.Join(saves, "; ") + fmt.Sprintf(" (options section): about %s ms, %s× wg-quick. ", fmtNum(est), fmtRatio(est/d.quickPing.Median))
		}
		text += fmt.Sprintf("the two process starts (`wgns up`, then the holder it executes) take %s ms", fmtNum(starts))
		if goStart > 0 {
			text += fmt.Sprintf(" (the Go runtime alone starts in %s ms each)", fmtNum(goStart))
		}
		text += "; to go below that, start the holder at once (before the parent parses anything), or let the parent do the " +
			"namespace work while the holder starts and hand it the TUN and UAPI descriptors."
		s.Notes = append(s.Notes, text)
	}

	dTarget := 0.2 * d.quickDown.Median
	closeDev := d.downSteps["unready"]
	text := fmt.Sprintf("Down: the goal is %s ms (0.2 × wg-quick's %s ms); wgns takes %s ms: %s ms for `wgns down` to start, "+
		"scan the processes inside and signal the holder; %s ms for the holder to close the device and remove the DNS view; "+
		"%s ms from the state's removal to `wgns down`'s exit (the holder exits, down relocks).",
		fmtNum(dTarget), fmtNum(d.quickDown.Median), fmtNum(d.down.Median), fmtNum(d.downSteps["start"]), fmtNum(closeDev),
		fmtNum(d.downSteps["stategone"]))
	if od != nil && closeDev > od.closeTun.Median/2 {
		est := d.down.Median - min(closeDev, od.closeTun.Median) - d.downSteps["stategone"] + 0.5
		text += fmt.Sprintf(" Closing a TUN alone takes %s ms (options section). What the goal would take: let the holder delete "+
			"the namespace, DNS view, UAPI socket and state first, tell `wgns down` (which returns then), and only then close the TUN "+
			"and exit: about %s ms, %s× wg-quick.", fmtNum(od.closeTun.Median), fmtNum(est), fmtRatio(est/d.quickDown.Median))
	}
	s.Notes = append(s.Notes, text)
}
