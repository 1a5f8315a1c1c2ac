package smudge

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/seed-c7906467/smudge/internal/keyring"
	"github.com/seed-c7906467/smudge/memnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inbox is a MessageListener and PublishListener that keeps what it gets.
type inbox struct {
	mu    sync.Mutex
	msgs  []*Message
	pubs  []*Publication
	count map[PublicationID]int
}

func newInbox() *inbox { return &inbox{count: map[PublicationID]int{}} }

func (b *inbox) OnMessage(m *Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, m)
}

func (b *inbox) OnPublish(p *Publication) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pubs = append(b.pubs, p)
	b.count[p.ID()]++
}

func (b *inbox) messages() []*Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*Message(nil), b.msgs...)
}

func (b *inbox) times(id PublicationID) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count[id]
}

// streamPair starts two nodes, a and b, with configurations changed by
// edit (i is 0 for a, 1 for b); b has an inbox. They do not need to be
// members of one cluster: Send names its destination.
func streamPair(t *testing.T, edit func(i int, c *Config)) (a, b *Cluster, in *inbox) {
	t.Helper()
	var cs []*Cluster
	for i := range 2 {
		cfg := udpConfig(t)
		if edit != nil {
			edit(i, &cfg)
		}
		c, err := New(cfg)
		require.NoError(t, err)
		if i == 1 {
			in = newInbox()
			c.AddMessageListener(in)
			c.AddPublishListener(in)
		}
		require.NoError(t, c.Start(context.Background()))
		t.Cleanup(func() { c.Shutdown() })
		cs = append(cs, c)
	}
	return cs[0], cs[1], in
}

// streamStatsSettle waits until b has finished with every stream it
// accepted, and returns its counters.
func streamStatsSettle(t *testing.T, c *Cluster, accepted uint64) StreamStats {
	t.Helper()
	var s StreamStats
	waitFor(t, 10*time.Second, "the streams to be accounted for", func() bool {
		s = c.Stats().Streams
		done := s.Handled + s.DroppedMalformed + s.DroppedOversize + s.DroppedTimeout + s.DroppedPlaintext +
			s.DroppedSealed + s.DroppedUnauthentic + s.ReadErrors
		return s.Accepted >= accepted && done == s.Accepted && c.streams.active.Load() == 0
	})
	return s
}

func TestStreamsListenOnTheUDPPort(t *testing.T) {
	a, _, _ := streamPair(t, nil)
	conn, err := net.Dial("tcp", a.LocalAddr().String())
	require.NoError(t, err, "TCP on the UDP port")
	conn.Close()
}

func TestSendWithAndWithoutKeys(t *testing.T) {
	key := newKey(t, 32)
	for _, keys := range [][][]byte{nil, {key}} {
		a, b, in := streamPair(t, func(i int, c *Config) { c.Keys = keys })
		payload := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 kB
		require.NoError(t, a.Send(context.Background(), b.LocalNode(), payload))
		b.streams.mu.Lock()
		q := b.streams.msgLs[0].q
		b.streams.mu.Unlock()
		q.wait()
		msgs := in.messages()
		require.Len(t, msgs, 1)
		assert.Equal(t, payload, msgs[0].Bytes())
		assert.Equal(t, a.LocalNode().Address(), msgs[0].From().Address())
		assert.EqualValues(t, 1, a.Stats().Streams.Sent)
		st := streamStatsSettle(t, b, 1)
		assert.EqualValues(t, 1, st.Handled)
		assert.Zero(t, b.streams.pending.Load(), "the inbound budget is given back")
	}
}

func TestSendErrors(t *testing.T) {
	a, b, _ := streamPair(t, func(i int, c *Config) { c.MaxMessageBytes = 4096 })
	err := a.Send(context.Background(), b.LocalNode(), make([]byte, 4097))
	assert.ErrorIs(t, err, ErrMessageTooLarge)
	assert.ErrorIs(t, a.Send(context.Background(), nil, nil), errNilNode)
	// b has a listener, a has none: refused.
	err = b.Send(context.Background(), a.LocalNode(), []byte("hi"))
	assert.ErrorIs(t, err, ErrMessageRefused)
	assert.EqualValues(t, 1, a.Stats().Streams.NoTaker)
	// Nobody there.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := newNodeAddr(ln.Addr().(*net.TCPAddr).AddrPort())
	ln.Close()
	assert.Error(t, a.Send(ctx, gone, []byte("hi")))
	assert.EqualValues(t, 1, a.Stats().Streams.SendErrors)
	assert.EqualValues(t, 1, b.Stats().Streams.SendErrors, "the refused one")

	// Not started, stopped, no streams over memnet.
	c, err := New(udpConfig(t))
	require.NoError(t, err)
	assert.ErrorIs(t, c.Send(ctx, b.LocalNode(), nil), ErrNotStarted)
	_, err = c.Publish(nil)
	assert.ErrorIs(t, err, ErrNotStarted)
	network := memnet.New()
	defer network.Close()
	ep, err := network.Listen(netip.MustParseAddrPort("10.0.0.1:9999"))
	require.NoError(t, err)
	cfg := udpConfig(t)
	cfg.Transport = ep
	m, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, m.Start(ctx))
	assert.ErrorIs(t, m.Send(ctx, b.LocalNode(), nil), ErrNoStreams)
	_, err = m.Publish(nil)
	assert.ErrorIs(t, err, ErrNoStreams)
	m.Shutdown()
	assert.ErrorIs(t, m.Send(ctx, b.LocalNode(), nil), ErrStopped)
}

