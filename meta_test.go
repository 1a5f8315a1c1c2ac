package smudge

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/memnet"
)

// metaRecorder records OnMetaChange calls as "address=meta".
type metaRecorder struct {
	mu  sync.Mutex
	got []string
}

func (m *metaRecorder) OnMetaChange(n *Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, n.Address()+"="+string(n.Meta()))
}

func (m *metaRecorder) has(s string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range m.got {
		if g == s {
			return true
		}
	}
	return false
}

func TestMetaReachesEveryMemberAndChangesAreHeard(t *testing.T) {
	network := memnet.New(memnet.WithLatency(time.Millisecond, time.Millisecond), memnet.WithSeed(5))
	t.Cleanup(func() { network.Close() })
	cs, _ := memCluster(t, network, 4)
	waitFor(t, 20*time.Second, "convergence", allHealthy(cs, 4))
	mr := &metaRecorder{}
	cs[0].AddMetaListener(mr)
	for i, c := range cs {
		require.NoError(t, c.SetMeta(fmt.Appendf(nil, "id=%d", i)))
	}
	everyoneSees := func(i int, want string) func() bool {
		return func() bool {
			addr := cs[i].LocalNode().Address()
			for _, c := range cs {
				n := c.Member(addr)
				if n == nil || string(n.Meta()) != want {
					return false
				}
			}
			return true
		}
	}
	for i := range cs {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d's metadata everywhere", i), everyoneSees(i, fmt.Sprintf("id=%d", i)))
	}
	waitFor(t, 5*time.Second, "the listener to hear node 2's metadata", func() bool {
		return mr.has(cs[2].LocalNode().Address() + "=id=2")
	})
	require.True(t, mr.has(cs[0].LocalNode().Address()+"=id=0"), "the local node's own change is heard")

	require.ErrorIs(t, cs[1].SetMeta(make([]byte, MaxMetaBytes+1)), ErrMetaTooLarge)
	require.NoError(t, cs[1].SetMeta([]byte("id=1 draining")))
	waitFor(t, 10*time.Second, "node 1's new metadata everywhere", everyoneSees(1, "id=1 draining"))
	waitFor(t, 5*time.Second, "the listener to hear the change", func() bool {
		return mr.has(cs[1].LocalNode().Address() + "=id=1 draining")
	})
}

func TestConfigMetaIsValidatedAndShownAtOnce(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Meta = make([]byte, MaxMetaBytes+1)
	err := cfg.Validate()
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "Meta is 256 bytes: at most 255"), err.Error())

	network := memnet.New()
	t.Cleanup(func() { network.Close() })
	ep, err := network.Listen(netip.MustParseAddrPort("10.0.0.1:9999"))
	require.NoError(t, err)
	cfg = DefaultConfig()
	cfg.Transport, cfg.MulticastEnabled, cfg.Meta = ep, false, []byte("role=cache")
	c, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { c.Shutdown() })
	require.Equal(t, "role=cache", string(c.LocalNode().Meta()))
}

func TestSetMetaBeforeStartIsTheStartingMeta(t *testing.T) {
	network := memnet.New()
	t.Cleanup(func() { network.Close() })
	ep, err := network.Listen(netip.MustParseAddrPort("10.0.0.1:9999"))
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Transport, cfg.MulticastEnabled, cfg.Meta = ep, false, []byte("old")
	c, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.SetMeta([]byte("id=9")))
	require.ErrorIs(t, c.SetMeta(make([]byte, MaxMetaBytes+1)), ErrMetaTooLarge)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { c.Shutdown() })
	require.Equal(t, "id=9", string(c.LocalNode().Meta()))
	require.Equal(t, "old", string(c.Config().Meta), "Config shows what New was given")
}
