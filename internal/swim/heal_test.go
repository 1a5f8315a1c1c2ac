package swim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
)

// A partition that outlasts RemoveDeadAfter (each side forgets the other)
// still heals by itself: removed members' addresses are retried.
func TestLongPartitionsHeal(t *testing.T) {
	for _, d := range []time.Duration{10 * time.Second, 60 * time.Second, 5 * time.Minute} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			const n = 10
			s := newCluster(t, n, 31, nil)
			s.KeepLog = false
			require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, joinBound(n)))
			left, right := s.Nodes()[:5], s.Nodes()[5:]
			s.Partition(left, right)
			s.RunFor(d)
			if d > 40*time.Second {
				for _, o := range left { // each side forgot the other
					for _, x := range right {
						require.Zero(t, statusOf(o, x))
						require.Zero(t, statusOf(x, o))
					}
				}
			}
			s.Heal()
			healedAt := s.Elapsed()
			// Removed members' addresses are tried one every
			// TombstoneRetry; five of them on each side.
			bound := 5*swim.TombstoneRetry + joinBound(n)
			require.True(t, s.RunUntil(func() bool { return converged(s) }, 10*time.Millisecond, bound),
				"not one view %v after a partition of %v", bound, d)
			t.Logf("one view again %v after a partition of %v", s.Elapsed()-healedAt, d)
		})
	}
}
