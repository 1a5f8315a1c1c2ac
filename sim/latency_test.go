package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLatencyDistributions(t *testing.T) {
	sample := func(cfg Config) []time.Duration {
		s := New(cfg)
		out := make([]time.Duration, 20000)
		for i := range out {
			out[i] = s.latency()
		}
		slices.Sort(out)
		return out
	}
	q := func(l []time.Duration, p float64) float64 { return l[int(p*float64(len(l)-1))].Seconds() * 1000 }

	fixed := sample(Config{Seed: 1, Latency: 3 * time.Millisecond})
	assert.Equal(t, 3*time.Millisecond, fixed[0])
	assert.Equal(t, 3*time.Millisecond, fixed[len(fixed)-1])

	uni := sample(Config{Seed: 1, Latency: 2 * time.Millisecond, Jitter: 10 * time.Millisecond})
	assert.GreaterOrEqual(t, uni[0], 2*time.Millisecond)
	assert.Less(t, uni[len(uni)-1], 12*time.Millisecond)
	assert.InDelta(t, 7, q(uni, 0.5), 0.2, "uniform median")

	// Lomax, shape 2, scale 10 ms, above a 1 ms base: median 1 + 4.1 ms,
	// 99th percentile 1 + 90 ms; capped at the base plus 100 scales.
	tail := sample(Config{Seed: 1, Latency: time.Millisecond, Jitter: 10 * time.Millisecond, Dist: LatencyPareto})
	assert.GreaterOrEqual(t, tail[0], time.Millisecond)
	assert.InDelta(t, 5.14, q(tail, 0.5), 0.3, "pareto median")
	assert.InDelta(t, 91, q(tail, 0.99), 10, "pareto 99th percentile")
	assert.LessOrEqual(t, tail[len(tail)-1], 1001*time.Millisecond)

	capped := sample(Config{Seed: 1, Latency: time.Millisecond, Jitter: 10 * time.Millisecond, Dist: LatencyPareto,
		MaxLatency: 50 * time.Millisecond, TailAlpha: 1.2})
	assert.Equal(t, 50*time.Millisecond, capped[len(capped)-1])
}
