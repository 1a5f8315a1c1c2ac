package smudge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-c7906467/smudge/internal/keyring"
	"github.com/seed-c7906467/smudge/internal/wire"
)

// Streams carry what does not fit in a packet: Send's messages and
// Publish's. Each stream is one TCP connection to the member's address
// (the same IP and port as its UDP socket) that carries one request frame
// and one response frame:
//
//	magic    2 bytes  "ST"
//	version  1 byte   1
//	kind     1 byte   1 request, 2 response
//	length   4 bytes  big endian: the body's length
//	body     length bytes
//
// With Keys the body is sealed like a packet (AES-GCM, see
// internal/keyring) with labelled additional data: the cluster name and
// "smudge/stream/1 request", or for a response "smudge/stream/1 response"
// followed by the request's nonce, so that a response answers one request
// only and no frame opens as a packet or the reverse. Without Keys the
// body is in clear, and a sealed body is refused, as packets are.
//
// A request's plain body is
//
//	type     1 byte   1 message (Send), 2 publish (internal/flood),
//	                  3 push-pull (the sender's state, see pushpull.go)
//	family   1 byte   4 or 6, then the sender's advertised address
//	address  4 or 16 bytes
//	port     2 bytes  big endian
//	data     the rest
//
// and a response's is one status byte, followed for a push-pull by the
// responder's state.
const (
	frameHeaderLen  = 8
	frameVersion    = 1
	frameRequest    = 1
	frameResponse   = 2
	requestMessage  = 1
	requestPublish  = 2
	requestPushPull = 3
	statusOK        = 0
	statusNoTaker   = 1 // nobody here takes this kind of request
	statusBusy      = 2 // a queue or budget is full: try later
	maxResponseBody = 64
	// streamSlack is the room a frame needs besides its payload: the
	// request header, a flood packet's header, a seal.
	streamSlack = 128 + keyring.Overhead
)

var (
	labelRequest  = []byte("smudge/stream/1 request")
	labelResponse = []byte("smudge/stream/1 response")
)

// Errors of streams.
var (
	// ErrMessageTooLarge: the payload is longer than MaxMessageBytes.
	ErrMessageTooLarge = errors.New("smudge: message too large")
	// ErrNoStreams: streams are off because the Transport is not UDP (such
	// as memnet), or the TCP port could not be bound for a *UDPTransport
	// given in Config.Transport (the log says why).
	ErrNoStreams = errors.New("smudge: streams are not available with this transport")
	// ErrMessageRefused: the member has no MessageListener, or was too busy
	// to take the message; try later.
	ErrMessageRefused = errors.New("smudge: message refused")
)

// Frame errors (server side; each is counted in StreamStats).
var (
	errFrameHeader    = errors.New("bad frame header")
	errFrameOversize  = errors.New("frame longer than the limit")
	errFrameKind      = errors.New("unexpected frame kind")
	errRequestBody    = errors.New("bad request")
	errResponseStatus = errors.New("bad response")
)

// StreamStats counts the work of streams (Send, Publish): every inbound
// stream is counted once in Accepted or Refused, and every accepted one
// that is not Handled is counted under one Dropped reason or ReadErrors.
type StreamStats struct {
	Accepted           uint64 // inbound streams taken for reading
	Refused            uint64 // inbound streams closed at once: Limits.MaxInboundStreams were open
	Handled            uint64 // requests read, authenticated and answered
	DroppedMalformed   uint64 // bad frame header, kind or request
	DroppedOversize    uint64 // frames announcing more than MaxMessageBytes (plus headers)
	DroppedTimeout     uint64 // requests not read whole within Limits.StreamTimeout (slow senders)
	DroppedPlaintext   uint64 // clear requests while encryption is on
	DroppedSealed      uint64 // sealed requests while encryption is off here
	DroppedUnauthentic uint64 // sealed requests no key in the ring opens
	ReadErrors         uint64 // streams closed or reset before the request was whole
	Busy               uint64 // requests answered busy: Limits.MaxPendingMessageBytes, or a listener's backlog, was full
	NoTaker            uint64 // messages for which no MessageListener was registered
	AcceptErrors       uint64 // failed accepts (the listener keeps going)

	Sent       uint64 // outbound streams whose request the member took
	SendErrors uint64 // outbound streams that failed: connect, write, read, timeout, a bad or refused response

	// Push-pull state syncs (pushpull.go), which are streams too.
	PushPullsIn     uint64 // syncs served: the member's state merged, this node's sent back
	PushPullsOut    uint64 // syncs this node started that completed (both states merged)
	PushPullsFailed uint64 // syncs that failed either way: the sum of the four below (one cut short by Shutdown is not counted)
	// Why they failed:
	PushPullsUnreachable uint64 // started here: connecting, writing, reading or the timeout failed
	PushPullsRefused     uint64 // started here: the member answered busy, or refused this node's state
	PushPullsNoSlot      uint64 // started here: not run, Limits.MaxConcurrentPushPulls were running here (Stats.PushPullsSkipped is the engine's: targets not queued)
	PushPullsBadState    uint64 // a state that did not merge (corrupt, oversized, another cluster's): the member's answer, or a request served here
	PushPullsBusy        uint64 // syncs answered busy here: Limits.MaxConcurrentPushPulls were running
}

