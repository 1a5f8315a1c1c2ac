package flood

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func addr(i int) netip.AddrPort { return simAddr(i) }

// machine returns node 0's machine with members 1..n-1 (and itself).
func machine(t *testing.T, n int, cfg Config) *Machine {
	t.Helper()
	cfg.Self = addr(0)
	if cfg.Start.IsZero() {
		cfg.Start = t0
	}
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	m, err := New(cfg)
	require.NoError(t, err)
	var ms []netip.AddrPort
	for i := range n {
		ms = append(ms, addr(i))
	}
	m.SetMembers(ms)
	return m
}

func id(b byte) ID { return ID{b, b, b} }

func push(i ID, origin int, age, ttl time.Duration, forward bool) Packet {
	return Packet{Kind: KindPush, Forward: forward, Msg: Message{ID: i, Origin: addr(origin), Age: age, TTL: ttl, Payload: []byte("p")}}
}

func targets(sends []Send) map[netip.AddrPort]int {
	out := map[netip.AddrPort]int{}
	for _, s := range sends {
		out[s.To]++
	}
	return out
}

func TestNewNeedsRand(t *testing.T) {
	_, err := New(Config{})
	assert.ErrorIs(t, err, ErrNoRand)
}

func TestPublishBurstsToFanoutDistinctMembers(t *testing.T) {
	m := machine(t, 20, Config{})
	require.NoError(t, m.Publish(t0, id(1), []byte("batch"), time.Minute))
	sends, del, recs := m.Outbox()
	assert.Empty(t, del, "never delivered to the origin")
	assert.Equal(t, []Record{{ID: id(1), Expires: t0.Add(time.Minute)}}, recs)
	require.Len(t, sends, DefaultFanout)
	to := targets(sends)
	assert.Len(t, to, DefaultFanout, "distinct")
	assert.NotContains(t, to, addr(0), "never to itself")
	for _, s := range sends {
		assert.Equal(t, KindPush, s.Packet.Kind)
		assert.True(t, s.Packet.Forward)
		assert.Equal(t, addr(0), s.Packet.Msg.Origin)
		assert.Equal(t, "batch", string(s.Packet.Msg.Payload))
		assert.Zero(t, s.Packet.Msg.Age)
	}
	assert.ErrorIs(t, m.Publish(t0, id(1), nil, time.Minute), ErrDuplicate)
	assert.ErrorIs(t, m.Publish(t0, id(2), nil, 0), ErrTTL)
	assert.ErrorIs(t, m.Publish(t0, id(2), nil, 25*time.Hour), ErrTTL)

	small := machine(t, 3, Config{})
	require.NoError(t, small.Publish(t0, id(1), nil, time.Minute))
	sends, _, _ = small.Outbox()
	assert.Len(t, targets(sends), 2, "fewer members than the fanout: all of them")
}

func TestReceiveDeliversOnceAndForwardsOnce(t *testing.T) {
	m := machine(t, 50, Config{Fanout: 3})
	at := t0.Add(time.Second)
	m.Receive(at, addr(7), push(id(1), 9, 200*time.Millisecond, time.Minute, true))
	sends, del, recs := m.Outbox()
	require.Len(t, del, 1)
	assert.Equal(t, id(1), del[0].ID)
	assert.Equal(t, addr(9), del[0].Origin)
	assert.Equal(t, "p", string(del[0].Payload))
	assert.Equal(t, []Record{{ID: id(1), Expires: at.Add(time.Minute - 200*time.Millisecond)}}, recs)
	require.Len(t, sends, 3)
	for _, s := range sends {
		assert.NotEqual(t, addr(7), s.To, "not back to the sender")
		assert.NotEqual(t, addr(9), s.To, "not to the origin")
		assert.True(t, s.Packet.Forward)
		assert.Equal(t, 200*time.Millisecond, s.Packet.Msg.Age)
	}

	// Again, from anyone, forwarded or not: nothing.
	m.Receive(at.Add(time.Millisecond), addr(8), push(id(1), 9, 0, time.Minute, true))
	m.Receive(at.Add(time.Millisecond), addr(8), push(id(1), 9, 0, time.Minute, false))
	sends, del, recs = m.Outbox()
	assert.Empty(t, sends)
	assert.Empty(t, del)
	assert.Empty(t, recs)
	assert.EqualValues(t, 2, m.Stats().Duplicates)

	// A repair push (not forwarded) is delivered and not forwarded.
	m.Receive(at, addr(7), push(id(2), 9, 0, time.Minute, false))
	sends, del, _ = m.Outbox()
	assert.Len(t, del, 1)
	assert.Empty(t, sends)
}

