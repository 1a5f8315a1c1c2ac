package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// When run as root, bench re-executes itself with unshare(1) in a network
// namespace of its own, which has nothing but a loopback interface and is
// gone when the process exits. There, iptables rules count every packet the
// nodes send (UDP and TCP, IP headers included: memberlist's push-pull and
// TCP fallback pings are TCP), and slow nodes are made by dropping a node's
// traffic for a while (each node has a port of its own).

// envInNetns marks the re-executed child, already inside its namespace.
const envInNetns = "SMUDGE_BENCH_IN_NETNS"

// cmdTimeout bounds every ip, iptables and unshare step.
const cmdTimeout = 10 * time.Second

// run runs one command, bounded by cmdTimeout, and returns its output.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s %s: timed out after %v", name, strings.Join(args, " "), cmdTimeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// reexecInNetns runs this program again inside a new network namespace and
// exits with its status. It returns (with the reason) only when that cannot
// be done, in which case the caller goes on without root's extras.
func reexecInNetns(limit time.Duration) error {
	if _, err := exec.LookPath("unshare"); err != nil {
		return errors.New("unshare(1) not found")
	}
	if _, err := run("unshare", "--net", "--", "true"); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// The child has its own -timeout; this one is a backstop.
	ctx, cancel := context.WithTimeout(context.Background(), limit+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", append([]string{"--net", "--", exe}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), envInNetns+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	if ctx.Err() != nil {
		fmt.Fprintf(os.Stderr, "bench: the run in its network namespace was killed after %v\n", limit+time.Minute)
		os.Exit(1)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
	return nil
}

// wire counts what iptables saw leave the nodes (all of them: the
// namespace holds nothing else).
type wire struct {
	udpPkts, udpBytes, tcpPkts, tcpBytes uint64
}

func (w wire) sub(o wire) wire {
	return wire{w.udpPkts - o.udpPkts, w.udpBytes - o.udpBytes, w.tcpPkts - o.tcpPkts, w.tcpBytes - o.tcpBytes}
}

// netns is the namespace's tooling, once set up.
type netns struct{}

// setupNetns brings loopback up and adds the counting rules. It is called
// in the child only.
func setupNetns() (*netns, error) {
	if _, err := run("ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	for _, proto := range []string{"udp", "tcp"} {
		if _, err := run("iptables", "-w", "5", "-A", "OUTPUT", "-p", proto, "-m", "comment", "--comment", "bench"+proto); err != nil {
			return nil, err
		}
	}
	if _, err := (&netns{}).counters(); err != nil {
		return nil, err
	}
	return &netns{}, nil
}

// counters reads the counting rules (packets and bytes, IP headers
// included) with iptables-save -c.
func (*netns) counters() (wire, error) {
	out, err := run("iptables-save", "-c", "-t", "filter")
	if err != nil {
		return wire{}, err
	}
	var w wire
	found := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		var dst *uint64
		switch {
		case strings.Contains(line, "--comment benchudp"):
			dst = &w.udpPkts
		case strings.Contains(line, "--comment benchtcp"):
			dst = &w.tcpPkts
		default:
			continue
		}
		// [packets:bytes] -A OUTPUT ...
		end := strings.IndexByte(line, ']')
		if !strings.HasPrefix(line, "[") || end < 0 {
			return wire{}, fmt.Errorf("iptables-save: unexpected line %q", line)
		}
		pb := strings.SplitN(line[1:end], ":", 2)
		if len(pb) != 2 {
			return wire{}, fmt.Errorf("iptables-save: unexpected line %q", line)
		}
		p, err1 := strconv.ParseUint(pb[0], 10, 64)
		b, err2 := strconv.ParseUint(pb[1], 10, 64)
		if err1 != nil || err2 != nil {
			return wire{}, fmt.Errorf("iptables-save: unexpected line %q", line)
		}
		if dst == &w.udpPkts {
			w.udpPkts, w.udpBytes = p, b
		} else {
			w.tcpPkts, w.tcpBytes = p, b
		}
		found++
	}
	if found != 2 {
		return wire{}, fmt.Errorf("iptables-save: %d of the 2 counting rules found", found)
	}
	return w, nil
}

// pauseRules are the rules that cut node port off: UDP and TCP to and from
// its port, and TCP connections it dialled (their sockets carry the port as
// SO_MARK; see memberlist.go).
func pauseRules(port int) [][]string {
	p := strconv.Itoa(port)
	return [][]string{
		{"INPUT", "-p", "udp", "--dport", p, "-j", "DROP"},
		{"OUTPUT", "-p", "udp", "--sport", p, "-j", "DROP"},
		{"INPUT", "-p", "tcp", "--dport", p, "-j", "DROP"},
		{"OUTPUT", "-p", "tcp", "--sport", p, "-j", "DROP"},
		{"OUTPUT", "-m", "mark", "--mark", p, "-j", "DROP"},
	}
}

// pause drops all traffic of the node on port, at once (one
// iptables-restore).
func (*netns) pause(port int) error { return editPauseRules(port, "-I", "pause") }

// resume removes pause's rules.
func (*netns) resume(port int) error { return editPauseRules(port, "-D", "resume") }

// editPauseRules inserts (op "-I") or deletes (op "-D") the pause rules of
// port in one iptables-restore; what names the step in its error.
func editPauseRules(port int, op, what string) error {
	var b bytes.Buffer
	b.WriteString("*filter\n")
	for _, r := range pauseRules(port) {
		b.WriteString(op + " " + strings.Join(r, " ") + "\n")
	}
	b.WriteString("COMMIT\n")
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "iptables-restore", "-w", "5", "--noflush")
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore (%s port %d): %v: %s", what, port, err, strings.TrimSpace(string(out)))
	}
	return nil
}
