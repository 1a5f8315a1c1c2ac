package smudge

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
)

// Push-pull state sync over streams (see internal/swim/pushpull.go). The
// engine says whom to sync with (TakePushPulls); the loop builds this
// node's state and a goroutine sends it as a request of type 3; the member
// merges it and answers with its own state, which the loop merges. At most
// Limits.MaxConcurrentPushPulls syncs run at once here, served and
// started together; past it requests are answered busy and targets are
// dropped (the next interval picks another). A failed sync is not retried,
// but for the one after Join, which goes on to the next seed.
// Nodes older than push-pull count the request as malformed and close the
// stream: the sync fails and nothing else happens.

// maxStateFrame is the longest push-pull frame: a compressed state of
// swim.DefaultMaxStateBytes (flate adds a few bytes per 64 KiB at worst),
// the request header and a seal.
const maxStateFrame = swim.DefaultMaxStateBytes + 1024 + streamSlack

// startPushPulls starts a sync with each target the engine has due. It
// runs on the loop, which owns e.
func (c *Cluster) startPushPulls(e *swim.Engine) {
	c.ppTargets = e.TakePushPulls(c.ppTargets[:0])
	if len(c.ppTargets) == 0 {
		return
	}
	s := &c.streams
	s.mu.Lock()
	on := s.pub != nil && !s.closed
	if on {
		s.wg.Add(len(c.ppTargets))
	}
	s.mu.Unlock()
	if !on {
		return
	}
	for _, to := range c.ppTargets {
		if !s.acquirePushPull(c.cfg.Limits.MaxConcurrentPushPulls) {
			s.pushPullFailed(&s.ppNoSlot)
			s.wg.Done()
			continue
		}
		state := e.AppendState(nil)
		go c.pushPull(to, state)
	}
}

// pushPullFailed counts a failed sync, in the total and under its reason.
func (s *streamLayer) pushPullFailed(why *atomic.Uint64) {
	why.Add(1)
	s.ppFailed.Add(1)
}

// acquirePushPull takes a slot of the concurrent syncs, if one is free.
func (s *streamLayer) acquirePushPull(limit int) bool {
	if s.ppRunning.Add(1) > int64(limit) {
		s.ppRunning.Add(-1)
		return false
	}
	return true
}

// pushPull sends state to the member at to and merges its answer.
func (c *Cluster) pushPull(to netip.AddrPort, state []byte) {
	s := &c.streams
	defer s.wg.Done()
	defer s.ppRunning.Add(-1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	status, body, err := c.roundTripBody(ctx, to, requestPushPull, state, maxStateFrame)
	switch {
	case err != nil:
		s.pushPullFailed(&s.ppUnreachable)
		c.log.logf(LogDebug, "smudge: push-pull with %v: %v", to, err)
		c.pushPullFailed(to)
		return
	case status != statusOK:
		s.pushPullFailed(&s.ppRefused)
		c.log.logf(LogDebug, "smudge: push-pull with %v: refused (status %d)", to, status)
		c.pushPullFailed(to)
		return
	}
	err = c.do(func(now time.Time, e *swim.Engine) error { return e.MergeState(now, to, body) })
	if err != nil {
		if errors.Is(err, swim.ErrBadState) { // not a shutdown meanwhile
			s.pushPullFailed(&s.ppBadState)
			c.pushPullFailed(to)
		}
		c.log.logf(LogDebug, "smudge: push-pull with %v: %v", to, err)
		return
	}
	s.ppOut.Add(1)
}

// pushPullFailed tells the engine that the sync with to failed, so that
// the one after Join is tried with the next seed.
func (c *Cluster) pushPullFailed(to netip.AddrPort) {
	c.do(func(_ time.Time, e *swim.Engine) error { // fails only if stopped
		e.PushPullFailed(to)
		return nil
	})
}

// servePushPull merges a member's state and returns this node's.
func (c *Cluster) servePushPull(req request) (byte, []byte) {
	s := &c.streams
	if !s.acquirePushPull(c.cfg.Limits.MaxConcurrentPushPulls) {
		s.ppBusy.Add(1)
		return statusBusy, nil
	}
	defer s.ppRunning.Add(-1)
	var state []byte
	err := c.do(func(now time.Time, e *swim.Engine) error {
		if err := e.MergeState(now, netip.AddrPort{}, req.data); err != nil {
			return err
		}
		state = e.AppendState(nil)
		return nil
	})
	if err != nil {
		if errors.Is(err, swim.ErrBadState) { // not a shutdown meanwhile
			s.pushPullFailed(&s.ppBadState)
			s.malformed.Add(1)
		}
		c.log.logf(LogDebug, "smudge: push-pull from %v: %v", req.from, err)
		return statusNoTaker, nil
	}
	s.ppIn.Add(1)
	return statusOK, state
}
