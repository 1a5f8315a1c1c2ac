package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds on every wait.
const (
	dockerCmdTimeout = 60 * time.Second // one docker command (run, kill, network ...)
	stopCmdTimeout   = 40 * time.Second // docker stop: up to 10 s of grace, then SIGKILL
	buildTimeout     = 5 * time.Minute  // go build and docker build of the image
	probeTimeout     = 20 * time.Second // does a Docker daemon answer?
	pollEvery        = 200 * time.Millisecond
	staleAfter       = time.Hour // leftovers of killed runs are removed after this
)

// Labels on everything a run creates.
const (
	labelRun     = "smudge-e2e"         // the run id
	labelCreated = "smudge-e2e.created" // unix seconds
	labelNet     = "smudge-e2e.network" // containers: the network they were started on
)

// runID names this run's containers, networks, image and cluster.
var runID = fmt.Sprintf("e2e-%s-%d-%04x", time.Now().UTC().Format("150405"), os.Getpid(), rand.IntN(1<<16))

var (
	imageOnce    sync.Once
	imageTag     string // set once the image is built
	imageProblem string // why there is no image: the tests skip (or fail) with it
	imageFailed  bool   // the problem is a failure, not a missing daemon
	imageSize    int64
)

// measurements collects the figures the tests measure, printed at the end.
var measurements struct {
	sync.Mutex
	lines []string
}

func measured(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log("MEASURED: " + line)
	measurements.Lock()
	measurements.lines = append(measurements.lines, t.Name()+": "+line)
	measurements.Unlock()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if imageTag != "" {
		ctx, cancel := context.WithTimeout(context.Background(), dockerCmdTimeout)
		if _, err := docker(ctx, "rmi", "-f", imageTag); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: removing image %s: %v\n", imageTag, err)
		}
		cancel()
	}
	if len(measurements.lines) > 0 {
		fmt.Println("e2e measurements:")
		if imageSize > 0 {
			fmt.Printf("  image size: %.1f MB (%d bytes)\n", float64(imageSize)/1e6, imageSize)
		}
		for _, l := range measurements.lines {
			fmt.Println("  " + l)
		}
	}
	os.Exit(code)
}

// docker runs the docker CLI and returns its standard output, trimmed. The
// error includes standard error.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out (%w)", ctx.Err())
	}
	if err != nil {
		return out.String(), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// dockerT runs docker with the usual timeout and fails the test on error.
func dockerT(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dockerCmdTimeout)
	defer cancel()
	out, err := docker(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// needImage skips the test when no Docker daemon answers and otherwise
// returns the demo image, built once per run from this checkout.
func needImage(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with Docker: skipped in -short mode")
	}
	imageOnce.Do(buildImage)
	switch {
	case imageTag != "":
		return imageTag
	case imageFailed:
		t.Fatal(imageProblem)
	case os.Getenv("SMUDGE_E2E_REQUIRE_DOCKER") == "1":
		t.Fatal(imageProblem + " (and SMUDGE_E2E_REQUIRE_DOCKER=1)")
	default:
		t.Skip("SKIPPED: " + imageProblem)
	}
	return ""
}

// buildImage checks the daemon, builds the static demo binary, and builds
// the image from the repository's Dockerfile, as `make image` does, under a
// tag of this run.
func buildImage() {
	if _, err := exec.LookPath("docker"); err != nil {
		imageProblem = "the docker command is not installed: the end-to-end tests need a Docker daemon"
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	version, err := docker(ctx, "version", "--format", "{{.Server.Version}}")
	cancel()
	if err != nil {
		imageProblem = "no Docker daemon answers (the end-to-end tests need one): " + err.Error()
		return
	}
	removeStale()

	fail := func(format string, args ...any) {
		imageProblem, imageFailed = fmt.Sprintf(format, args...), true
	}
	root, err := filepath.Abs("..")
	if err != nil {
		fail("e2e: %v", err)
		return
	}
	if _, err := os.Stat(filepath.Join(root, "Dockerfile")); err != nil {
		fail("e2e: no Dockerfile at the module root: %v", err)
		return
	}
	dir, err := os.MkdirTemp("", "smudge-e2e-image-")
	if err != nil {
		fail("e2e: %v", err)
		return
	}
	defer os.RemoveAll(dir)

	ctx, cancel = context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "bin", "smudge"), "./example")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fail("e2e: building the static demo binary (CGO_ENABLED=0 go build ./example): %v\n%s", err, out)
		return
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
		if err != nil {
			fail("e2e: copying %s: %v", f, err)
			return
		}
	}
	tag := "smudge-e2e:" + runID
	if _, err := docker(ctx, "build", "--quiet", "--label", labelRun+"="+runID,
		"--label", labelCreated+"="+strconv.FormatInt(time.Now().Unix(), 10), "-t", tag, dir); err != nil {
		fail("e2e: docker build of the Dockerfile (daemon %s): %v", version, err)
		return
	}
	imageTag = tag
	if s, err := docker(ctx, "image", "inspect", "--format", "{{.Size}}", tag); err == nil {
		imageSize, _ = strconv.ParseInt(s, 10, 64)
	}
}

