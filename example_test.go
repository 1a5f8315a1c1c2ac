package smudge_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/seed-c7906467/smudge"
	"github.com/seed-c7906467/smudge/memnet"
)

// printer prints every status change and broadcast it hears.
type printer struct{ name string }

func (p printer) OnChange(n *smudge.Node, st smudge.NodeStatus) {
	fmt.Printf("%s: %s is %s\n", p.name, n.Address(), st)
}

func (p printer) OnBroadcast(b *smudge.Broadcast) {
	fmt.Printf("%s: broadcast %q from %s\n", p.name, b.Bytes(), b.Origin().Address())
}

// waitUntil polls cond for up to ten seconds.
func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// Two nodes in one process, on an in-memory network: the second joins the
// first, and each sees the other ALIVE.
func ExampleNew() {
	network := memnet.New()
	defer network.Close()
	start := func(ip string, seeds ...string) *smudge.Cluster {
		ep, _ := network.Listen(netip.MustParseAddrPort(ip + ":9999"))
		cfg := smudge.DefaultConfig()
		cfg.Transport = ep // the default is UDP on ListenIP:ListenPort
		cfg.InitialHosts = seeds
		c, err := smudge.New(cfg)
		if err != nil {
			panic(err)
		}
		if err := c.Start(context.Background()); err != nil {
			panic(err)
		}
		return c
	}
	a := start("10.0.0.1")
	defer a.Shutdown()
	b := start("10.0.0.2", "10.0.0.1:9999")
	defer b.Shutdown()

	waitUntil(func() bool { return len(a.HealthyMembers()) == 2 && len(b.HealthyMembers()) == 2 })
	for _, n := range a.Members() {
		fmt.Println(n.Address(), n.Status(), n.IsLocal())
	}
	// Output:
	// 10.0.0.1:9999 ALIVE true
	// 10.0.0.2:9999 ALIVE false
}

// inbox is a BroadcastListener that hands broadcasts to a channel.
type inbox chan *smudge.Broadcast

func (in inbox) OnBroadcast(b *smudge.Broadcast) { in <- b }

// A broadcast reaches every other member once, never its origin.
func ExampleCluster_Broadcast() {
	network := memnet.New()
	defer network.Close()
	var nodes []*smudge.Cluster
	received := make(inbox, 10)
	for i, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		ep, _ := network.Listen(netip.MustParseAddrPort(ip + ":9999"))
		cfg := smudge.DefaultConfig()
		cfg.Transport = ep
		if i > 0 {
			cfg.InitialHosts = []string{"10.0.0.1:9999"}
		}
		c, _ := smudge.New(cfg)
		c.AddBroadcastListener(received)
		c.Start(context.Background())
		defer c.Shutdown()
		nodes = append(nodes, c)
	}
	waitUntil(func() bool { return len(nodes[0].HealthyMembers()) == 2 })

	if err := nodes[0].Broadcast([]byte("hello")); err != nil {
		fmt.Println(err)
	}
	select {
	case b := <-received:
		fmt.Printf("%q from %s\n", b.Bytes(), b.Origin().Address())
	case <-time.After(10 * time.Second):
		fmt.Println("timed out")
	}
	// Output:
	// "hello" from 10.0.0.1:9999
}

// Configuration comes from SMUDGE_* variables; a bad value is an error that
// names the variable and the value.
func ExampleConfigFromEnv() {
	os.Setenv("SMUDGE_HEARTBEAT_MILLIS", "500")
	cfg, err := smudge.ConfigFromEnv()
	fmt.Println(cfg.HeartbeatInterval, err)

	os.Setenv("SMUDGE_HEARTBEAT_MILLIS", "fast")
	_, err = smudge.ConfigFromEnv()
	fmt.Println(err)
	os.Unsetenv("SMUDGE_HEARTBEAT_MILLIS")
	// Output:
	// 500ms <nil>
	// SMUDGE_HEARTBEAT_MILLIS="fast": not an integer number of milliseconds
}

// Smudge's own style, unchanged but for the import path: configure with
// setters (or SMUDGE_* variables), register listeners, add a known member,
// and Begin, which blocks.
func ExampleBegin() {
	smudge.SetListenPort(9999)
	smudge.SetHeartbeatMillis(250)
	smudge.SetListenIP(net.ParseIP("127.0.0.1"))
	smudge.AddStatusListener(printer{name: "me"})
	smudge.AddBroadcastListener(printer{name: "me"})
	if node, err := smudge.CreateNodeByAddress("127.0.0.1:10000"); err == nil {
		smudge.AddNode(node)
	}
	smudge.Begin()
}

// Each node describes itself in a few bytes of metadata, and every member
// sees the others'.
func ExampleConfig_meta() {
	network := memnet.New()
	defer network.Close()
	var nodes []*smudge.Cluster
	for i, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		ep, _ := network.Listen(netip.MustParseAddrPort(ip + ":9999"))
		cfg := smudge.DefaultConfig()
		cfg.Transport = ep
		cfg.Meta = fmt.Appendf(nil, "id=%d role=cache", i+1)
		if i > 0 {
			cfg.InitialHosts = []string{"10.0.0.1:9999"}
		}
		c, _ := smudge.New(cfg)
		c.Start(context.Background())
		defer c.Shutdown()
		nodes = append(nodes, c)
	}
	waitUntil(func() bool {
		n := nodes[0].Member("10.0.0.2:9999")
		return n != nil && n.Meta() != nil
	})
	for _, n := range nodes[0].Members() {
		fmt.Printf("%s %s\n", n.Address(), n.Meta())
	}
	// Output:
	// 10.0.0.1:9999 id=1 role=cache
	// 10.0.0.2:9999 id=2 role=cache
}
