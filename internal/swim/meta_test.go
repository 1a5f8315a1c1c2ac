package swim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
	"github.com/seed-c7906467/smudge/sim"
)

// metaEvents returns the metadata of every EventMeta about addr's member, in
// order.
func (r *rig) metaEvents(i int) []string {
	var out []string
	for _, ev := range r.events {
		if ev.Kind == swim.EventMeta && ev.Member.Addr == peer(i) {
			out = append(out, string(ev.Member.Meta))
		}
	}
	return out
}

func TestMetaOfAMemberLearnedFromAHeaderIsAskedForAndLearned(t *testing.T) {
	r := newRig(t)
	p := peer(0)
	r.silent[p] = true
	r.receive(p, 5, wire.Message{Type: wire.TypeAck, Seq: 0}) // only its header: metadata unknown
	m, ok := r.e.Member(p)
	require.True(t, ok)
	require.Nil(t, m.Meta)

	// The next probe of it asks for its own update.
	from := len(r.sent)
	r.run(2 * period)
	var ping *wire.Message
	for _, msg := range r.sentMessages(from) {
		if msg.Type == wire.TypePing {
			ping = &msg
			break
		}
	}
	require.NotNil(t, ping, "no probe in two periods")
	require.Equal(t, uint8(wire.PingFlagWantSelf), ping.Flags&wire.PingFlagWantSelf)

	// Its ack carries it: learned, one EventMeta, and no more asking.
	r.receive(p, 5, wire.Message{Type: wire.TypeAck, Seq: ping.Seq},
		wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 5, Subject: p, Source: p, HasMeta: true, Meta: []byte("id=0")})
	m, _ = r.e.Member(p)
	require.Equal(t, "id=0", string(m.Meta))
	require.Equal(t, []string{"id=0"}, r.metaEvents(0))

	from = len(r.sent)
	r.silent[p] = false
	r.run(4 * period)
	for _, msg := range r.sentMessages(from) {
		if msg.Type == wire.TypePing {
			require.Zero(t, msg.Flags&wire.PingFlagWantSelf, "asked again for metadata it knows")
		}
	}
}

func TestAPingAskingForSelfIsAnsweredWithOwnMeta(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.Meta = []byte("me") })
	p := peer(1)
	from := len(r.sent)
	r.receive(p, 1, wire.Message{Type: wire.TypePing, Seq: 42, Flags: wire.PingFlagWantSelf})
	var self *wire.Message
	for _, msg := range r.sentMessages(from) {
		if msg.Type == wire.TypeUpdate && msg.Subject == rigSelf {
			self = &msg
		}
	}
	require.NotNil(t, self, "the ack does not carry this node's own update")
	require.True(t, self.HasMeta)
	require.Equal(t, "me", string(self.Meta))
	require.Equal(t, r.e.Incarnation(), self.Incarnation)
}

func TestStaleMetaIsKeptButNotGossipedUntilRelearned(t *testing.T) {
	r := newRig(t)
	p := peer(2)
	r.receive(p, 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 1, Subject: p, Source: p, HasMeta: true, Meta: []byte("a")})
	m, _ := r.e.Member(p)
	require.Equal(t, "a", string(m.Meta))

	// A higher incarnation without metadata: "a" may be stale now.
	r.receive(peer(3), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 2, Subject: p, Source: p})
	m, _ = r.e.Member(p)
	require.Equal(t, uint32(2), m.Incarnation)
	require.Equal(t, "a", string(m.Meta), "the last known metadata is still shown")
	from := len(r.sent)
	r.run(3 * period)
	for _, msg := range r.sentMessages(from) {
		if msg.Type == wire.TypeUpdate && msg.Subject == p && msg.Incarnation == 2 {
			require.False(t, msg.HasMeta, "gossiped metadata it does not know at incarnation 2")
		}
	}

	// Its own update at 2 says what it is now.
	r.receive(p, 2, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 2, Subject: p, Source: p, HasMeta: true, Meta: []byte("b")})
	m, _ = r.e.Member(p)
	require.Equal(t, "b", string(m.Meta))
	require.Equal(t, []string{"b"}, r.metaEvents(2), `"a" came with the member's first EventStatus, "b" is a change`)
	var added *swim.Event
	for i := range r.events {
		if ev := &r.events[i]; ev.Kind == swim.EventStatus && ev.Member.Addr == p && ev.Previous == 0 {
			added = ev
		}
	}
	require.NotNil(t, added)
	require.Equal(t, "a", string(added.Member.Meta))

	// An older update with the old metadata changes nothing.
	r.receive(peer(3), 1, wire.Message{Type: wire.TypeUpdate, Status: wire.StatusAlive, Incarnation: 1, Subject: p, Source: p, HasMeta: true, Meta: []byte("a")})
	m, _ = r.e.Member(p)
	require.Equal(t, "b", string(m.Meta))
}

func TestSetMetaRejectsTooLongAndBumpsIncarnation(t *testing.T) {
	r := newRig(t)
	inc := r.e.Incarnation()
	require.ErrorIs(t, r.e.SetMeta(r.now, make([]byte, wire.MaxMetaBytes+1)), swim.ErrMetaTooLarge)
	require.Equal(t, inc, r.e.Incarnation())
	require.NoError(t, r.e.SetMeta(r.now, []byte("x")))
	require.Equal(t, inc+1, r.e.Incarnation())
	self, _ := r.e.Member(rigSelf)
	require.Equal(t, "x", string(self.Meta))

	cfg := sim.DefaultEngineConfig()
	cfg.Self, cfg.Rand, cfg.Meta = rigSelf, nil, make([]byte, wire.MaxMetaBytes+1)
	_, err := swim.New(cfg, sim.DefaultStart)
	require.Error(t, err)
}

// Every node's metadata, set at start and changed later, reaches every
// other node despite loss, and the change replaces the old value everywhere.
func TestMetaSpreadsAndChangesEverywhere(t *testing.T) {
	const n = 30
	s := newCluster(t, n, 11, func(c *sim.Config) { c.Loss = 0.05 })
	for i, nd := range s.Nodes() {
		s.Do(nd, func(now time.Time, e *swim.Engine) {
			require.NoError(t, e.SetMeta(now, fmt.Appendf(nil, "id=%d", i)))
		})
	}
	allKnow := func(want func(i int) string) bool {
		for _, o := range s.Nodes() {
			for i, sub := range s.Nodes() {
				m, ok := o.Engine.Member(sub.Addr)
				if !ok || string(m.Meta) != want(i) {
					return false
				}
			}
		}
		return true
	}
	first := func(i int) string { return fmt.Sprintf("id=%d", i) }
	require.True(t, s.RunUntil(func() bool { return allKnow(first) }, period, 60*time.Second),
		"metadata set at start not known everywhere after 60 s")
	t.Logf("metadata of %d nodes known everywhere after %v", n, s.Elapsed())

	start := s.Elapsed()
	s.Do(s.Node(7), func(now time.Time, e *swim.Engine) { require.NoError(t, e.SetMeta(now, []byte("id=7 v2"))) })
	second := func(i int) string {
		if i == 7 {
			return "id=7 v2"
		}
		return first(i)
	}
	require.True(t, s.RunUntil(func() bool { return allKnow(second) }, period, 30*time.Second),
		"changed metadata not known everywhere after 30 s")
	t.Logf("the change reached every node in %v", s.Elapsed()-start)
}