// streamLayer is the Cluster's stream state: the TCP listener, the
// counters, message listeners and the publish driver.
type streamLayer struct {
	mu      sync.Mutex
	ln      net.Listener // nil: streams off
	msgLs   []*msgSub
	pubLs   []*pubSub
	conns   map[net.Conn]struct{}
	closed  bool
	pub     *publisher
	ids     *idStore // opened by prepareStreams, handed to the publisher
	wg      sync.WaitGroup
	active  atomic.Int64 // inbound streams being served
	pending atomic.Int64 // inbound payload bytes queued for listeners or the publisher

	accepted, refused, handled                          atomic.Uint64
	malformed, oversize, timeouts                       atomic.Uint64
	plaintext, sealed, unauthentic, readErrors          atomic.Uint64
	busy, noTaker, acceptErrors, sent, sendErrors       atomic.Uint64
	publishQueueDrops, persistErrors, publishInputDrops atomic.Uint64
	ppIn, ppOut, ppFailed, ppBusy                       atomic.Uint64
	ppUnreachable, ppRefused, ppNoSlot, ppBadState      atomic.Uint64
	ppRunning                                           atomic.Int64 // push-pulls being served or run
}

type msgSub struct {
	l MessageListener
	q *listenerQueue
}

// Message is a payload sent by one member to this one with Send.
type Message struct {
	from  *Node
	bytes []byte
}

// From is the member that sent the message (as it names itself).
func (m *Message) From() *Node { return m.from }

// Bytes returns the payload; it is shared by every MessageListener: do not
// modify it.
func (m *Message) Bytes() []byte { return m.bytes }

// MessageListener receives the messages other members Send to this one.
// Like every listener it runs in its own goroutine, in order.
type MessageListener interface {
	OnMessage(message *Message)
}

// AddMessageListener registers l. A member with no MessageListener refuses
// messages (Send returns ErrMessageRefused).
func (c *Cluster) AddMessageListener(l MessageListener) {
	s := &c.streams
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgLs = append(s.msgLs[:len(s.msgLs):len(s.msgLs)], &msgSub{l: l, q: newListenerQueue(c.cfg.Limits.ListenerBacklog)})
}

// maxFrame is the longest frame body accepted or sent for a message.
func (c *Cluster) maxFrame() int { return c.cfg.MaxMessageBytes + streamSlack }

// maxRequestFrame is the longest request frame read: a message's, or a
// push-pull state's (longer when MaxMessageBytes is under 128 KiB); a
// message longer than maxFrame is dropped once read.
func (c *Cluster) maxRequestFrame() int { return max(c.maxFrame(), maxStateFrame) }

// bindUDPAndStreams binds the default UDP transport and, on the same IP
// address and port, the TCP listener of streams. With port 0 it retries
// with another port when the TCP port is taken.
func (c *Cluster) bindUDPAndStreams(addr netip.AddrPort) (*UDPTransport, error) {
	for attempt := 0; ; attempt++ {
		udp, err := NewUDPTransport(addr)
		if err != nil {
			return nil, err
		}
		ln, err := listenStreams(udp.LocalAddr())
		if err == nil {
			c.streams.mu.Lock()
			c.streams.ln = ln
			c.streams.mu.Unlock()
			return udp, nil
		}
		udp.Close()
		if addr.Port() != 0 || attempt >= 16 {
			return nil, err
		}
	}
}

