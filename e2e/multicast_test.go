package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Timeouts of the waits on the nodes' views. The figures they bound are a
// few seconds (see the MEASURED lines of `make e2e`); the margins are for
// a loaded 2-core CI machine.
const (
	convergeTimeout = 45 * time.Second
	detectTimeout   = 30 * time.Second
	healTimeout     = 60 * time.Second
)

// TestMulticastDiscoveryKillAndStop: five containers on a fresh bridge
// network, with no initial hosts, find each other by multicast alone, each
// announcing once at start (the default); a killed node is found DEAD by the
// other four; a stopped one (SIGTERM) leaves, and the others see it leave
// without suspecting it first.
func TestMulticastDiscoveryKillAndStop(t *testing.T) {
	n := newNetwork(t, false)
	n.start(5)
	nodes := n.nodes

	if !t.Run("discovery", func(t *testing.T) {
		at, lines := waitViews(t, nodes, wantAll(addrs(nodes), "ALIVE"), convergeTimeout, "every node to see all 5 ALIVE")
		measureConvergence(t, "5 containers, multicast only", nodes[4], at, lines)
	}) {
		t.FailNow()
	}

	if !t.Run("kill", func(t *testing.T) {
		victim, survivors := nodes[4], nodes[:4]
		killed := time.Now()
		dockerT(t, "kill", victim.name)
		at, _ := waitViews(t, survivors, want{victim.addr: "DEAD"}, detectTimeout, "the other 4 to see the killed node DEAD")
		measured(t, "docker kill to DEAD at all 4 survivors: %v", at.Sub(killed).Round(time.Millisecond))
	}) {
		t.FailNow()
	}

	t.Run("stop", func(t *testing.T) {
		leaver, survivors := nodes[3], nodes[:3]
		stopped := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), stopCmdTimeout)
		_, err := docker(ctx, "stop", leaver.name)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		at, lines := waitViews(t, survivors, want{leaver.addr: "DEAD (left)"}, detectTimeout, "the other 3 to see the stopped node leave")
		measured(t, "docker stop to left (DEAD, left) at all 3 survivors: %v", at.Sub(stopped).Round(time.Millisecond))
		for name, ls := range lines {
			for _, l := range ls {
				if l.addr == leaver.addr && l.status == "SUSPECTED" && !l.at.Before(stopped.Add(-time.Second)) {
					t.Errorf("%s suspected the node that left: %v", name, l)
				}
			}
		}
		if code := dockerT(t, "inspect", "--format", "{{.State.ExitCode}}", leaver.name); code != "0" {
			t.Errorf("the stopped node exited with status %s, want 0 (a graceful leave)", code)
		}
	})
}

// measureConvergence reports the time from the start of the last node to
// the view of all at all, measured from two starts: the daemon's record of
// the container's start (StartedAt, taken a little after the process
// starts), and the last node's first line, its own ALIVE.
func measureConvergence(t *testing.T, what string, last *node, at time.Time, lines map[string][]statusLine) {
	t.Helper()
	var up time.Time
	for _, l := range lines[last.name] {
		if l.addr == last.addr {
			up = l.at
			break
		}
	}
	measured(t, "%s: last node up (its own ALIVE line) to 5/5 ALIVE at all 5: %v (from the daemon's StartedAt: %v)",
		what, at.Sub(up).Round(time.Millisecond), at.Sub(last.started).Round(time.Millisecond))
}

