package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// counters count what a memberlist cluster's nodes sent (smudge counts its
// own, in Cluster.Stats).
type counters struct {
	packets  atomic.Uint64 // UDP datagrams
	bytes    atomic.Uint64 // UDP payload bytes
	tcpBytes atomic.Uint64 // TCP payload bytes, both ends of every stream
	streams  atomic.Uint64 // TCP connections dialled
}

// countingConn counts the bytes written on a stream.
type countingConn struct {
	net.Conn
	c *counters
}

func (cc countingConn) Write(b []byte) (int, error) {
	n, err := cc.Conn.Write(b)
	cc.c.tcpBytes.Add(uint64(n))
	return n, err
}

// payload is what a cluster's nodes handed to the network, as the library
// (or our wrapper of its transport) counts it: no IP, UDP or TCP headers.
type payload struct {
	udpPkts, udpBytes, tcpBytes, streams uint64
}

func (p payload) sub(o payload) payload {
	return payload{p.udpPkts - o.udpPkts, p.udpBytes - o.udpBytes, p.tcpBytes - o.tcpBytes, p.streams - o.streams}
}

// Header sizes for estimates without iptables: IPv4 (20) + UDP (8), and
// IPv4 (20) + TCP with Linux's timestamp option (32); and the packets of
// one short TCP exchange (handshake 3, a request and a response with their
// acks 4, close 3-4).
const (
	udpHeader        = 28
	tcpHeader        = 52
	tcpPktsPerStream = 11
)

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// deadEvent is one observer declaring one subject DEAD.
type deadEvent struct {
	observer int
	subject  string
	at       time.Time
}

// tracker records, per observing node, every DEAD it reports and when it
// delivered each broadcast.
type tracker struct {
	mu        sync.Mutex
	dead      []deadEvent
	delivered map[int]map[string]time.Time // observer -> payload -> first delivery
}

func newTracker() *tracker {
	return &tracker{delivered: map[int]map[string]time.Time{}}
}

func (t *tracker) sawDead(observer int, subject string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dead = append(t.dead, deadEvent{observer, subject, time.Now()})
}

// deliver records a delivery and reports whether it was the first at that
// observer.
func (t *tracker) deliver(observer int, payload string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.delivered[observer] == nil {
		t.delivered[observer] = map[string]time.Time{}
	}
	if _, ok := t.delivered[observer][payload]; ok {
		return false
	}
	t.delivered[observer][payload] = time.Now()
	return true
}

// allSawDeadSince reports whether every observer in obs declared subject
// DEAD at or after since.
func (t *tracker) allSawDeadSince(obs []int, subject string, since time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	saw := map[int]bool{}
	for _, e := range t.dead {
		if e.subject == subject && !e.at.Before(since) {
			saw[e.observer] = true
		}
	}
	for _, o := range obs {
		if !saw[o] {
			return false
		}
	}
	return true
}

// deadSince counts the (observer, subject) pairs, subject in subjects,
// declared DEAD at or after since, those of them by observers in by, and the
// distinct subjects among them.
func (t *tracker) deadSince(subjects map[string]bool, by map[int]bool, since time.Time) (pairs, pairsBy, distinct int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	type pair struct {
		o int
		s string
	}
	ps, ss := map[pair]bool{}, map[string]bool{}
	for _, e := range t.dead {
		if subjects[e.subject] && !e.at.Before(since) {
			if !ps[pair{e.observer, e.subject}] && by[e.observer] {
				pairsBy++
			}
			ps[pair{e.observer, e.subject}] = true
			ss[e.subject] = true
		}
	}
	return len(ps), pairsBy, len(ss)
}

// allDelivered reports whether every observer in obs delivered payload.
func (t *tracker) allDelivered(obs []int, payload string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range obs {
		if _, ok := t.delivered[o][payload]; !ok {
			return false
		}
	}
	return true
}