// listenStreams listens for streams on addr over TCP.
func listenStreams(addr netip.AddrPort) (net.Listener, error) {
	network := "tcp6"
	switch {
	case addr.Addr().Is4():
		network = "tcp4"
	case addr.Addr().IsUnspecified():
		network = "tcp" // [::]: dual stack, as for UDP
	}
	ln, err := net.Listen(network, addr.String())
	if err != nil {
		cause := err
		var oe *net.OpError
		if errors.As(err, &oe) {
			cause = oe.Err
			var se *os.SyscallError
			if errors.As(cause, &se) {
				cause = se.Err
			}
		}
		return nil, fmt.Errorf("smudge: bind tcp %s (streams use the UDP port over TCP too): %v: %w", addr, cause, err)
	}
	return ln, nil
}

// prepareStreams is called by start once the transport is bound: it
// listens for streams next to a *UDPTransport given in Config.Transport,
// and opens the state directory. On error start fails.
func (c *Cluster) prepareStreams(tr Transport) error {
	s := &c.streams
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		if udp, ok := tr.(*UDPTransport); ok {
			l, err := listenStreams(udp.LocalAddr())
			if err != nil {
				c.log.logf(LogWarn, "smudge: streams are off (Send and Publish will fail): %v", err)
			} else {
				s.mu.Lock()
				s.ln = l
				s.mu.Unlock()
			}
		} else {
			c.log.logf(LogDebug, "smudge: streams (Send, Publish) are off: they need a UDP transport, not %T", tr)
		}
	}
	if c.cfg.StateDir == "" {
		return nil
	}
	ids, err := openIDStore(c.cfg.StateDir, time.Now(), publishGrace)
	if err != nil {
		return fmt.Errorf("smudge: start: state directory: %w", err)
	}
	s.mu.Lock()
	s.ids = ids
	s.mu.Unlock()
	return nil
}

// abortStreams releases what prepareStreams took, when start fails.
func (c *Cluster) abortStreams() {
	s := &c.streams
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil && s.pub == nil {
		s.ln.Close()
		s.ln = nil
	}
	if s.ids != nil && s.pub == nil {
		s.ids.close()
		s.ids = nil
	}
}

// startStreams starts serving streams and the publish driver. It is called
// by start with c.mu held, once the node is running; it does no I/O.
func (c *Cluster) startStreams(self netip.AddrPort) {
	s := &c.streams
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return
	}
	s.conns = make(map[net.Conn]struct{})
	s.pub = newPublisher(c, self, s.ids)
	s.wg.Add(2)
	go c.acceptStreams(s.ln)
	go s.pub.run()
}

// stopStreams stops serving streams and the publish driver, closes the
// streams being served, and waits for them. Called by Shutdown.
func (c *Cluster) stopStreams() {
	s := &c.streams
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	ln, pub := s.ln, s.pub
	for conn := range s.conns {
		conn.Close()
	}
	var queues []*listenerQueue
	for _, m := range s.msgLs {
		queues = append(queues, m.q)
	}
	for _, p := range s.pubLs {
		queues = append(queues, p.q)
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	if pub != nil {
		pub.stop()
	}
	s.wg.Wait()
	if s.ids != nil {
		s.ids.close()
	}
	for _, q := range queues {
		q.close()
	}
}

// acceptStreams accepts streams until the listener is closed.
func (c *Cluster) acceptStreams(ln net.Listener) {
	s := &c.streams
	defer s.wg.Done()
	backoff := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, as
			// net/http does, rather than spin.
			s.acceptErrors.Add(1)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-c.stop:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if s.active.Add(1) > int64(c.cfg.Limits.MaxInboundStreams) {
			s.active.Add(-1)
			s.refused.Add(1)
			conn.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			s.active.Add(-1)
			conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.accepted.Add(1)
		go c.serveStream(conn)
	}
}

// serveStream reads one request, hands it over and answers it.
func (c *Cluster) serveStream(conn net.Conn) {
	s := &c.streams
	defer func() {
		conn.Close()
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		s.active.Add(-1)
		s.wg.Done()
	}()
	start := time.Now()
	conn.SetDeadline(start.Add(c.cfg.Limits.StreamTimeout))
	ring := c.ring.Load()
	req, nonce, err := readRequest(conn, ring, c.maxRequestFrame())
	if err != nil {
		s.countReadError(err)
		return
	}
	var status byte
	var data []byte
	switch {
	case req.typ == requestPushPull:
		status, data = c.servePushPull(req)
	case len(req.data) > c.maxFrame():
		s.oversize.Add(1)
		return
	default:
		status = c.handleRequest(req, time.Since(start))
	}
	resp, err := appendResponse(nil, ring, nonce, status, data)
	if err == nil {
		conn.Write(resp)
	}
	s.handled.Add(1)
}

// countReadError counts a request that could not be read.
func (s *streamLayer) countReadError(err error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.timeouts.Add(1)
	case errors.Is(err, errFrameOversize):
		s.oversize.Add(1)
	case errors.Is(err, errPlaintext):
		s.plaintext.Add(1)
	case errors.Is(err, errSealed):
		s.sealed.Add(1)
	case errors.Is(err, errUnauthentic):
		s.unauthentic.Add(1)
	case errors.Is(err, errFrameHeader), errors.Is(err, errFrameKind), errors.Is(err, errRequestBody):
		s.malformed.Add(1)
	default:
		s.readErrors.Add(1)
	}
}

