package main

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// counters count what a library's nodes sent.
type counters struct {
	packets atomic.Uint64 // UDP datagrams
	bytes   atomic.Uint64 // UDP and TCP payload bytes
	streams atomic.Uint64 // TCP connections dialled (memberlist; smudge counts its own)
}

// countingConn counts the bytes written on a stream.
type countingConn struct {
	net.Conn
	c *counters
}

func (cc countingConn) Write(b []byte) (int, error) {
	n, err := cc.Conn.Write(b)
	cc.c.bytes.Add(uint64(n))
	return n, err
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tracker records, per observing node, when it saw each node dead and when
// it delivered each broadcast.
type tracker struct {
	mu        sync.Mutex
	dead      map[int]map[string]time.Time // observer -> subject address -> first time seen dead
	delivered map[int]map[string]time.Time // observer -> payload -> first delivery
}

func newTracker() *tracker {
	return &tracker{dead: map[int]map[string]time.Time{}, delivered: map[int]map[string]time.Time{}}
}

func (t *tracker) sawDead(observer int, subject string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead[observer] == nil {
		t.dead[observer] = map[string]time.Time{}
	}
	if _, ok := t.dead[observer][subject]; !ok {
		t.dead[observer][subject] = time.Now()
	}
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

// allSawDead reports whether every observer in obs saw subject dead.
func (t *tracker) allSawDead(obs []int, subject string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range obs {
		if _, ok := t.dead[o][subject]; !ok {
			return false
		}
	}
	return true
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
	// liveMembers is how many live members (itself included) node i sees.
	liveMembers(i int) int
	// broadcast sends payload from node i.
	broadcast(i int, payload string) error
	// kill stops node i without a word; addr is what the others call it.
	kill(i int) (addr string)
	// streams is how many TCP connections the nodes have opened so far.
	streams() uint64
	// stop stops every node.
	stop()
}

// measure runs the scenarios on a started cluster of n nodes whose joins
// began at joinStart.
func measure(l lib, n int, tr *tracker, c *counters, joinStart time.Time, p params) result {
	var r result
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	r.join = waitFor(joinStart, 60*time.Second, func() bool {
		for i := range n {
			if l.liveMembers(i) != n {
				return false
			}
		}
		return true
	})
	if r.join < 0 {
		r.broadcast, r.dead = -1, -1
		return r
	}

	time.Sleep(p.settle)
	p0, b0, s0, cpu0, t0 := c.packets.Load(), c.bytes.Load(), l.streams(), cpuTime(), time.Now()
	time.Sleep(p.window)
	el := time.Since(t0).Seconds()
	r.pktsPerNodeSec = float64(c.packets.Load()-p0) / float64(n) / el
	r.bytesPerNodeSec = float64(c.bytes.Load()-b0) / float64(n) / el
	r.streamsPerNodeSec = float64(l.streams()-s0) / float64(n) / el
	r.cpuMsPerNodeSec = float64(cpuTime()-cpu0) / float64(time.Millisecond) / float64(n) / el

	payload := "bench broadcast " + time.Now().Format(time.RFC3339Nano)
	start := time.Now()
	if err := l.broadcast(1, payload); err != nil {
		r.err = err
		r.broadcast = -1
	} else {
		r.broadcast = waitFor(start, 30*time.Second, func() bool { return tr.allDelivered(append(all[:1:1], all[2:]...), payload) })
	}

	victim := n - 1
	start = time.Now()
	addr := l.kill(victim)
	r.dead = waitFor(start, 90*time.Second, func() bool { return tr.allSawDead(all[:victim], addr) })
	return r
}
