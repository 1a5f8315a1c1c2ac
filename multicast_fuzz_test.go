package smudge

import (
	"net/netip"
	"testing"
	"time"

	"github.com/seed-c7906467/smudge/internal/wire"
)

// FuzzMulticastReceive feeds arbitrary datagrams through the path of a
// datagram read from the multicast group (multicast.receive: the checks
// before the protocol loop), then, when it is accepted, into a listener's
// engine as the loop does (with no source address). The seed corpus in
// testdata/fuzz/FuzzMulticastReceive holds real announcements (IPv4 and
// IPv6 senders), those of another cluster and of the listener itself, other
// messages and damaged ones.
//
// Checked: no panic; each datagram is counted exactly once (delivered or
// dropped for one reason); what is delivered, the engine accepts (it drops
// none of it as malformed, of another cluster or from itself), and it
// answers only the identity in the header.
func FuzzMulticastReceive(f *testing.F) {
	f.Add(announcementOf(f, netip.MustParseAddrPort("10.0.0.2:9999"), "fuzz"))
	f.Fuzz(func(t *testing.T, data []byte) {
		now := time.Unix(1_700_000_000, 0)
		m, got := testListener(t, "fuzz")
		m.receive(data, testGroup, 0)
		st := m.stats()
		counted := st.AnnouncementsReceived + st.DroppedMalformed + st.DroppedWrongCluster + st.OwnEchoes +
			st.DroppedOtherGroup + st.DroppedByEncryption + st.DroppedQueueFull
		if counted != 1 {
			t.Fatalf("one datagram, %d counts: %+v", counted, st)
		}
		if len(*got) != int(st.AnnouncementsReceived) {
			t.Fatalf("%d delivered, %d counted", len(*got), st.AnnouncementsReceived)
		}
		if len(*got) == 0 {
			return
		}
		e := testEngine(t, listenerSelf, "fuzz", now)
		e.Receive(now, netip.AddrPort{}, (*got)[0])
		es := e.Stats()
		if es.DroppedMalformed+es.DroppedVersion+es.DroppedWrongCluster+es.DroppedFromSelf+es.DroppedMisdirected != 0 {
			t.Fatalf("the engine drops what the multicast path delivered: %+v", es)
		}
		h, _, err := wire.DecodeHeader(data)
		if err != nil {
			t.Fatalf("delivered a datagram with a bad header: %v", err)
		}
		pkts, _ := e.Outbox()
		if len(pkts) == 0 {
			t.Fatal("an accepted announcement was not answered")
		}
		for _, p := range pkts {
			if p.To != h.Sender {
				t.Fatalf("answered %v, not the announcer %v", p.To, h.Sender)
			}
		}
	})
}
