// Command smudge is a demo node: it joins a cluster, prints every status
// change and every broadcast it receives, and broadcasts each line typed on
// its standard input.
//
// Usage:
//
//	smudge [-node ADDR]... [-port N] [-hbf MILLIS] [-listen-ip IP]
//	       [-advertise ADDR] [-cluster NAME] [-log-level LEVEL]
//	       [-bind ADDR] [-peers ADDRS] [-gossip-group N] [-cli-bind ADDR] [-no-cli] [-allow-actions]  (checkagent.go)
//	       [-id ID [-http ADDR] [-liveness-token T] [-state-dir DIR]] [-join ADDR]  (liveness.go)
//
// Every setting defaults to its SMUDGE_* environment variable (see
// smudge.ConfigFromEnv), or to the library default; flags override the
// environment. -node may be repeated and takes comma-separated lists; when
// given, it replaces SMUDGE_INITIAL_HOSTS.
//
// Standard output gets one line per event, written as soon as it happens:
//
//	15:04:05.000 127.0.0.1:9999 ALIVE
//	15:04:07.250 127.0.0.1:10000 DEAD (left)
//	15:04:08.001 127.0.0.1:10000 BROADCAST hello
//	15:04:37.250 127.0.0.1:10000 REMOVED
//
// A payload holding control characters or invalid UTF-8 is printed as a Go
// quoted string (REMOVED: a dead or left member was forgotten, after
// SMUDGE_REMOVE_DEAD_AFTER); the liveness store's own broadcasts (with -id) are not
// printed. Log messages and errors go to standard error. An empty
// input line is ignored; a line longer than the broadcast limit is reported
// on standard error and not sent. End of input stops reading; the node keeps
// running. SIGINT or SIGTERM makes the node leave the cluster gracefully
// (peers see it DEAD, left) and exit 0.
//
// Subcommands:
//
//	smudge keys ...                        manage a running agent's encryption keys (see keys.go)
//	smudge local-check -file FILE [-json]  run a checks file on this node, actions not run
//	smudge check -file FILE [-json] ...    run a checks file on every node, through an agent (checkcmd.go)
//	smudge sim [-n N] [-loss F] ...        simulate a cluster, deterministically; -h for the flags (simcmd.go)
//
// Exit status: 0 after a graceful leave (or -h), 1 if the node cannot start
// or stops on its own, 2 for a bad flag or SMUDGE_* value.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/seed-c7906467/smudge"
)