// TestMulticastPartitionHeals: two of five nodes are disconnected from the
// network until each side has found the other DEAD, then reconnected with
// the same addresses; without restarting anything, the five come back to
// one view of five ALIVE. The nodes announce every second, so a
// reconnected node is heard at once rather than at the next re-probe of a
// dead member.
//
// A disconnected container has no network interface left: each of the two
// is cut off from everybody, the other one included.
func TestMulticastPartitionHeals(t *testing.T) {
	n := newNetwork(t, false)
	n.start(5, "SMUDGE_MULTICAST_ANNOUNCE_INTERVAL=1")
	nodes := n.nodes
	all := addrs(nodes)
	waitViews(t, nodes, wantAll(all, "ALIVE"), convergeTimeout, "every node to see all 5 ALIVE")

	majority, cut := nodes[:3], nodes[3:]
	started := map[string]string{}
	for _, nd := range nodes {
		started[nd.name] = dockerT(t, "inspect", "--format", "{{.State.StartedAt}} {{.RestartCount}}", nd.name)
	}

	parted := time.Now()
	for _, nd := range cut {
		dockerT(t, "network", "disconnect", n.name, nd.name)
	}
	at, _ := waitViews(t, majority, wantAll(addrs(cut), "DEAD"), detectTimeout, "the 3 connected nodes to see the 2 cut off DEAD")
	measured(t, "partition to DEAD on the side of 3: %v", at.Sub(parted).Round(time.Millisecond))
	for _, nd := range cut {
		others := want{}
		for _, o := range nodes {
			if o != nd {
				others[o.addr] = "DEAD"
			}
		}
		at, _ := waitViews(t, []*node{nd}, others, detectTimeout, nd.name+" (cut off) to see the 4 others DEAD")
		measured(t, "partition to DEAD of the 4 others at %s (cut off): %v", nd.name, at.Sub(parted).Round(time.Millisecond))
	}
	// Dead members are re-probed with backoff: let a few re-probes fail
	// before healing, so that healing is not a lucky early re-probe.
	time.Sleep(3 * time.Second)

	for _, nd := range cut {
		dockerT(t, "network", "connect", "--ip", nd.ip.String(), n.name, nd.name)
	}
	reconnected := time.Now()
	at, _ = waitViews(t, nodes, wantAll(all, "ALIVE"), healTimeout, "one view of 5 ALIVE again after the reconnection")
	measured(t, "reconnect to one view of 5 ALIVE at all 5: %v (partition held %v)",
		at.Sub(reconnected).Round(time.Millisecond), reconnected.Sub(parted).Round(100*time.Millisecond))

	for _, nd := range nodes {
		if now := dockerT(t, "inspect", "--format", "{{.State.StartedAt}} {{.RestartCount}}", nd.name); now != started[nd.name] {
			t.Errorf("%s was restarted: %q, then %q", nd.name, started[nd.name], now)
		}
	}
}

// TestMulticastDiscoveryIPv6: as the discovery of
// TestMulticastDiscoveryKillAndStop, on an IPv6 network: the nodes have
// IPv6 identities, so they use the IPv6 default group.
func TestMulticastDiscoveryIPv6(t *testing.T) {
	n := newNetwork(t, true)
	n.start(5)
	nodes := n.nodes
	at, lines := waitViews(t, nodes, wantAll(addrs(nodes), "ALIVE"), convergeTimeout, "every node to see all 5 ALIVE over IPv6")
	measureConvergence(t, "IPv6, 5 containers, multicast only", nodes[4], at, lines)
	for _, nd := range nodes {
		out, _ := dockerLogs(context.Background(), nd.name)
		if !strings.Contains(out, "multicast discovery on [ff02::8000:9998]:9998") {
			t.Errorf("%s does not say it uses the IPv6 default group:\n%s", nd.name, out)
		}
	}
}