// removeStale removes containers, networks and images of earlier runs that
// were killed before they could clean up, once they are staleAfter old.
func removeStale() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*dockerCmdTimeout)
	defer cancel()
	old := func(created string) bool {
		n, err := strconv.ParseInt(created, 10, 64)
		return err == nil && time.Since(time.Unix(n, 0)) > staleAfter
	}
	format := `{{.ID}} {{.Label "` + labelCreated + `"}}`
	for _, kind := range []struct{ list, rm []string }{
		{[]string{"ps", "-a"}, []string{"rm", "-f", "-v"}},
		{[]string{"network", "ls"}, []string{"network", "rm"}},
	} {
		out, err := docker(ctx, append(kind.list, "--filter", "label="+labelRun, "--format", format)...)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 2 && old(f[1]) {
				docker(ctx, append(kind.rm, f[0])...)
			}
		}
	}
	out, err := docker(ctx, "images", "--filter", "label="+labelRun, "--format", "{{.ID}}")
	if err != nil {
		return
	}
	for _, id := range strings.Fields(out) {
		created, err := docker(ctx, "image", "inspect", "--format", `{{index .Config.Labels "`+labelCreated+`"}}`, id)
		if err == nil && old(created) {
			docker(ctx, "rmi", "-f", id)
		}
	}
}

// network is a Docker bridge network of one test, with its nodes.
type network struct {
	t      *testing.T
	name   string
	image  string
	v6     bool
	prefix netip.Prefix // the subnet node addresses come from
	nodes  []*node
}

// node is one container.
type node struct {
	name    string
	ip      netip.Addr
	addr    string // the node's identity, "ip:9999" or "[ip]:9999"
	started time.Time
}

// newNetwork creates a bridge network of its own for t, on a random subnet
// (IPv4: a /24 of 198.18.0.0/15, the range set aside for benchmarks, never
// used by real networks; IPv6: a random unique local /64), and removes it,
// with every container started on it, when t ends. When the daemon refuses
// an IPv6 network, the test is skipped.
func newNetwork(t *testing.T, v6 bool) *network {
	t.Helper()
	n := &network{t: t, image: needImage(t), v6: v6}
	n.name = runID + "-" + strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(strings.TrimPrefix(t.Name(), "Test")))
	var lastErr error
	for try := 0; try < 8; try++ {
		var args []string
		if v6 {
			var b [16]byte
			b[0] = 0xfd
			for i := 1; i < 8; i++ {
				b[i] = byte(rand.IntN(256))
			}
			n.prefix = netip.PrefixFrom(netip.AddrFrom16(b), 64)
			args = []string{"--ipv6", "--subnet", n.prefix.String()}
		} else {
			n.prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(rand.IntN(2)), byte(rand.IntN(256)), 0}), 24)
			args = []string{"--subnet", n.prefix.String()}
		}
		ctx, cancel := context.WithTimeout(context.Background(), dockerCmdTimeout)
		_, err := docker(ctx, append(append([]string{"network", "create", "--driver", "bridge",
			"--label", labelRun + "=" + runID, "--label", labelCreated + "=" + strconv.FormatInt(time.Now().Unix(), 10)},
			args...), n.name)...)
		cancel()
		if err == nil {
			lastErr = nil
			break
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	if lastErr != nil {
		if v6 {
			t.Skipf("SKIPPED: the Docker daemon refuses an IPv6 network: %v", lastErr)
		}
		t.Fatal(lastErr)
	}
	t.Cleanup(n.remove)
	return n
}