// leaveTimeout bounds the graceful leave on SIGINT or SIGTERM.
const leaveTimeout = 5 * time.Second

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sim" {
		os.Exit(runSim(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "keys" {
		os.Exit(runKeys(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "local-check" {
		os.Exit(runLocalCheck(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "check" {
		os.Exit(runCheck(os.Args[2:], os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	os.Exit(run(ctx, stop, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program. ctx ends on the first SIGINT or SIGTERM;
// stopSignals restores the default signal behaviour, so that a second
// signal during the leave kills the process.
func run(ctx context.Context, stopSignals func(), args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	defer stopSignals()
	var agent agentOptions
	cfg, err := parseConfig(args, stderr, &agent)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err == nil {
		err = agent.checks.apply(&cfg) // -bind, -peers, -gossip-group (checkagent.go)
	}
	if err != nil {
		fmt.Fprintf(stderr, "smudge: %v\n", err)
		return exitUsage
	}

	out := newLineWriter(stdout)
	c, err := smudge.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "smudge: %v\n", err)
		return exitUsage
	}
	c.AddStatusListener(statusPrinter{out})
	c.AddBroadcastListener(broadcastPrinter{out})
	stopLiveness, err := agent.liveness.start(c, stderr) // before Start: a decommissioned id must not join
	if err != nil {
		fmt.Fprintf(stderr, "smudge: %v\n", err)
		return exitError
	}
	defer stopLiveness()

	startCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = c.Start(startCtx)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, err) // it says "smudge: start: ..."
		return exitError
	}

	warnIfExposed(cfg, c, stderr)
	defer agent.checks.start(c, cfg, out, stderr)() // runs checks batches; serves smudge check
	stopControl, err := agent.startControl(c)
	if err != nil {
		fmt.Fprintf(stderr, "smudge: %v\n", err)
		c.Shutdown()
		return exitError
	}
	defer stopControl()

	go readInput(stdin, c, cfg.MaxBroadcastBytes, stderr)

	select {
	case <-c.Done():
		if agent.liveness.decommissioned(stderr) {
			return exitOK
		}
		fmt.Fprintln(stderr, "smudge: the node stopped")
		return exitError
	case <-ctx.Done():
	}
	stopSignals()
	leaveCtx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	if err := c.Leave(leaveCtx); err != nil && !errors.Is(err, smudge.ErrStopped) {
		fmt.Fprintf(stderr, "smudge: leave: %v\n", err)
		return exitError
	}
	return exitOK
}

// parseConfig builds the configuration from the SMUDGE_* environment and
// the flags in args. It returns flag.ErrHelp for -h. Every error names the
// flag or variable at fault.
func parseConfig(args []string, stderr io.Writer, agent *agentOptions) (smudge.Config, error) {
	cfg, err := smudge.ConfigFromEnv()
	if err != nil {
		return cfg, fmt.Errorf("bad environment: %w", err)
	}

	fs := flag.NewFlagSet("smudge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var nodes hostList
	fs.Var(&nodes, "node", "`ADDR` of a member to join: ip, ip:port, [v6]:port, host or host:port;\nrepeat the flag or separate addresses with commas (default $"+smudge.EnvVarInitialHosts+")")
	port := fs.Int("port", cfg.ListenPort, "UDP `port` to listen on, 0 for any ($"+smudge.EnvVarListenPort+")")
	hbf := fs.Int("hbf", int(cfg.HeartbeatInterval/time.Millisecond), "heartbeat (protocol period) in `millis`econds ($"+smudge.EnvVarHeartbeatMillis+")")
	listenIP := fs.String("listen-ip", cfg.ListenIP.String(), "`IP` address to listen on ($"+smudge.EnvVarListenIP+")")
	advertise := fs.String("advertise", cfg.AdvertiseAddr, "`ADDR` (ip or ip:port) other members reach this one at;\nempty means the listen address ($"+smudge.EnvVarAdvertiseAddress+")")
	cluster := fs.String("cluster", cfg.ClusterName, "cluster `name` ($"+smudge.EnvVarClusterName+")")
	logLevel := fs.String("log-level", strings.ToLower(cfg.LogThreshold.String()), "log threshold: all, trace, debug, info, warn, error, fatal or off ($"+smudge.EnvVarLogLevel+")")
	agent.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: smudge [flags]\n\n"+
			"Joins a smudge cluster, prints status changes and broadcasts on standard output,\n"+
			"and broadcasts each line read from standard input. SIGINT or SIGTERM leaves the\n"+
			"cluster gracefully. Defaults come from the SMUDGE_* environment variables.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, fmt.Errorf("bad flag: %w", err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	var errs []error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "node":
			cfg.InitialHosts = append([]string(nil), nodes...)
		case "port":
			if *port < 0 || *port > 65535 {
				errs = append(errs, fmt.Errorf("-port %d: out of range 0-65535", *port))
			}
			cfg.ListenPort = *port
		case "hbf":
			if *hbf <= 0 {
				errs = append(errs, fmt.Errorf("-hbf %d: must be a positive number of milliseconds", *hbf))
			}
			cfg.HeartbeatInterval = time.Duration(*hbf) * time.Millisecond
		case "listen-ip":
			ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(*listenIP, "["), "]"))
			if ip == nil {
				errs = append(errs, fmt.Errorf("-listen-ip %q: not an IP address", *listenIP))
			}
			cfg.ListenIP = ip
		case "advertise":
			cfg.AdvertiseAddr = *advertise
		case "cluster":
			cfg.ClusterName = *cluster
		case "log-level":
			l, err := smudge.ParseLogLevel(*logLevel)
			if err != nil {
				errs = append(errs, fmt.Errorf("-log-level %q: not a log level (use all, trace, debug, info, warn, error, fatal, off or 0-7)", *logLevel))
			}
			cfg.LogThreshold = l
		}
	})
	if len(errs) > 0 {
		return cfg, fmt.Errorf("bad flag: %w", errors.Join(errs...))
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("bad configuration: %w", err)
	}
	return cfg, nil
}

// hostList is the value of the repeatable -node flag.
type hostList []string

func (h *hostList) String() string {
	if h == nil {
		return ""
	}
	return strings.Join(*h, ",")
}

func (h *hostList) Set(s string) error {
	added := false
	for _, a := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		*h = append(*h, a)
		added = true
	}
	if !added {
		return errors.New("empty address")
	}
	return nil
}

// errorLine formats an error for standard error, with the time.
func errorLine(err error) string {
	return time.Now().Format(timeFormat) + " smudge: " + err.Error() + "\n"
}

// readInput broadcasts each line of r until end of input or a read error.
// Lines longer than limit bytes are reported and skipped, without holding
// more than limit+1 bytes of them in memory.
func readInput(r io.Reader, c *smudge.Cluster, limit int, stderr io.Writer) {
	lr := newLineReader(r, limit)
	for {
		line, n, err := lr.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				io.WriteString(stderr, errorLine(fmt.Errorf("reading standard input: %w", err)))
			}
			return
		}
		switch {
		case n == 0:
			continue
		case n > limit:
			io.WriteString(stderr, errorLine(fmt.Errorf("line not broadcast: %d bytes, the limit is %d (%s)",
				n, limit, smudge.EnvVarMaxBroadcastBytes)))
			continue
		}
		if err := c.Broadcast(line); err != nil {
			io.WriteString(stderr, errorLine(fmt.Errorf("line not broadcast: %w", err)))
			if errors.Is(err, smudge.ErrStopped) {
				return
			}
		}
	}
}
