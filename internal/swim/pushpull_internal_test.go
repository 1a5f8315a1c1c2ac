package swim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPushPullScaleGrowsSlowlyAbove32Members(t *testing.T) {
	const iv = 30 * time.Second
	for _, c := range []struct {
		n    int
		mult time.Duration
	}{{1, 1}, {16, 1}, {32, 1}, {33, 2}, {64, 2}, {65, 3}, {128, 3}, {1000, 6}, {1024, 6}, {1025, 7}} {
		assert.Equal(t, c.mult*iv, pushPullScale(iv, c.n), "n=%d", c.n)
	}
}
