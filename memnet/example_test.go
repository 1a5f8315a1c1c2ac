package memnet_test

import (
	"fmt"
	"net/netip"

	"github.com/seed-c7906467/smudge/memnet"
)

func Example() {
	network := memnet.New(memnet.WithSeed(1))
	a, _ := network.Listen(netip.MustParseAddrPort("10.0.0.1:9999"))
	b, _ := network.Listen(netip.MustParseAddrPort("10.0.0.2:9999"))
	defer network.Close()

	_ = a.WriteTo([]byte("ping"), b.LocalAddr())
	buf := make([]byte, 1500)
	n, from, _ := b.ReadFrom(buf)
	fmt.Printf("%s from %s\n", buf[:n], from)

	// Cut the two apart: datagrams are still accepted, and counted as lost.
	network.Partition([]netip.AddrPort{a.LocalAddr()}, []netip.AddrPort{b.LocalAddr()})
	_ = a.WriteTo([]byte("ping"), b.LocalAddr())
	network.Heal()

	s := network.Stats()
	fmt.Printf("sent %d, delivered %d, partitioned %d\n", s.Sent, s.Delivered, s.Partitioned)
	// Output:
	// ping from 10.0.0.1:9999
	// sent 2, delivered 1, partitioned 1
}
