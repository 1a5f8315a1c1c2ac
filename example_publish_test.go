package smudge_test

import (
	"context"
	"fmt"
	"net"

	"github.com/seed-c7906467/smudge"
)

// batchPrinter prints the publications it receives.
type batchPrinter struct {
	name string
	got  chan struct{}
}

func (p batchPrinter) OnPublish(pub *smudge.Publication) {
	fmt.Printf("%s: %d bytes from the origin: %.20s...\n", p.name, len(pub.Bytes()), pub.Bytes())
	p.got <- struct{}{}
}

// Three nodes on loopback; the first publishes a payload far larger than a
// packet, and each of the others receives it once.
func ExampleCluster_Publish() {
	start := func(name string, seeds ...string) (*smudge.Cluster, chan struct{}) {
		cfg := smudge.DefaultConfig()
		cfg.ListenIP = net.ParseIP("127.0.0.1")
		cfg.ListenPort = 0 // any free port (UDP, and TCP for streams)
		cfg.MulticastEnabled = false
		cfg.ClusterName = "example-publish"
		cfg.InitialHosts = seeds
		cfg.LogThreshold = smudge.LogOff
		c, err := smudge.New(cfg)
		if err != nil {
			panic(err)
		}
		got := make(chan struct{}, 1)
		c.AddPublishListener(batchPrinter{name: name, got: got})
		if err := c.Start(context.Background()); err != nil {
			panic(err)
		}
		return c, got
	}
	a, _ := start("a")
	defer a.Shutdown()
	b, gotB := start("b", a.LocalNode().Address())
	defer b.Shutdown()
	c, gotC := start("c", a.LocalNode().Address())
	defer c.Shutdown()
	waitUntil(func() bool { return len(a.HealthyMembers()) == 3 })

	batch := make([]byte, 100_000)
	copy(batch, `{"resolv_has_8888": {"type": "file_contains", ...}}`)
	if _, err := a.Publish(batch); err != nil {
		panic(err)
	}
	<-gotB
	<-gotC
	// Unordered output:
	// b: 100000 bytes from the origin: {"resolv_has_8888": ...
	// c: 100000 bytes from the origin: {"resolv_has_8888": ...
}
