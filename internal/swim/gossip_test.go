package swim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// gossipOnly counts the packets sent since from that hold no ping, ack or
// ping-req: gossip rounds' (and pushes', when pushed is set).
func gossipOnly(t *testing.T, r *rig, from int, pushed bool) int {
	n := 0
	for _, p := range r.sent[from:] {
		var dec wire.Packet
		require.NoError(t, dec.Decode(p.Data))
		if (dec.Header.Flags&wire.HeaderFlagPush != 0) != pushed {
			continue
		}
		plain := true
		for _, m := range dec.Messages {
			if m.Type == wire.TypePing || m.Type == wire.TypeAck || m.Type == wire.TypePingReq {
				plain = false
			}
		}
		if plain {
			n++
		}
	}
	return n
}

func TestGossipRoundsFollowNewsAndStop(t *testing.T) {
	r := newRig(t)
	r.addPeers(40) // EmitLimit(41) = 9 sends: 3 pushed, 3 and 3 in two rounds
	require.Equal(t, 9, swim.EmitLimit(41))
	r.run(10 * time.Second)
	from := len(r.sent)
	r.run(10 * time.Second)
	assert.Zero(t, gossipOnly(t, r, from, false), "a quiet cluster: probes only")

	from = len(r.sent)
	_, err := r.e.Broadcast(r.now, []byte("news"))
	require.NoError(t, err)
	r.collect()
	assert.Equal(t, 3, gossipOnly(t, r, from, true), "pushed to PushFanout members")
	r.e.Tick(r.now) // the host ticks at NextDeadline: now
	r.collect()
	assert.Equal(t, 3, gossipOnly(t, r, from, false), "a first round at once, to GossipNodes members")
	r.run(200 * time.Millisecond) // rounds are 50 ms apart (a quarter of 250 ms, at most 50 ms)
	assert.Equal(t, 6, gossipOnly(t, r, from, false), "and a second one, then no more")
	r.run(5 * time.Second)
	assert.Equal(t, 6, gossipOnly(t, r, from, false))
	assert.Equal(t, uint64(6), r.e.Stats().GossipPackets)
}

func TestGossipRoundsOff(t *testing.T) {
	r := newRigWith(t, func(c *swim.Config) { c.GossipNodes = -1 })
	r.addPeers(10)
	from := len(r.sent)
	_, err := r.e.Broadcast(r.now, []byte("news"))
	require.NoError(t, err)
	r.run(time.Second)
	assert.Zero(t, gossipOnly(t, r, from, false))
}