func TestReceiveRefusesBadAndOldMessages(t *testing.T) {
	m := machine(t, 5, Config{})
	m.Receive(t0, addr(1), push(id(1), 1, time.Minute, time.Minute, true))
	m.Receive(t0, addr(1), push(id(2), 1, 0, 0, true))
	m.Receive(t0, addr(1), push(id(3), 1, 0, 48*time.Hour, true))
	m.Receive(t0, addr(1), push(id(4), 0, 0, time.Minute, true)) // "from" this node
	m.Receive(t0, addr(1), push(id(5), 1, -time.Second, time.Minute, true))
	sends, del, recs := m.Outbox()
	assert.Empty(t, sends)
	assert.Empty(t, del)
	assert.Empty(t, recs)
	st := m.Stats()
	assert.EqualValues(t, 1, st.Expired)
	assert.EqualValues(t, 4, st.Invalid)
	assert.Zero(t, m.Len())
}

// A message published before this node started is passed on, not
// delivered: a late or restarted node never runs an old batch.
func TestStaleMessagesAreForwardedNotDelivered(t *testing.T) {
	start := t0.Add(10 * time.Second)
	m := machine(t, 10, Config{Start: start})
	m.Receive(start.Add(time.Second), addr(1), push(id(1), 2, 12*time.Second, time.Hour, true))
	sends, del, recs := m.Outbox()
	assert.Empty(t, del)
	assert.NotEmpty(t, sends, "still forwarded")
	assert.Len(t, recs, 1)
	assert.EqualValues(t, 1, m.Stats().Stale)
	// Published just after the start: delivered.
	m.Receive(start.Add(time.Second), addr(1), push(id(2), 2, 999*time.Millisecond, time.Hour, true))
	_, del, _ = m.Outbox()
	assert.Len(t, del, 1)
}

func TestRememberedIDsAreNeverDeliveredAgain(t *testing.T) {
	m := machine(t, 5, Config{Start: t0, Remembered: []Record{{ID: id(1), Expires: t0.Add(time.Minute)}, {ID: id(1), Expires: t0}}})
	assert.True(t, m.Known(id(1)))
	assert.Equal(t, 1, m.Len())
	m.Receive(t0.Add(time.Second), addr(1), push(id(1), 2, 0, time.Hour, true))
	sends, del, _ := m.Outbox()
	assert.Empty(t, del)
	assert.Empty(t, sends)
	// Forgotten only after expiry plus Grace.
	m.Tick(t0.Add(time.Minute + DefaultGrace - time.Millisecond))
	assert.True(t, m.Known(id(1)))
	m.Tick(t0.Add(time.Minute + DefaultGrace))
	assert.False(t, m.Known(id(1)))
}

func TestDigestExchange(t *testing.T) {
	m := machine(t, 5, Config{})
	// This node holds 1 and 2.
	m.Receive(t0, addr(1), push(id(1), 1, 0, time.Minute, false))
	m.Receive(t0, addr(1), push(id(2), 1, 0, time.Minute, false))
	m.Outbox()
	// Node 3 has 2 and 3: it is asked for 3 and pushed 1.
	at := t0.Add(time.Second)
	m.Receive(at, addr(3), Packet{Kind: KindDigest, IDs: []ID{id(2), id(3)}})
	sends, _, _ := m.Outbox()
	require.Len(t, sends, 2)
	assert.Equal(t, Send{To: addr(3), Packet: Packet{Kind: KindWant, IDs: []ID{id(3)}}}, sends[0])
	assert.Equal(t, addr(3), sends[1].To)
	assert.Equal(t, KindPush, sends[1].Packet.Kind)
	assert.False(t, sends[1].Packet.Forward, "a repair push is not forwarded")
	assert.Equal(t, id(1), sends[1].Packet.Msg.ID)
	assert.Equal(t, time.Second, sends[1].Packet.Msg.Age, "age grows while held")

	// A digest from the origin of 1 gets no push of 1.
	m.Receive(at, addr(1), Packet{Kind: KindDigest, IDs: []ID{id(2)}})
	sends, _, _ = m.Outbox()
	assert.Empty(t, sends)

	// Want: what is held is pushed; unknown ids are ignored.
	m.Receive(at, addr(4), Packet{Kind: KindWant, IDs: []ID{id(9), id(2)}})
	sends, _, _ = m.Outbox()
	require.Len(t, sends, 1)
	assert.Equal(t, id(2), sends[0].Packet.Msg.ID)

	// After expiry nothing is pushed, nor listed.
	late := t0.Add(time.Minute)
	m.Receive(late, addr(4), Packet{Kind: KindWant, IDs: []ID{id(1), id(2)}})
	m.Receive(late, addr(4), Packet{Kind: KindDigest})
	sends, _, _ = m.Outbox()
	assert.Empty(t, sends)
}

