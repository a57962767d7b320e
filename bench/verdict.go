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
		saveTun := od.tunHost.Median + od.move.Median - od.tunInNS.Median
		saveFw := d.upSteps["step:firewall"] - od.nftCt.Median
		if saveFw < 0 {
			saveFw = 0
		}
		est := d.ping.Median - saveTun - saveFw
		starts := d.upSteps["start"] + d.upSteps["log"]
		text := fmt.Sprintf("What up's goal would take: creating the TUN inside the namespace instead of moving it saves about %s ms, "+
			"and installing the firewall on the fresh namespace without the add-delete-add transaction about %s ms (options section): "+
			"about %s ms, %s× wg-quick. The two process starts (`wgns up`, then the holder it executes) take %s ms of that",
			fmtNum(saveTun), fmtNum(saveFw), fmtNum(est), fmtRatio(est/d.quickPing.Median), fmtNum(starts))
		if goStart > 0 {
			text += fmt.Sprintf(" (the Go runtime alone starts in %s ms each)", fmtNum(goStart))
		}
		text += "; if that is still above the goal, start the holder at once (before the parent parses anything), or let the " +
			"parent do the namespace work while the holder starts, and hand it the TUN and UAPI descriptors."
		s.Notes = append(s.Notes, text)
	}

	dTarget := 0.2 * d.quickDown.Median
	closeDev := d.downSteps["unready"]
	text := fmt.Sprintf("Down: the goal is %s ms (0.2 × wg-quick's %s ms); wgns takes %s ms: %s ms for `wgns down` to start, "+
		"scan the processes inside and signal the holder; %s ms for the holder to close the device and remove the DNS view; "+
		"%s ms from the state's removal to `wgns down`'s exit (the holder exits, down relocks).",
		fmtNum(dTarget), fmtNum(d.quickDown.Median), fmtNum(d.down.Median), fmtNum(d.downSteps["start"]), fmtNum(closeDev),
		fmtNum(d.downSteps["stategone"]))
	if od != nil {
		est := d.down.Median - min(closeDev, od.closeTun.Median) - d.downSteps["stategone"] + 0.5
		text += fmt.Sprintf(" Closing a TUN alone takes %s ms (options section). What the goal would take: let the holder delete "+
			"the namespace, DNS view, UAPI socket and state first, tell `wgns down` (which returns then), and only then close the TUN "+
			"and exit: about %s ms, %s× wg-quick.", fmtNum(od.closeTun.Median), fmtNum(est), fmtRatio(est/d.quickDown.Median))
	}
	s.Notes = append(s.Notes, text)
}