var (
	errPlaintext   = errors.New("clear frame while encryption is on")
	errSealed      = errors.New("sealed frame while encryption is off")
	errUnauthentic = errors.New("no key opens the frame")
)

// request is a decoded request.
type request struct {
	typ  byte
	from netip.AddrPort
	data []byte
}

// readFrame reads one frame of the given kind whose body is at most max
// bytes. The body buffer grows as bytes arrive, so a sender that announces
// a large frame and sends little costs little memory.
func readFrame(r io.Reader, kind byte, limit int) ([]byte, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n, err := decodeFrameHeader(h[:], kind, limit)
	if err != nil {
		return nil, err
	}
	const step = 64 << 10
	body := make([]byte, 0, min(n, step))
	for len(body) < n {
		if len(body) == cap(body) {
			body = slices.Grow(body, min(n-len(body), max(len(body), step)))
		}
		k, err := r.Read(body[len(body):min(cap(body), n)])
		body = body[:len(body)+k]
		if err != nil && len(body) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return body, nil
}

// decodeFrameHeader checks a frame header and returns the body's length.
func decodeFrameHeader(h []byte, kind byte, limit int) (int, error) {
	if len(h) < frameHeaderLen || h[0] != 'S' || h[1] != 'T' || h[2] != frameVersion {
		return 0, errFrameHeader
	}
	if h[3] != kind {
		return 0, errFrameKind
	}
	n := binary.BigEndian.Uint32(h[4:8])
	if uint64(n) > uint64(limit) {
		return 0, fmt.Errorf("%w: %d bytes, the limit is %d", errFrameOversize, n, limit)
	}
	return int(n), nil
}

// appendFrameHeader appends a frame header for a body of n bytes.
func appendFrameHeader(dst []byte, kind byte, n int) []byte {
	dst = append(dst, 'S', 'T', frameVersion, kind)
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// readRequest reads and opens a request frame. It returns the request and
// the seal's nonce (nil in clear), to bind the response to.
func readRequest(r io.Reader, ring *keyring.Ring, limit int) (request, []byte, error) {
	body, err := readFrame(r, frameRequest, limit)
	if err != nil {
		return request{}, nil, err
	}
	return openRequest(body, ring)
}

// openRequest authenticates and decodes a request frame's body.
func openRequest(body []byte, ring *keyring.Ring) (request, []byte, error) {
	var nonce []byte
	switch {
	case ring == nil && keyring.IsSealed(body):
		return request{}, nil, errSealed
	case ring != nil && !keyring.IsSealed(body):
		return request{}, nil, errPlaintext
	case ring != nil:
		plain, err := ring.OpenLabeled(nil, body, labelRequest)
		if err != nil {
			return request{}, nil, errUnauthentic
		}
		nonce = bytes.Clone(keyring.Nonce(body))
		body = plain
	}
	req, err := decodeRequest(body)
	return req, nonce, err
}

// decodeRequest decodes a request's plain body; data aliases b.
func decodeRequest(b []byte) (request, error) {
	var req request
	if len(b) < 2 {
		return req, errRequestBody
	}
	req.typ = b[0]
	if req.typ != requestMessage && req.typ != requestPublish && req.typ != requestPushPull {
		return req, errRequestBody
	}
	from, rest, err := wire.ReadAddr(b[1:])
	if err != nil {
		return req, errRequestBody
	}
	req.from, req.data = from, rest
	return req, nil
}

// appendRequest appends a whole request frame: header and body, sealed
// with ring if not nil. It returns the seal's nonce.
func appendRequest(dst []byte, ring *keyring.Ring, typ byte, from netip.AddrPort, data []byte) ([]byte, []byte) {
	plain := make([]byte, 0, 2+16+2+len(data))
	plain = append(plain, typ)
	plain = wire.AppendAddr(plain, from)
	plain = append(plain, data...)
	if ring == nil {
		dst = appendFrameHeader(dst, frameRequest, len(plain))
		return append(dst, plain...), nil
	}
	dst = appendFrameHeader(dst, frameRequest, len(plain)+keyring.Overhead)
	start := len(dst)
	dst = ring.SealLabeled(dst, plain, labelRequest)
	return dst, bytes.Clone(keyring.Nonce(dst[start:]))
}

// responseLabel binds a response to its request's nonce.
func responseLabel(nonce []byte) []byte {
	return append(append([]byte(nil), labelResponse...), nonce...)
}

// appendResponse appends a whole response frame: status, then data.
func appendResponse(dst []byte, ring *keyring.Ring, nonce []byte, status byte, data []byte) ([]byte, error) {
	plain := append([]byte{status}, data...)
	if ring == nil {
		dst = appendFrameHeader(dst, frameResponse, len(plain))
		return append(dst, plain...), nil
	}
	if nonce == nil {
		return dst, errors.New("no nonce to answer")
	}
	dst = appendFrameHeader(dst, frameResponse, len(plain)+keyring.Overhead)
	return ring.SealLabeled(dst, plain, responseLabel(nonce)), nil
}

// readResponse reads a response frame of one status byte and returns it.
func readResponse(r io.Reader, ring *keyring.Ring, nonce []byte) (byte, error) {
	status, data, err := readResponseBody(r, ring, nonce, maxResponseBody)
	if err == nil && len(data) != 0 {
		return 0, errResponseStatus
	}
	return status, err
}

// readResponseBody reads a response frame of at most limit bytes and
// returns its status and the data after it.
func readResponseBody(r io.Reader, ring *keyring.Ring, nonce []byte, limit int) (byte, []byte, error) {
	body, err := readFrame(r, frameResponse, limit)
	if err != nil {
		return 0, nil, err
	}
	if ring != nil {
		if !keyring.IsSealed(body) {
			return 0, nil, fmt.Errorf("%w: in clear", errResponseStatus)
		}
		body, err = ring.OpenLabeled(nil, body, responseLabel(nonce))
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %v", errResponseStatus, err)
		}
	}
	if len(body) < 1 {
		return 0, nil, errResponseStatus
	}
	return body[0], body[1:], nil
}

// handleRequest hands a request to its taker and returns the status to
// answer. took is how long reading it took (a published message's age
// grows by it).
func (c *Cluster) handleRequest(req request, took time.Duration) byte {
	s := &c.streams
	switch req.typ {
	case requestMessage:
		s.mu.Lock()
		ls := s.msgLs
		s.mu.Unlock()
		if len(ls) == 0 {
			s.noTaker.Add(1)
			return statusNoTaker
		}
		n := int64(len(req.data))
		if !s.reserve(n, c.cfg.Limits.MaxPendingMessageBytes) {
			s.busy.Add(1)
			return statusBusy
		}
		from := c.view.Load().byAddr[req.from]
		if from == nil {
			from = newNodeAddr(req.from)
		}
		m := &Message{from: from, bytes: req.data}
		var left atomic.Int64
		left.Store(int64(len(ls)))
		release := func() {
			if left.Add(-1) == 0 {
				s.pending.Add(-n)
			}
		}
		taken := false
		for _, sub := range ls {
			l := sub.l
			if sub.q.push(func() { defer release(); l.OnMessage(m) }) {
				taken = true
			} else {
				release()
				c.listenerDrops.Add(1)
			}
		}
		if !taken {
			s.busy.Add(1)
			return statusBusy
		}
		return statusOK
	case requestPublish:
		s.mu.Lock()
		pub := s.pub
		s.mu.Unlock()
		if pub == nil {
			s.noTaker.Add(1)
			return statusNoTaker
		}
		return pub.input(req.from, req.data, took)
	}
	s.noTaker.Add(1)
	return statusNoTaker
}

// reserve takes n bytes of the inbound budget, if they fit.
func (s *streamLayer) reserve(n, limit int64) bool {
	if s.pending.Add(n) > limit && n > 0 {
		s.pending.Add(-n)
		return false
	}
	return true
}

// roundTrip sends one request to a member and returns its status.
func (c *Cluster) roundTrip(ctx context.Context, to netip.AddrPort, typ byte, data []byte) (byte, error) {
	status, _, err := c.roundTripBody(ctx, to, typ, data, maxResponseBody)
	return status, err
}

// roundTripBody sends one request to a member and returns its status and
// the response's data (at most limit bytes in all).
func (c *Cluster) roundTripBody(ctx context.Context, to netip.AddrPort, typ byte, data []byte, limit int) (byte, []byte, error) {
	timeout := c.cfg.Limits.StreamTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", to.String())
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stopAfter := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stopAfter()
	ring := c.ring.Load()
	c.mu.Lock()
	self := c.self
	c.mu.Unlock()
	frame, nonce := appendRequest(nil, ring, typ, self, data)
	if _, err := conn.Write(frame); err != nil {
		return 0, nil, err
	}
	status, body, err := readResponseBody(conn, ring, nonce, limit)
	if err != nil && ctx.Err() != nil {
		return 0, nil, ctx.Err()
	}
	return status, body, err
}

// Send delivers payload (at most MaxMessageBytes) to one member over a
// stream, sealed like packets when Keys are set, and returns once the
// member took it: its MessageListeners get it, each once, in their own
// goroutine. It fails with ErrMessageRefused when the member has no
// MessageListener or is too busy, and with the stream's error when the
// member cannot be reached within ctx and Limits.StreamTimeout. Send
// does not retry.
func (c *Cluster) Send(ctx context.Context, to *Node, payload []byte) error {
	if to == nil {
		return fmt.Errorf("smudge: Send: %w", errNilNode)
	}
	if len(payload) > c.cfg.MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d (MaxMessageBytes)", ErrMessageTooLarge, len(payload), c.cfg.MaxMessageBytes)
	}
	if err := c.streamsReady(); err != nil {
		return err
	}
	status, err := c.roundTrip(ctx, to.addr, requestMessage, payload)
	if err != nil {
		c.streams.sendErrors.Add(1)
		return fmt.Errorf("smudge: send to %v: %w", to.addr, err)
	}
	if status != statusOK {
		c.streams.sendErrors.Add(1)
		why := "it has no MessageListener"
		if status == statusBusy {
			why = "it is busy"
		}
		return fmt.Errorf("%w by %v: %s", ErrMessageRefused, to.addr, why)
	}
	c.streams.sent.Add(1)
	return nil
}

