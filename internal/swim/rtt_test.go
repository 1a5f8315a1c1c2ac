package swim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRTTHistoryLeavesTheFrontLoadOutOnceRealSamplesAreIn(t *testing.T) {
	h := newRTTHistory(200*time.Millisecond, 150*time.Millisecond)
	assert.Equal(t, 200*time.Millisecond, h.timeout(), "front-load only: its value")
	for range rttMinSamples - 1 {
		h.add(time.Millisecond)
	}
	// 7 real samples of 1 ms among 43 of 200 ms: mean 172.14 ms, sd 69.2 ms.
	assert.InDelta(t, float64(379*time.Millisecond), float64(h.timeout()), float64(time.Millisecond))
	h.add(time.Millisecond)
	assert.Equal(t, 150*time.Millisecond, h.timeout(), "8 real samples of 1 ms: the floor")
	h.add(300 * time.Millisecond)
	// 8 of 1 ms and one of 300: mean 34.2 ms, sd 94.0 ms.
	assert.InDelta(t, float64(316*time.Millisecond), float64(h.timeout()), float64(time.Millisecond))
	for range rttHistorySize {
		h.add(2 * time.Millisecond)
	}
	assert.Zero(t, h.fake)
	assert.Equal(t, 150*time.Millisecond, h.timeout())
	for range rttHistorySize {
		h.add(time.Second)
	}
	assert.InDelta(t, float64(time.Second), float64(h.timeout()), float64(time.Microsecond))
}