// rawRequest sends a hand-made stream to c and returns what c answered.
func rawRequest(t *testing.T, c *Cluster, data []byte) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", c.LocalAddr().String())
	require.NoError(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write(data)
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	out, _ := io.ReadAll(conn)
	return out
}

func TestStreamsWithWrongOrMissingKeys(t *testing.T) {
	k1, k2 := newKey(t, 16), newKey(t, 16)
	// Wrong key: dropped as unauthentic; the sender's Send fails.
	a, b, in := streamPair(t, func(i int, c *Config) { c.Keys = [][]byte{[][]byte{k1, k2}[i]} })
	assert.Error(t, a.Send(context.Background(), b.LocalNode(), []byte("let me in")))
	st := streamStatsSettle(t, b, 1)
	assert.EqualValues(t, 1, st.DroppedUnauthentic)
	assert.Empty(t, in.messages())

	// Keys here, none there, and the reverse.
	a, b, in = streamPair(t, func(i int, c *Config) {
		if i == 0 {
			c.Keys = [][]byte{k1}
		}
	})
	assert.Error(t, a.Send(context.Background(), b.LocalNode(), []byte("sealed")))
	assert.EqualValues(t, 1, streamStatsSettle(t, b, 1).DroppedSealed)
	a, b, in = streamPair(t, func(i int, c *Config) {
		if i == 1 {
			c.Keys = [][]byte{k1}
		}
	})
	assert.Error(t, a.Send(context.Background(), b.LocalNode(), []byte("clear")))
	assert.EqualValues(t, 1, streamStatsSettle(t, b, 1).DroppedPlaintext)
	assert.Empty(t, in.messages())

	// Same key, other cluster: unauthentic (the name is authenticated).
	a, b, _ = streamPair(t, func(i int, c *Config) {
		c.Keys = [][]byte{k1}
		if i == 0 {
			c.ClusterName += "-other"
		}
	})
	assert.Error(t, a.Send(context.Background(), b.LocalNode(), []byte("x")))
	assert.EqualValues(t, 1, streamStatsSettle(t, b, 1).DroppedUnauthentic)

	// A sealed packet (not a stream frame) replayed in a frame does not open.
	ring, err := keyring.New(b.cfg.ClusterName, k1)
	require.NoError(t, err)
	sealedPacket := ring.Seal(nil, []byte{requestMessage, 4, 127, 0, 0, 1, 0, 9, 'x'})
	frame := appendFrameHeader(nil, frameRequest, len(sealedPacket))
	assert.Empty(t, rawRequest(t, b, append(frame, sealedPacket...)))
	assert.EqualValues(t, 2, streamStatsSettle(t, b, 2).DroppedUnauthentic)
}

func TestResponsesAreBoundToTheirRequest(t *testing.T) {
	ring, err := keyring.New("c", newKey(t, 32))
	require.NoError(t, err)
	_, n1 := appendRequest(nil, ring, requestMessage, netip.MustParseAddrPort("10.0.0.1:1"), []byte("a"))
	_, n2 := appendRequest(nil, ring, requestMessage, netip.MustParseAddrPort("10.0.0.1:1"), []byte("a"))
	resp, err := appendResponse(nil, ring, n1, statusOK, nil)
	require.NoError(t, err)
	status, err := readResponse(bytes.NewReader(resp), ring, n1)
	require.NoError(t, err)
	assert.Equal(t, byte(statusOK), status)
	_, err = readResponse(bytes.NewReader(resp), ring, n2)
	assert.ErrorIs(t, err, errResponseStatus, "another request's response")
	clear, _ := appendResponse(nil, nil, nil, statusOK, nil)
	_, err = readResponse(bytes.NewReader(clear), ring, n1)
	assert.ErrorIs(t, err, errResponseStatus, "a clear response while encryption is on")
}