// streamsReady says why streams cannot be used now, if they cannot.
func (c *Cluster) streamsReady() error {
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	switch state {
	case clusterNew, clusterStarting:
		return ErrNotStarted
	case clusterStopped:
		return ErrStopped
	}
	c.streams.mu.Lock()
	defer c.streams.mu.Unlock()
	if c.streams.pub == nil {
		return ErrNoStreams
	}
	return nil
}

// stats returns the stream counters.
func (s *streamLayer) stats() StreamStats {
	return StreamStats{
		Accepted:             s.accepted.Load(),
		Refused:              s.refused.Load(),
		Handled:              s.handled.Load(),
		DroppedMalformed:     s.malformed.Load(),
		DroppedOversize:      s.oversize.Load(),
		DroppedTimeout:       s.timeouts.Load(),
		DroppedPlaintext:     s.plaintext.Load(),
		DroppedSealed:        s.sealed.Load(),
		DroppedUnauthentic:   s.unauthentic.Load(),
		ReadErrors:           s.readErrors.Load(),
		Busy:                 s.busy.Load(),
		NoTaker:              s.noTaker.Load(),
		AcceptErrors:         s.acceptErrors.Load(),
		Sent:                 s.sent.Load(),
		SendErrors:           s.sendErrors.Load(),
		PushPullsIn:          s.ppIn.Load(),
		PushPullsOut:         s.ppOut.Load(),
		PushPullsFailed:      s.ppFailed.Load(),
		PushPullsUnreachable: s.ppUnreachable.Load(),
		PushPullsRefused:     s.ppRefused.Load(),
		PushPullsNoSlot:      s.ppNoSlot.Load(),
		PushPullsBadState:    s.ppBadState.Load(),
		PushPullsBusy:        s.ppBusy.Load(),
	}
}