// TestDockerCompose runs the repository's docker-compose.yml (with this
// run's image) and waits until its five nodes see each other, found by
// multicast alone.
func TestDockerCompose(t *testing.T) {
	image := needImage(t)
	var compose []string
	for _, c := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		err := exec.CommandContext(ctx, c[0], append(c[1:], "version")...).Run()
		cancel()
		if err == nil {
			compose = c
			break
		}
	}
	if compose == nil {
		t.Skip("SKIPPED: neither `docker compose` nor `docker-compose` is installed")
	}
	file, err := filepath.Abs("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	project := runID + "-compose"
	run := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, compose[0], append(append(compose[1:], "-f", file, "-p", project), args...)...)
		cmd.WaitDelay = 5 * time.Second
		cmd.Env = append(os.Environ(), "SMUDGE_IMAGE="+image)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	var nodes []*node
	t.Cleanup(func() {
		if t.Failed() {
			for _, nd := range nodes {
				out, _ := dockerLogs(context.Background(), nd.name)
				t.Logf("---- output of %s ----\n%s", nd.name, out)
			}
		}
		if out, err := run(2*stopCmdTimeout, "down", "--volumes", "--remove-orphans", "--timeout", "5"); err != nil {
			t.Errorf("%s down: %v\n%s", strings.Join(compose, " "), err, out)
		}
		// Whatever down left behind.
		ctx, cancel := context.WithTimeout(context.Background(), dockerCmdTimeout)
		defer cancel()
		if ids, err := docker(ctx, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project); err == nil && ids != "" {
			docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
		}
		if ids, err := docker(ctx, "network", "ls", "-q", "--filter", "label=com.docker.compose.project="+project); err == nil && ids != "" {
			docker(ctx, append([]string{"network", "rm"}, strings.Fields(ids)...)...)
		}
	})
	if out, err := run(3*dockerCmdTimeout, "up", "--detach", "--no-build"); err != nil {
		t.Fatalf("%s up: %v\n%s", strings.Join(compose, " "), err, out)
	}
	out, err := run(dockerCmdTimeout, "ps", "-q")
	if err != nil {
		t.Fatalf("%s ps: %v\n%s", strings.Join(compose, " "), err, out)
	}
	for _, id := range strings.Fields(out) {
		nodes = append(nodes, &node{name: id})
	}
	if len(nodes) != 5 {
		t.Fatalf("docker-compose.yml started %d containers, want 5", len(nodes))
	}
	// The nodes' addresses are the daemon's choice: wait until each node
	// sees five members ALIVE.
	deadline := time.Now().Add(convergeTimeout)
	for {
		done := true
		for _, nd := range nodes {
			out, _ := dockerLogs(context.Background(), nd.name)
			alive := 0
			for _, l := range viewOf(parseStatusLines(out, time.Now())) {
				if l.status == "ALIVE" {
					alive++
				}
			}
			if alive != 5 {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for the 5 compose nodes to see 5 ALIVE", convergeTimeout)
		}
		time.Sleep(pollEvery)
	}
}

// partitionHold is how long TestPartitionOfAMinuteHeals keeps its
// partition: twice the default SMUDGE_REMOVE_DEAD_AFTER (30 s), so that
// each side has removed the other from its member list before it heals.
const partitionHold = 60 * time.Second

// TestPartitionOfAMinuteHeals: five containers that found each other by
// multicast, announcing only once at start (the default: no periodic
// announcement to rescue them), and with no initial hosts, are split 3/2
// for a minute. Each side sees the other DEAD, then removes it from its
// member list; when the network is back, the two sides find each other
// again by themselves (each node retries the addresses of members it
// removed as DEAD, once a second: see the README, "Partitions of any length
// heal") and are one view of 5 ALIVE again, without a restart.
func TestPartitionOfAMinuteHeals(t *testing.T) {
	n := newNetwork(t, false)
	n.start(5)
	nodes := n.nodes
	all := addrs(nodes)
	waitViews(t, nodes, wantAll(all, "ALIVE"), convergeTimeout, "every node to see all 5 ALIVE")

	majority, cut := nodes[:3], nodes[3:]
	parted := time.Now()
	for _, nd := range cut {
		dockerT(t, "network", "disconnect", n.name, nd.name)
	}
	at, _ := waitViews(t, majority, wantAll(addrs(cut), "REMOVED"), partitionHold, "the 3 connected nodes to remove the 2 cut off")
	measured(t, "partition to REMOVED on the side of 3: %v", at.Sub(parted).Round(time.Millisecond))
	for _, nd := range cut {
		others := want{}
		for _, o := range nodes {
			if o != nd {
				others[o.addr] = "REMOVED"
			}
		}
		waitViews(t, []*node{nd}, others, partitionHold, nd.name+" (cut off) to remove the 4 others")
	}
	if rest := partitionHold - time.Since(parted); rest > 0 {
		time.Sleep(rest)
	}

	for _, nd := range cut {
		dockerT(t, "network", "connect", "--ip", nd.ip.String(), n.name, nd.name)
	}
	reconnected := time.Now()
	at, _ = waitViews(t, nodes, wantAll(all, "ALIVE"), healTimeout, "one view of 5 ALIVE again after the reconnection")
	measured(t, "reconnect to one view of 5 ALIVE at all 5: %v (partition held %v)",
		at.Sub(reconnected).Round(time.Millisecond), reconnected.Sub(parted).Round(100*time.Millisecond))
}