func TestOversizeAndGarbageStreamsAreDroppedAndCounted(t *testing.T) {
	_, b, in := streamPair(t, func(i int, c *Config) { c.MaxMessageBytes = 2048 })
	var sent uint64
	send := func(data []byte) {
		rawRequest(t, b, data)
		sent++
	}
	// A frame announcing more than the limit: refused before reading it.
	send(appendFrameHeader(nil, frameRequest, 1<<30))
	send(appendFrameHeader(nil, frameRequest, b.maxRequestFrame()+1))
	// Garbage of every kind.
	send([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	send(appendFrameHeader(nil, frameResponse, 1))                                // wrong kind
	send(append(appendFrameHeader(nil, frameRequest, 3), 9, 9, 9))                // bad request type
	send(append(appendFrameHeader(nil, frameRequest, 2), 1, 4))                   // truncated address
	send(append(appendFrameHeader(nil, frameRequest, 8), 1, 4, 0, 0, 0, 0, 0, 9)) // unspecified sender
	send(appendFrameHeader(nil, frameRequest, 100)[:5])                           // truncated header
	send(append(appendFrameHeader(nil, frameRequest, 100), 1, 2, 3))              // truncated body
	send(nil)                                                                     // nothing at all
	for range 20 {
		junk := make([]byte, 1+int(sent)*37)
		rand.Read(junk)
		send(junk)
	}
	st := streamStatsSettle(t, b, sent)
	assert.EqualValues(t, 2, st.DroppedOversize)
	assert.GreaterOrEqual(t, st.DroppedMalformed, uint64(5))
	assert.GreaterOrEqual(t, st.ReadErrors, uint64(3))
	assert.Zero(t, st.Handled)
	assert.Empty(t, in.messages())

	// Still serving.
	a, err := New(func() Config { c := udpConfig(t); return c }())
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	defer a.Shutdown()
	require.NoError(t, a.Send(context.Background(), b.LocalNode(), []byte("still there?")))
}

// TestSlowSendersHoldASlotForStreamTimeoutAtMost: slowloris. Slow streams
// take every slot; the next ones are refused and counted; at the deadline
// the slow ones are dropped and counted, and real traffic goes through.
func TestSlowSendersHoldASlotForStreamTimeoutAtMost(t *testing.T) {
	const slots = 4
	timeout := 500 * time.Millisecond
	_, b, _ := streamPair(t, func(i int, c *Config) {
		c.Limits.MaxInboundStreams = slots
		c.Limits.StreamTimeout = timeout
	})
	var slow []net.Conn
	for range slots {
		conn, err := net.Dial("tcp", b.LocalAddr().String())
		require.NoError(t, err)
		conn.Write([]byte("ST")) // a start, then nothing
		slow = append(slow, conn)
		defer conn.Close()
	}
	waitFor(t, 5*time.Second, "the slow streams to take every slot", func() bool { return b.streams.active.Load() == slots })
	extra, err := net.Dial("tcp", b.LocalAddr().String())
	require.NoError(t, err)
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = extra.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "refused at once")
	assert.EqualValues(t, 1, b.Stats().Streams.Refused)

	start := time.Now()
	for _, conn := range slow {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := conn.Read(make([]byte, 1))
		assert.Error(t, err, "closed by the server")
	}
	assert.Less(t, time.Since(start), 4*time.Second)
	st := streamStatsSettle(t, b, slots)
	assert.EqualValues(t, slots, st.DroppedTimeout)

	a, err := New(udpConfig(t))
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	defer a.Shutdown()
	require.NoError(t, a.Send(context.Background(), b.LocalNode(), []byte("real traffic")))
}

func TestShutdownClosesStreamsInProgress(t *testing.T) {
	_, b, _ := streamPair(t, nil)
	conn, err := net.Dial("tcp", b.LocalAddr().String())
	require.NoError(t, err)
	defer conn.Close()
	conn.Write(appendFrameHeader(nil, frameRequest, 1000)) // and never the body
	waitFor(t, 5*time.Second, "the stream to be served", func() bool { return b.streams.active.Load() == 1 })
	done := make(chan struct{})
	go func() { b.Shutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown waited for a stalled stream")
	}
	_, err = net.Dial("tcp", b.LocalAddr().String())
	assert.Error(t, err, "no longer listening")
}

func TestStartFailsWhenTheTCPPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := udpConfig(t)
	cfg.ListenPort = ln.Addr().(*net.TCPAddr).Port
	c, err := New(cfg)
	require.NoError(t, err)
	err = c.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bind tcp")
	// The UDP port was released: a second try with the TCP port free works.
	ln.Close()
	require.NoError(t, c.Start(context.Background()))
	c.Shutdown()
}

func TestStreamReadErrorsAreClassified(t *testing.T) {
	var s streamLayer
	s.countReadError(io.ErrUnexpectedEOF)
	s.countReadError(errors.Join(errFrameHeader))
	s.countReadError(errPlaintext)
	st := s.stats()
	assert.EqualValues(t, 1, st.ReadErrors)
	assert.EqualValues(t, 1, st.DroppedMalformed)
	assert.EqualValues(t, 1, st.DroppedPlaintext)
}
