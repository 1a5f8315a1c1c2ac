package smudge

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPublishLoopback20 measures Publish on 20 real nodes on
// loopback (UDP and TCP, defaults but multicast): the time from Publish
// to the last of the 19 others receiving it, and how many of them the
// burst missed (they asked for it in a repair round):
//
//	go test -run '^$' -bench PublishLoopback20 -benchtime 20x .
func BenchmarkPublishLoopback20(b *testing.B) {
	const n = 20
	var cs []*Cluster
	var boxes []*inbox
	for i := range n {
		cfg := DefaultConfig()
		cfg.ListenPort = 0
		cfg.MulticastEnabled = false
		cfg.ClusterName = "bench-publish"
		cfg.LogThreshold = LogWarn
		cfg.MinPingTime, cfg.PingHistoryFrontload = time.Second, time.Second
		if i > 0 {
			cfg.InitialHosts = []string{cs[0].LocalNode().Address()}
		}
		c, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		box := newInbox()
		c.AddPublishListener(box)
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer c.Shutdown()
		cs = append(cs, c)
		boxes = append(boxes, box)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !allHealthy(cs, n)() {
		if time.Now().After(deadline) {
			b.Fatal("the cluster did not converge")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var total, worst time.Duration
	missed := 0
	payload := make([]byte, 64<<10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		origin := cs[i%n]
		wants := make([]uint64, n)
		for k, c := range cs {
			wants[k] = c.Stats().Publish.WantsSent
		}
		start := time.Now()
		id, err := origin.Publish(payload)
		if err != nil {
			b.Fatal(err)
		}
		for k := 0; k < n; k++ {
			if cs[k] == origin {
				continue
			}
			for boxes[k].times(id) == 0 {
				if time.Since(start) > 30*time.Second {
					b.Fatalf("publication %d did not reach node %d", i, k)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		took := time.Since(start)
		total += took
		worst = max(worst, took)
		for k, c := range cs {
			if c.Stats().Publish.WantsSent > wants[k] {
				missed++
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-all")
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
	b.ReportMetric(float64(missed)/float64(b.N), "burst-missed")
}
