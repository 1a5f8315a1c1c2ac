package swim

import (
	"math"
	"time"
)

// rttHistorySize is how many round-trip samples the adaptive timeout uses.
const rttHistorySize = 50

// rttMinSamples is how many real round trips the timeout waits for before
// it leaves the front-load values out.
const rttMinSamples = 8

// rttHistory keeps the last rttHistorySize round trips and derives the probe
// timeout from them: mean + 3 standard deviations, floored at a minimum, as
// Smudge does. It starts filled with a front-load value so that the first
// timeouts are conservative. Once rttMinSamples real round trips are in,
// the front-load values left are no longer counted: mixed with real ones
// they would make a deviation out of nothing (a history of 200 ms
// front-load and 1 ms round trips gives a 400 ms timeout on loopback).
type rttHistory struct {
	samples   [rttHistorySize]float64 // nanoseconds
	next      int
	sum       float64
	sumSq     float64
	floor     time.Duration
	frontload float64 // the front-load value
	fake      int     // front-load values still in samples
}

func newRTTHistory(frontload, floor time.Duration) *rttHistory {
	h := &rttHistory{floor: floor, frontload: float64(frontload), fake: rttHistorySize}
	v := float64(frontload)
	for i := range h.samples {
		h.samples[i] = v
	}
	h.sum = v * rttHistorySize
	h.sumSq = v * v * rttHistorySize
	return h
}

func (h *rttHistory) add(d time.Duration) {
	v := float64(d)
	old := h.samples[h.next]
	if h.fake > 0 && h.next >= rttHistorySize-h.fake {
		h.fake-- // the ring is overwritten in order: the fakes are at the end
	}
	h.samples[h.next] = v
	h.next = (h.next + 1) % rttHistorySize
	h.sum += v - old
	h.sumSq += v*v - old*old
	if h.next == 0 { // recompute once a cycle so rounding cannot accumulate
		h.sum, h.sumSq = 0, 0
		for _, s := range h.samples {
			h.sum += s
			h.sumSq += s * s
		}
	}
}

// timeout is mean + 3 sd of the history, at least the floor.
func (h *rttHistory) timeout() time.Duration { return max(h.estimate(), h.floor) }

// estimate is mean + 3 sd of the history, without the floor: the round trip
// an answer takes at most, as far as the history tells.
func (h *rttHistory) estimate() time.Duration {
	n, sum, sumSq := float64(rttHistorySize), h.sum, h.sumSq
	if real := rttHistorySize - h.fake; h.fake > 0 && real >= rttMinSamples {
		n = float64(real)
		sum -= float64(h.fake) * h.frontload
		sumSq -= float64(h.fake) * h.frontload * h.frontload
	}
	mean := sum / n
	variance := sumSq/n - mean*mean
	if variance < 0 { // rounding
		variance = 0
	}
	return time.Duration(mean + 3*math.Sqrt(variance))
}
