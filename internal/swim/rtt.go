package swim

import (
	"math"
	"time"
)

// rttHistorySize is how many round-trip samples the adaptive timeout uses.
const rttHistorySize = 50

// rttHistory keeps the last rttHistorySize round trips and derives the probe
// timeout from them: mean + 3 standard deviations, floored at a minimum, as
// Smudge does. It starts filled with a front-load value so that the first
// timeouts are conservative.
type rttHistory struct {
	samples [rttHistorySize]float64 // nanoseconds
	next    int
	sum     float64
	sumSq   float64
	floor   time.Duration
}

func newRTTHistory(frontload, floor time.Duration) *rttHistory {
	h := &rttHistory{floor: floor}
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
func (h *rttHistory) timeout() time.Duration {
	mean := h.sum / rttHistorySize
	variance := h.sumSq/rttHistorySize - mean*mean
	if variance < 0 { // rounding
		variance = 0
	}
	t := time.Duration(mean + 3*math.Sqrt(variance))
	return max(t, h.floor)
}