// remove dumps the nodes' output if the test failed, then removes every
// container of the network and the network.
func (n *network) remove() {
	t := n.t
	ctx, cancel := context.WithTimeout(context.Background(), 3*dockerCmdTimeout)
	defer cancel()
	if t.Failed() {
		for _, nd := range n.nodes {
			out, err := dockerLogs(ctx, nd.name)
			t.Logf("---- output of %s (%s) ----\n%s%v", nd.name, nd.addr, out, errOrEmpty(err))
		}
	}
	ids, err := docker(ctx, "ps", "-aq", "--filter", "label="+labelNet+"="+n.name)
	if err != nil {
		t.Errorf("cleanup: %v", err)
	} else if ids := strings.Fields(ids); len(ids) > 0 {
		if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, ids...)...); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if _, err := docker(ctx, "network", "rm", n.name); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// host returns the address of the i-th node (from 1): .11, .12, ... of the
// subnet.
func (n *network) host(i int) netip.Addr {
	b := n.prefix.Addr().AsSlice()
	b[len(b)-1] = byte(10 + i)
	a, _ := netip.AddrFromSlice(b)
	return a
}

// start starts nodes 1..count, one after the other, with a fixed address
// each and the cluster name of this run, no initial hosts: they can only
// find each other by multicast. env adds SMUDGE_* settings.
func (n *network) start(count int, env ...string) {
	n.t.Helper()
	for i := 1; i <= count; i++ {
		nd := &node{name: fmt.Sprintf("%s-%d", n.name, i), ip: n.host(i)}
		nd.addr = netip.AddrPortFrom(nd.ip, 9999).String()
		args := []string{"run", "-d", "--name", nd.name, "--network", n.name,
			"--label", labelRun + "=" + runID, "--label", labelNet + "=" + n.name,
			"--label", labelCreated + "=" + strconv.FormatInt(time.Now().Unix(), 10),
			"-e", "SMUDGE_CLUSTER_NAME=" + n.name}
		if n.v6 {
			args = append(args, "--ip6", nd.ip.String(), "-e", "SMUDGE_LISTEN_IP=::",
				"-e", "SMUDGE_ADVERTISE_ADDRESS="+nd.addr)
		} else {
			args = append(args, "--ip", nd.ip.String())
		}
		for _, e := range env {
			args = append(args, "-e", e)
		}
		n.nodes = append(n.nodes, nd) // before run: removed by label even if run fails half way
		dockerT(n.t, append(args, n.image)...)
		nd.started = n.startedAt(nd)
	}
}

// startedAt is when the container's process started, by the daemon.
func (n *network) startedAt(nd *node) time.Time {
	n.t.Helper()
	s := dockerT(n.t, "inspect", "--format", "{{.State.StartedAt}}", nd.name)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		n.t.Fatalf("start time of %s: %q: %v", nd.name, s, err)
	}
	return at
}

// addrs returns the identities of nodes.
func addrs(nodes []*node) []string {
	out := make([]string, len(nodes))
	for i, nd := range nodes {
		out[i] = nd.addr
	}
	return out
}

// statusLine is one line of a node's output about a member:
// "15:04:05.000 ADDR STATUS" or "15:04:05.000 ADDR DEAD (left)".
type statusLine struct {
	at     time.Time
	addr   string
	status string // ALIVE, SUSPECTED, DEAD, REMOVED
	left   bool
}