func TestRepairRoundsBackOffAndStop(t *testing.T) {
	m := machine(t, 5, Config{RepairInterval: time.Second, MaxRepairInterval: 10 * time.Second})
	assert.True(t, m.NextDeadline().IsZero(), "idle")
	require.NoError(t, m.Publish(t0, id(1), []byte("x"), 10*time.Minute))
	m.Outbox()
	var gaps []time.Duration
	now := t0
	for range FastRepairRounds + 6 {
		next := m.NextDeadline()
		gaps = append(gaps, next.Sub(now))
		now = next
		m.Tick(now)
		sends, _, _ := m.Outbox()
		require.Len(t, sends, 1)
		assert.Equal(t, Send{To: sends[0].To, Packet: Packet{Kind: KindDigest, IDs: []ID{id(1)}}}, sends[0])
	}
	want := []time.Duration{}
	for range FastRepairRounds + 1 {
		want = append(want, time.Second)
	}
	want = append(want, 2*time.Second, 4*time.Second, 8*time.Second, 10*time.Second, 10*time.Second)
	assert.Equal(t, want, gaps)

	// A new message brings the fast rounds back.
	m.Receive(now, addr(2), push(id(2), 2, 0, time.Minute, false))
	m.Outbox()
	assert.Equal(t, now.Add(time.Second), m.NextDeadline())

	// Once everything expired and is forgotten: idle, no more digests.
	end := t0.Add(10*time.Minute + DefaultGrace)
	for now.Before(end) {
		now = m.NextDeadline()
		require.False(t, now.IsZero())
		m.Tick(now)
		m.Outbox()
	}
	m.Tick(end)
	m.Outbox()
	assert.Zero(t, m.Len())
	assert.True(t, m.NextDeadline().IsZero())
}

func TestLimits(t *testing.T) {
	m := machine(t, 5, Config{MaxIDs: 2, MaxStoredBytes: 10})
	require.NoError(t, m.Publish(t0, id(1), []byte("123456"), time.Minute))
	require.NoError(t, m.Publish(t0, id(2), []byte("123456"), time.Minute))
	assert.Equal(t, 6, m.StoredBytes(), "the oldest payload made room")
	assert.EqualValues(t, 1, m.Stats().PayloadsEvict)
	assert.ErrorIs(t, m.Publish(t0, id(3), nil, time.Minute), ErrFull)
	m.Receive(t0, addr(1), push(id(4), 1, 0, time.Minute, true))
	assert.EqualValues(t, 1, m.Stats().Refused)
	m.Outbox()
	// The evicted message is listed (so nobody pushes it here) but not
	// served.
	m.Receive(t0, addr(3), Packet{Kind: KindWant, IDs: []ID{id(1), id(2)}})
	sends, _, _ := m.Outbox()
	require.Len(t, sends, 1)
	assert.Equal(t, id(2), sends[0].Packet.Msg.ID)
	// Room again once forgotten.
	m.Tick(t0.Add(time.Minute + DefaultGrace))
	assert.NoError(t, m.Publish(t0.Add(time.Minute+DefaultGrace), id(3), nil, time.Minute))
	// A payload larger than the whole budget is not held.
	big := machine(t, 5, Config{MaxStoredBytes: 3})
	require.NoError(t, big.Publish(t0, id(1), []byte("1234"), time.Minute))
	assert.Zero(t, big.StoredBytes())
}

func TestFailedSendsAreReplaced(t *testing.T) {
	m := machine(t, 10, Config{Fanout: 3})
	require.NoError(t, m.Publish(t0, id(1), []byte("x"), time.Minute))
	sends, _, _ := m.Outbox()
	require.Len(t, sends, 3)
	used := targets(sends)
	for _, s := range sends {
		m.Failed(t0, s)
	}
	again, _, _ := m.Outbox()
	require.Len(t, again, 3, "each failed burst push goes elsewhere")
	for _, s := range again {
		assert.NotContains(t, used, s.To)
		used[s.To]++
	}
	for _, s := range again {
		m.Failed(t0, s)
	}
	more, _, _ := m.Outbox()
	assert.Empty(t, more, "at most Fanout replacements")

	// A failed digest goes to another member, twice at most per round.
	m.Tick(m.NextDeadline())
	sends, _, _ = m.Outbox()
	require.Len(t, sends, 1)
	m.Failed(t0, sends[0])
	retry, _, _ := m.Outbox()
	require.Len(t, retry, 1)
	assert.NotEqual(t, sends[0].To, retry[0].To)
	m.Failed(t0, retry[0])
	m.Outbox()
	m.Failed(t0, retry[0])
	none, _, _ := m.Outbox()
	assert.Empty(t, none)
}