// waitFor polls cond every 5 ms until it holds (returning the time taken
// since start) or limit passes (returning -1).
func waitFor(start time.Time, limit time.Duration, cond func() bool) time.Duration {
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			return -1
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lib is one library's cluster of nodes under test.
type lib interface {
	size() int
	// liveMembers is how many live members (itself included) node i sees.
	liveMembers(i int) int
	// addr is what the others call node i; port is its (UDP and TCP) port.
	addr(i int) string
	port(i int) int
	// sent is what all nodes sent so far, as the library counts it.
	sent() payload
	// broadcast sends payload from node i.
	broadcast(i int, payload string) error
	// kill stops node i without a word; addr is what the others call it.
	kill(i int) (addr string)
	// stop stops every node.
	stop()
}

// starter makes and starts a cluster of n nodes reporting to tr; the joins
// began at the returned time.
type starter func(n int, tr *tracker) (lib, time.Time, error)

// startWithRetry starts a cluster, and once more if the start itself fails
// (a bind, a Start or a Join call returning an error: not what is
// measured). The note says so.
func startWithRetry(start starter, n int, tr func() *tracker) (lib, *tracker, time.Time, string, error) {
	t := tr()
	l, at, err := start(n, t)
	if err == nil {
		return l, t, at, "", nil
	}
	note := fmt.Sprintf("cluster start failed (%v); tried again", err)
	time.Sleep(time.Second)
	t = tr()
	l, at, err2 := start(n, t)
	if err2 != nil {
		return nil, nil, time.Time{}, note, fmt.Errorf("start failed twice: %v; then %v", err, err2)
	}
	return l, t, at, note, nil
}

// converged reports whether every node of l sees all n live.
func converged(l lib) bool {
	n := l.size()
	for i := range n {
		if l.liveMembers(i) != n {
			return false
		}
	}
	return true
}

// traffic is the steady cost over a window, per node per second.
type traffic struct {
	udpPkts, udpBytes, tcpPkts, tcpBytes float64 // on the wire, IP headers included
	streams                              float64 // TCP connections opened
	estimated                            bool    // TCP from the library's stats, not iptables
	cpuMs                                float64
}

func (t traffic) pkts() float64  { return t.udpPkts + t.tcpPkts }
func (t traffic) bytes() float64 { return t.udpBytes + t.tcpBytes }

// slowResult is what the slow-node scenario saw.
type slowResult struct {
	ran        bool
	falsePairs int // (observer, healthy subject) DEAD declarations
	byPaused   int // of which by the paused nodes themselves
	falseNodes int // healthy nodes declared DEAD by anyone
	pausedDead int // paused nodes declared DEAD by anyone (allowed)
	paused     int
}

// result is what one library measured in one run.
type result struct {
	join, broadcast time.Duration // -1: did not happen in time
	// kills are the times from each kill to DEAD at all survivors (-1: not
	// within 90 s), victims n-1, n-2, ... in turn.
	kills   []time.Duration
	planned int // kills planned (params.kills): a run cut short has fewer
	traffic traffic
	slow    slowResult
	notes   []string
	err     error
}

// params are the timing knobs of a run.
type params struct {
	window, settle time.Duration
	kills          int    // nodes killed one after another (at most maxKills(n))
	ns             *netns // nil: no iptables (not root, or it failed)
	verbose        bool
}

func logf(p params, format string, args ...any) {
	if p.verbose {
		fmt.Fprintf(os.Stderr, "bench:     "+format+"\n", args...)
	}
}

// runScenarios starts a cluster and runs every scenario on it, in order:
// join, settle, traffic window, broadcast, kill, slow nodes (last, so that
// what they stir up touches nothing else).
func runScenarios(start starter, n int, cfg config, p params, seed uint64) result {
	r := result{join: -1, broadcast: -1, planned: p.kills}
	l, tr, joinStart, note, err := startWithRetry(start, n, newTracker)
	if note != "" {
		r.notes = append(r.notes, note)
	}
	if err != nil {
		r.err = err
		return r
	}
	defer l.stop()
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	r.join = waitFor(joinStart, 60*time.Second, func() bool { return converged(l) })
	logf(p, "join: %v", r.join)
	if r.join < 0 {
		return r
	}

	time.Sleep(p.settle)
	r.traffic, err = measureTraffic(l, n, p)
	if err != nil {
		r.err = err
		return r
	}
	logf(p, "traffic: %+v", r.traffic)

	msg := "bench broadcast " + time.Now().Format(time.RFC3339Nano)
	t0 := time.Now()
	if err := l.broadcast(1, msg); err != nil {
		r.err = err
	} else {
		r.broadcast = waitFor(t0, 30*time.Second, func() bool { return tr.allDelivered(append(all[:1:1], all[2:]...), msg) })
	}
	logf(p, "broadcast: %v", r.broadcast)

	// Kills, one at a time, each once the last is DEAD at all survivors
	// (or not within 90 s): a single kill's time depends much on how soon
	// some node happens to probe the victim (up to a period or two).
	for k := range p.kills {
		victim := n - 1 - k
		t0 = time.Now()
		addr := l.kill(victim)
		d := waitFor(t0, 90*time.Second, func() bool { return tr.allSawDeadSince(all[:victim], addr, t0) })
		r.kills = append(r.kills, d)
		logf(p, "kill %d (node %d): %v", k+1, victim, d)
	}

	if p.ns != nil {
		r.slow, err = slowNodes(l, tr, n, cfg, p, seed)
		if err != nil {
			r.err = err
			return r
		}
		logf(p, "slow nodes: %+v", r.slow)
	}
	return r
}

// measureTraffic counts what the nodes send over p.window.
func measureTraffic(l lib, n int, p params) (traffic, error) {
	var w0, w1 wire
	var err error
	if p.ns != nil {
		if w0, err = p.ns.counters(); err != nil {
			return traffic{}, err
		}
	}
	s0, cpu0, t0 := l.sent(), cpuTime(), time.Now()
	time.Sleep(p.window)
	s1, cpu1 := l.sent(), cpuTime()
	if p.ns != nil {
		if w1, err = p.ns.counters(); err != nil {
			return traffic{}, err
		}
	}
	el := time.Since(t0).Seconds()
	per := func(x float64) float64 { return x / float64(n) / el }
	d := s1.sub(s0)
	t := traffic{streams: per(float64(d.streams)), cpuMs: per(float64(cpu1-cpu0) / float64(time.Millisecond))}
	if p.ns != nil {
		w := w1.sub(w0)
		t.udpPkts, t.udpBytes, t.tcpPkts, t.tcpBytes = per(float64(w.udpPkts)), per(float64(w.udpBytes)), per(float64(w.tcpPkts)), per(float64(w.tcpBytes))
		return t, nil
	}
	t.udpPkts = per(float64(d.udpPkts))
	t.udpBytes = per(float64(d.udpBytes + udpHeader*d.udpPkts))
	if d.streams > 0 || d.tcpBytes > 0 {
		tcpPkts := tcpPktsPerStream * d.streams
		t.tcpPkts = per(float64(tcpPkts))
		t.tcpBytes = per(float64(d.tcpBytes + tcpHeader*tcpPkts))
		t.estimated = true
	}
	return t, nil
}

// slowCount is how many nodes the slow-node scenario pauses at size n.
func slowCount(n int) int { return max(2, n/16) }

// maxKills is how many nodes a run of n can kill: node 0 and the
// broadcaster 1 stay, and so do the slow-node scenario's candidates.
func maxKills(n int) int { return max(1, n-2-slowCount(n)) }

// slowNodes pauses max(2, n/16) nodes (never node 0, the broadcaster 1 or
// the victims n-p.kills..n-1, killed before) for 1-3 s each, starting within 1 s of
// each other, by dropping their traffic with iptables, then waits a grace
// period, and counts the DEAD declarations about the healthy nodes meanwhile. seed
// makes both libraries pause the same nodes for the same times.
func slowNodes(l lib, tr *tracker, n int, cfg config, p params, seed uint64) (slowResult, error) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	k := slowCount(n)
	cands := make([]int, 0, n)
	alive := n - p.kills // nodes alive..n-1 were killed
	for i := 2; i < alive; i++ {
		cands = append(cands, i)
	}
	rng.Shuffle(len(cands), func(a, b int) { cands[a], cands[b] = cands[b], cands[a] })
	slow := cands[:min(k, len(cands))]
	slices.Sort(slow)
	healthy := map[string]bool{}
	pausedSet := map[string]bool{}
	slowSet := map[int]bool{}
	for i := range alive {
		healthy[l.addr(i)] = true
	}
	for _, i := range slow {
		delete(healthy, l.addr(i))
		pausedSet[l.addr(i)] = true
		slowSet[i] = true
	}
	type plan struct{ offset, dur time.Duration }
	plans := make([]plan, len(slow))
	for j := range plans {
		plans[j] = plan{time.Duration(rng.IntN(11)) * 100 * time.Millisecond, time.Second + time.Duration(rng.IntN(21))*100*time.Millisecond}
	}
	since := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(slow))
	for j, i := range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(plans[j].offset)
			port := l.port(i)
			if err := p.ns.pause(port); err != nil {
				errs <- err
				_ = p.ns.resume(port)
				return
			}
			time.Sleep(plans[j].dur)
			if err := p.ns.resume(port); err != nil {
				errs <- err
			}
		}()
		logf(p, "slow node %d (port %d): paused %v after %v", i, l.port(i), plans[j].dur, plans[j].offset)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return slowResult{}, err
	}
	time.Sleep(slowGrace(cfg))
	s := slowResult{ran: true, paused: len(slow)}
	s.falsePairs, s.byPaused, s.falseNodes = tr.deadSince(healthy, slowSet, since)
	_, _, s.pausedDead = tr.deadSince(pausedSet, nil, since)
	return s, nil
}

// slowGrace is how long after the last slow node resumes DEAD declarations
// are still counted: 6 probe intervals of the slower library, at least 5 s
// (a suspicion raised while the slow nodes were paused times out within
// that, or is refuted).
func slowGrace(cfg config) time.Duration {
	iv := max(cfg.smudgeInterval, cfg.memberlistInterval)
	if iv == 0 {
		iv = time.Second // memberlist's default
	}
	return max(5*time.Second, 6*iv)
}

// joinStarts starts clusters of n nodes k times, measuring the time until
// all see all (30 s at most) and stopping each at once.
func joinStarts(start starter, n, k int, p params) ([]time.Duration, []string) {
	var out []time.Duration
	var notes []string
	for s := range k {
		l, _, joinStart, note, err := startWithRetry(start, n, newTracker)
		if note != "" {
			notes = append(notes, fmt.Sprintf("join start %d: %s", s+1, note))
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("join start %d: %v", s+1, err))
			out = append(out, -1)
			continue
		}
		d := waitFor(joinStart, 30*time.Second, func() bool { return converged(l) })
		logf(p, "join start %d: %v", s+1, d)
		out = append(out, d)
		l.stop()
	}
	return out, notes
}