func (l statusLine) String() string {
	s := l.at.Format("15:04:05.000") + " " + l.addr + " " + l.status
	if l.left {
		s += " (left)"
	}
	return s
}

// dockerLogs returns a container's output, standard output and error.
func dockerLogs(ctx context.Context, name string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", "logs", name)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker logs %s: %v", name, err)
	}
	return string(out), nil
}

// parseStatusLines picks the status lines out of a node's output. Their
// time of day is in UTC (the image has no time zone data) and is placed on
// the day of now, or the day before when that would put it in the future.
func parseStatusLines(out string, now time.Time) []statusLine {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var lines []statusLine
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 && !(len(f) == 4 && f[3] == "(left)") {
			continue
		}
		if _, err := netip.ParseAddrPort(f[1]); err != nil {
			continue
		}
		switch f[2] {
		case "ALIVE", "SUSPECTED", "DEAD", "REMOVED":
		default:
			continue
		}
		tod, err := time.Parse("15:04:05.000", f[0])
		if err != nil {
			continue
		}
		at := day.Add(time.Duration(tod.Hour())*time.Hour + time.Duration(tod.Minute())*time.Minute +
			time.Duration(tod.Second())*time.Second + time.Duration(tod.Nanosecond()))
		if at.After(now.Add(time.Hour)) {
			at = at.Add(-24 * time.Hour)
		}
		lines = append(lines, statusLine{at: at, addr: f[1], status: f[2], left: len(f) == 4})
	}
	return lines
}

// view is what a node sees: the last status line about each member.
type view map[string]statusLine

func viewOf(lines []statusLine) view {
	v := view{}
	for _, l := range lines {
		v[l.addr] = l
	}
	return v
}

func (v view) String() string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n    %v", v[k])
	}
	return b.String()
}

// want is a condition on a view: the status each of some members must
// have. status "DEAD (left)" asks for a leave.
type want map[string]string

func (w want) holds(v view) bool {
	for addr, st := range w {
		l, ok := v[addr]
		if !ok {
			return false
		}
		got := l.status
		if l.left {
			got += " (left)"
		}
		if got != st {
			return false
		}
	}
	return true
}

// since is when the condition became true in v: the latest of the lines
// it depends on.
func (w want) since(v view) time.Time {
	var at time.Time
	for addr := range w {
		if l := v[addr]; l.at.After(at) {
			at = l.at
		}
	}
	return at
}

func wantAll(addrs []string, status string) want {
	w := want{}
	for _, a := range addrs {
		w[a] = status
	}
	return w
}

// waitViews polls the output of observers until each one's view satisfies
// cond, for at most timeout. It returns when the last of them got there, by
// the time stamps of their lines, and each observer's lines.
func waitViews(t *testing.T, observers []*node, cond want, timeout time.Duration, what string) (time.Time, map[string][]statusLine) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	if d, ok := t.Deadline(); ok && d.Add(-30*time.Second).Before(deadline) {
		deadline = d.Add(-30 * time.Second) // leave time to clean up
	}
	for {
		all := map[string][]statusLine{}
		views := map[string]view{}
		done := true
		var last time.Time
		var errs []error
		for _, nd := range observers {
			ctx, cancel := context.WithTimeout(context.Background(), dockerCmdTimeout)
			out, err := dockerLogs(ctx, nd.name)
			cancel()
			if err != nil {
				errs = append(errs, err)
			}
			lines := parseStatusLines(out, time.Now())
			all[nd.name] = lines
			v := viewOf(lines)
			views[nd.name] = v
			if !cond.holds(v) {
				done = false
				continue
			}
			if at := cond.since(v); at.After(last) {
				last = at
			}
		}
		if done {
			return last, all
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, nd := range observers {
				fmt.Fprintf(&b, "\n  %s (%s) sees:%v", nd.name, nd.addr, views[nd.name])
			}
			if err := errors.Join(errs...); err != nil {
				fmt.Fprintf(&b, "\n%v", err)
			}
			t.Fatalf("timed out after %v waiting for %s%s", timeout, what, b.String())
		}
		time.Sleep(pollEvery)
	}
}
