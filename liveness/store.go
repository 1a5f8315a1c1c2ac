package liveness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/seed-c7906467/smudge"
)

// MinTokenBytes is the shortest token accepted.
const MinTokenBytes = 16

// Defaults of Config.
const (
	DefaultMaxMessageAge     = 5 * time.Minute
	DefaultSyncDelay         = time.Second
	DefaultSyncInterval      = 30 * time.Second
	DefaultLeaveTimeout      = 10 * time.Second
	DefaultMaxDecommissioned = 4096
)

// leaveGrace bounds the graceful leave of a decommissioned node.
const leaveGrace = 5 * time.Second

// Errors of the store. The HTTP handler maps them to status codes.
var (
	// ErrDecommissioned: this node's id is decommissioned; it must not
	// (re)join the cluster.
	ErrDecommissioned = errors.New("liveness: this node's id is decommissioned")
	// ErrNoToken: decommissioning needs a token (Config.Token), and this
	// node has none.
	ErrNoToken = errors.New("liveness: decommissioning is disabled on this node: it has no token")
	// ErrUnknownID: no member known to this node has the id.
	ErrUnknownID = errors.New("liveness: unknown id")
	// ErrAlreadyDecommissioned: the id is decommissioned already.
	ErrAlreadyDecommissioned = errors.New("liveness: id already decommissioned")
	// ErrNotRunning: the cluster is not running (not started yet, stopped,
	// or this node is leaving because it was decommissioned).
	ErrNotRunning = errors.New("liveness: the node is not running")
	// ErrTooMany: Config.MaxDecommissioned ids are decommissioned already.
	ErrTooMany = errors.New("liveness: too many decommissioned ids")
)

// decommissionedError is New's error for a node whose id is decommissioned.
type decommissionedError struct {
	id   string
	at   time.Time
	file string
}

func (e *decommissionedError) Error() string {
	return fmt.Sprintf("liveness: this node's id %q is decommissioned (since %s, recorded in %s): a decommissioned node does not rejoin the cluster; give it another id",
		e.id, e.at.Local().Format(time.DateTime), e.file)
}

func (e *decommissionedError) Is(target error) bool { return target == ErrDecommissioned }

// Config configures a Store. ID is required.
type Config struct {
	// ID is this node's id: unique in the cluster, 1 to MaxIDBytes bytes,
	// printable, no spaces (see ValidateID). Other members learn it from
	// this node's metadata (Node.Meta), which the store owns.
	ID string

	// Token is the secret shared by the members allowed to decommission:
	// at least MinTokenBytes bytes. It authenticates the HTTP request
	// (Authorization: Bearer TOKEN) and the decommission messages sent
	// through the cluster (HMAC-SHA256). Empty: this node refuses /bye and
	// ignores (and counts) decommission messages, since it cannot check
	// them.
	Token string

	// StateDir, when set, is where the decommissioned ids are kept
	// (StateFile, written atomically), so that they survive a restart and a
	// node whose id is decommissioned refuses to start (New returns
	// ErrDecommissioned). Created if missing.
	StateDir string

	// OnDecommissioned is called, in its own goroutine, once this node has
	// left the cluster because its id was decommissioned.
	OnDecommissioned func()

	// Logger receives the store's messages; nil means slog.Default().
	Logger *slog.Logger

	// MaxMessageAge is how far a decommission message's issue time may be
	// from this node's clock, either way: older (replayed) or newer ones are
	// ignored and counted (Stats.Stale). It must cover the clock skew
	// between members. Default DefaultMaxMessageAge.
	MaxMessageAge time.Duration

	// SyncDelay is how long a member waits, after it sees that another
	// member's set of decommissioned ids differs from its own, before it
	// re-broadcasts its set (one member does: see the package
	// documentation). It is also the least time between two such
	// re-broadcasts by one member. Default DefaultSyncDelay.
	SyncDelay time.Duration

	// SyncInterval is how often sets are compared even when nothing
	// happened, to repair a re-broadcast that was lost. Default
	// DefaultSyncInterval.
	SyncInterval time.Duration

	// LeaveTimeout bounds how long a decommissioned node waits for the
	// other members to show they know (in their metadata) before it leaves.
	// Default DefaultLeaveTimeout.
	LeaveTimeout time.Duration

	// MaxDecommissioned bounds the set of decommissioned ids kept; ids past
	// it are refused and counted (Stats.Overflow). Default
	// DefaultMaxDecommissioned.
	MaxDecommissioned int
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.MaxMessageAge, DefaultMaxMessageAge)
	def(&c.SyncDelay, DefaultSyncDelay)
	def(&c.SyncInterval, DefaultSyncInterval)
	def(&c.LeaveTimeout, DefaultLeaveTimeout)
	if c.MaxDecommissioned <= 0 {
		c.MaxDecommissioned = DefaultMaxDecommissioned
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Stats counts the decommission messages a store has handled.
type Stats struct {
	Accepted       uint64 // messages accepted (fresh and authentic)
	IgnoredNoToken uint64 // messages ignored because this node has no token to check them
	Malformed      uint64 // messages that do not parse
	Unauthentic    uint64 // messages whose MAC is wrong: another token, or forged
	Stale          uint64 // authentic messages issued more than MaxMessageAge away from now (replays)
	Overflow       uint64 // ids not kept because MaxDecommissioned was reached
	Sent           uint64 // messages broadcast by this node
	Syncs          uint64 // re-broadcasts of the whole set by this node
	PersistErrors  uint64 // failed writes of the state file
}

// Member is one member as the store sees it.
type Member struct {
	// ID is the member's id, "" until its metadata is known (a member may
	// be seen before its metadata arrives) or if it runs no liveness store.
	ID string
	// Address is the member's address, "ip:port" or "[ip]:port".
	Address string
	// Status is the member's status; a member that left is StatusDead with
	// Left true.
	Status smudge.NodeStatus
	// Left reports that a DEAD member left gracefully.
	Left bool
	// Local reports that this is the node running the store.
	Local bool
	// LastHeard is the local time the member was last heard from (now for
	// the local node).
	LastHeard time.Time
	// Decommissioned reports that the member's id is decommissioned.
	Decommissioned bool
}

// StatusText is the member's status as shown by the HTTP API: ALIVE,
// SUSPECTED, DEAD or LEFT.
func (m Member) StatusText() string {
	if m.Left {
		return "LEFT"
	}
	return m.Status.String()
}

// Live reports whether the member is ALIVE or SUSPECTED: still a member,
// as far as this node knows.
func (m Member) Live() bool {
	return m.Status == smudge.StatusAlive || m.Status == smudge.StatusSuspected
}

// cluster is what the store needs of a *smudge.Cluster (tests fake it).
type cluster interface {
	members() []member // the local node first; nil before start
	setMeta(meta []byte) error
	broadcast(payload []byte) error
	leave(ctx context.Context) error
	running() bool
}

// member is one member as the cluster reports it.
type member struct {
	addr      netip.AddrPort
	status    smudge.NodeStatus
	left      bool
	local     bool
	lastHeard time.Time
	meta      []byte
}

// Store keeps, for each member of a cluster, its id, address, status, the
// time it was last heard from and whether it is decommissioned; spreads
// decommissions through the cluster; and makes this node leave when its own
// id is decommissioned. Create it with New; serve it with Handler. All
// methods are safe for concurrent use.
type Store struct {
	cfg          Config
	c            cluster
	clk          clock
	log          *slog.Logger
	sig          *signer
	maxBroadcast int

	mu         sync.Mutex
	set        map[string]time.Time // decommissioned ids: when this node learned each
	digest     string               // setDigest of set
	leaving    bool                 // our id is decommissioned
	leaveGoing bool                 // the leave has begun
	leaveTimer stopper
	syncTimer  stopper
	tickTimer  stopper
	closed     bool
	stats      Stats
	warned     map[error]bool
	gone       chan struct{} // closed once this node left after its decommission

	pubMu     sync.Mutex // serialises publish
	published []byte

	persistMu sync.Mutex // serialises persist
}

// newStore builds a store over any cluster; New wires a *smudge.Cluster.
func newStore(c cluster, clusterName string, maxBroadcast int, cfg Config, clk clock) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := ValidateID(cfg.ID); err != nil {
		return nil, err
	}
	if cfg.Token != "" && len(cfg.Token) < MinTokenBytes {
		return nil, fmt.Errorf("liveness: the token is %d bytes: use at least %d (for example: head -c 24 /dev/urandom | base64)", len(cfg.Token), MinTokenBytes)
	}
	if maxBroadcast < minMessageBytes {
		return nil, fmt.Errorf("liveness: MaxBroadcastBytes is %d: decommission messages need at least %d", maxBroadcast, minMessageBytes)
	}
	set := map[string]time.Time{}
	if cfg.StateDir != "" {
		var err error
		if set, err = loadState(cfg.StateDir); err != nil {
			return nil, err
		}
		if t, ok := set[cfg.ID]; ok {
			return nil, &decommissionedError{id: cfg.ID, at: t, file: filepath.Join(cfg.StateDir, StateFile)}
		}
	}
	s := &Store{
		cfg:          cfg,
		c:            c,
		clk:          clk,
		log:          cfg.Logger,
		sig:          newSigner(cfg.Token, clusterName),
		maxBroadcast: maxBroadcast,
		set:          set,
		digest:       setDigest(sortedIDs(set)),
		warned:       map[error]bool{},
		gone:         make(chan struct{}),
	}
	s.mu.Lock()
	s.tickTimer = clk.AfterFunc(cfg.SyncInterval, s.tick)
	s.mu.Unlock()
	return s, nil
}

// ID is this node's id.
func (s *Store) ID() string { return s.cfg.ID }

// Gone is closed once this node has left the cluster because its id was
// decommissioned (after which Config.OnDecommissioned is called).
func (s *Store) Gone() <-chan struct{} { return s.gone }

// Leaving reports whether this node's id is decommissioned: it is leaving
// the cluster or has left.
func (s *Store) Leaving() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaving
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close stops the store's timers; events heard afterwards are ignored. It
// does not stop the cluster. A leave already begun goes on.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.stopTimersLocked()
}

func (s *Store) stopTimersLocked() {
	for _, t := range []*stopper{&s.tickTimer, &s.syncTimer, &s.leaveTimer} {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
}

// Decommissioned returns the decommissioned ids, sorted (numbers by value).
func (s *Store) Decommissioned() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedIDs(s.set)
}

// Members returns every member the cluster knows (dead ones until they are
// forgotten): this node first, then by id (numbers by value), members whose
// id is not known yet last, by address.
func (s *Store) Members() []Member {
	ms := s.c.members()
	s.mu.Lock()
	set := s.set
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		id := ""
		if m.local {
			id = s.cfg.ID
		} else if mm, ok := parseMeta(m.meta); ok {
			id = mm.id
		}
		_, dec := set[id]
		out = append(out, Member{
			ID: id, Address: m.addr.String(), Status: m.status, Left: m.left, Local: m.local,
			LastHeard: m.lastHeard, Decommissioned: id != "" && dec,
		})
	}
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Member) int {
		switch {
		case a.Local != b.Local:
			if a.Local {
				return -1
			}
			return 1
		case (a.ID == "") != (b.ID == ""):
			if a.ID == "" {
				return 1
			}
			return -1
		case a.ID != b.ID:
			return compareID(a.ID, b.ID)
		}
		return compareAddr(a.Address, b.Address)
	})
	return out
}

func compareAddr(a, b string) int {
	pa, errA := netip.ParseAddrPort(a)
	pb, errB := netip.ParseAddrPort(b)
	if errA == nil && errB == nil {
		return pa.Compare(pb)
	}
	return bytes.Compare([]byte(a), []byte(b))
}

// Decommission decommissions id: it is recorded here (and in the state
// directory), spread through the cluster in a message signed with the
// token, and the node holding it leaves the cluster when it hears it, this
// one included. id must be known: this node's, a member's, or already
// decommissioned (ErrAlreadyDecommissioned).
func (s *Store) Decommission(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if s.sig.key == nil {
		return ErrNoToken
	}
	if !s.c.running() {
		return ErrNotRunning
	}
	ms := s.c.members()
	now := s.clk.Now()
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrNotRunning
	case s.leaving:
		s.mu.Unlock()
		return fmt.Errorf("%w: this node's id %q is decommissioned and it is leaving", ErrNotRunning, s.cfg.ID)
	}
	if _, ok := s.set[id]; ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrAlreadyDecommissioned, id)
	}
	known := id == s.cfg.ID
	for _, m := range ms {
		if mm, ok := parseMeta(m.meta); ok && mm.id == id && !m.local {
			known = true
		}
	}
	if !known {
		s.mu.Unlock()
		return fmt.Errorf("%w %q: no member known to this node has it", ErrUnknownID, id)
	}
	if len(s.set) >= s.cfg.MaxDecommissioned {
		s.mu.Unlock()
		return fmt.Errorf("%w: %d (MaxDecommissioned)", ErrTooMany, s.cfg.MaxDecommissioned)
	}
	s.set[id] = now
	s.digest = setDigest(sortedIDs(s.set))
	msgs := s.sig.encode(now, []string{id}, s.maxBroadcast)
	s.mu.Unlock()

	s.log.Info("liveness: decommissioning", "id", id)
	s.persist()
	s.send(msgs)
	if id == s.cfg.ID {
		s.startLeaving("decommissioned through this node")
	}
	s.publish()
	s.evaluate()
	return nil
}

// send broadcasts messages, stopping at the first error (the periodic
// comparison of sets repairs what is not sent).
func (s *Store) send(msgs [][]byte) {
	for _, m := range msgs {
		if err := s.c.broadcast(m); err != nil {
			s.log.Warn("liveness: a decommission message was not sent; members will catch up at the next comparison of sets", "err", err)
			return
		}
		s.mu.Lock()
		s.stats.Sent++
		s.mu.Unlock()
	}
}

// onBroadcast handles a broadcast from another member.
func (s *Store) onBroadcast(p []byte) {
	if !isMessage(p) {
		return
	}
	now := s.clk.Now()
	if s.sig.key == nil {
		s.count(&s.stats.IgnoredNoToken, ErrNoToken, "liveness: decommission messages are ignored: this node has no token to check them")
		return
	}
	issued, ids, err := s.sig.decode(p)
	switch {
	case errors.Is(err, errMalformed):
		s.count(&s.stats.Malformed, errMalformed, "liveness: malformed decommission message ignored", "err", err)
		return
	case err != nil:
		s.count(&s.stats.Unauthentic, errUnauthentic, "liveness: decommission message with a wrong MAC ignored (another token, or forged)")
		return
	}
	if age := now.Sub(issued); age > s.cfg.MaxMessageAge || -age > s.cfg.MaxMessageAge {
		s.count(&s.stats.Stale, errStale, "liveness: decommission message too old or from the future ignored (a replay, or clocks apart by more than MaxMessageAge)",
			"issued", issued, "age", age.Round(time.Millisecond))
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.stats.Accepted++
	added, self := 0, false
	for _, id := range ids {
		if _, ok := s.set[id]; ok {
			continue
		}
		if len(s.set) >= s.cfg.MaxDecommissioned {
			s.stats.Overflow++
			continue
		}
		s.set[id] = now
		added++
		self = self || id == s.cfg.ID
	}
	if added > 0 {
		s.digest = setDigest(sortedIDs(s.set))
	}
	s.mu.Unlock()
	if added > 0 {
		s.log.Info("liveness: ids decommissioned", "ids", ids, "new", added)
		s.persist()
		if self {
			s.startLeaving("decommissioned by a message from the cluster")
		}
		s.publish()
	}
	s.evaluate()
}

var errStale = errors.New("stale")

// count adds one to a counter and logs the first occurrence of each kind
// at Warn, the others at Debug.
func (s *Store) count(counter *uint64, kind error, msg string, args ...any) {
	s.mu.Lock()
	*counter++
	first := !s.warned[kind]
	s.warned[kind] = true
	s.mu.Unlock()
	if first {
		s.log.Warn(msg, args...)
	} else {
		s.log.Debug(msg, args...)
	}
}

// onLocalStatus is called when the local node's status changes: once
// ALIVE, the cluster is running and the metadata can be published.
func (s *Store) onLocalStatus() {
	s.publish()
	s.evaluate()
}

// startLeaving begins this node's leave: at once if no member holding the
// token needs to hear the news from it, else when they all show they know
// it, or after LeaveTimeout.
func (s *Store) startLeaving(why string) {
	s.mu.Lock()
	if s.leaving || s.closed {
		s.mu.Unlock()
		return
	}
	s.leaving = true
	s.leaveTimer = s.clk.AfterFunc(s.cfg.LeaveTimeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.goLeaveLocked("not every member showed it knows within LeaveTimeout")
	})
	s.mu.Unlock()
	s.log.Warn("liveness: this node's id is decommissioned: it leaves the cluster", "id", s.cfg.ID, "why", why)
}

// goLeaveLocked starts the leave, once.
func (s *Store) goLeaveLocked(why string) {
	if s.leaveGoing {
		return
	}
	s.leaveGoing = true
	if s.leaveTimer != nil {
		s.leaveTimer.Stop()
		s.leaveTimer = nil
	}
	go s.leave(why)
}

func (s *Store) leave(why string) {
	s.log.Info("liveness: leaving the cluster", "id", s.cfg.ID, "when", why)
	ctx, cancel := context.WithTimeout(context.Background(), leaveGrace)
	err := s.c.leave(ctx)
	cancel()
	if err != nil && !errors.Is(err, smudge.ErrStopped) && !errors.Is(err, smudge.ErrNotStarted) {
		s.log.Warn("liveness: leave", "err", err)
	}
	s.mu.Lock()
	s.stopTimersLocked()
	close(s.gone)
	s.mu.Unlock()
	if f := s.cfg.OnDecommissioned; f != nil {
		go f()
	}
}

// tick compares sets periodically and retries a failed publication.
func (s *Store) tick() {
	s.publish()
	s.evaluate()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && !s.leaveGoing {
		s.tickTimer = s.clk.AfterFunc(s.cfg.SyncInterval, s.tick)
	}
}

// evaluate is called whenever the membership, a member's metadata or our
// set changed: it starts the leave when it is time, and schedules a
// re-broadcast of our set when we are the member to send it.
func (s *Store) evaluate() {
	ms := s.c.members()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.leaving && !s.leaveGoing && s.othersKnowLocked(ms) {
		s.goLeaveLocked("every member holding the token shows it knows")
	}
	if s.syncTimer == nil && s.needSyncLocked(ms) {
		s.syncTimer = s.clk.AfterFunc(s.cfg.SyncDelay, s.syncNow)
	}
}

// peers returns the other ALIVE members that hold our token, with their
// metadata, and the local member (ok false before start).
func (s *Store) peers(ms []member) (self member, peers []memberMeta, addrs []netip.AddrPort, ok bool) {
	for _, m := range ms {
		if m.local {
			self, ok = m, true
			continue
		}
		if m.status != smudge.StatusAlive {
			continue
		}
		if mm, good := parseMeta(m.meta); good && mm.fp != "" && mm.fp == s.sig.fp {
			peers = append(peers, mm)
			addrs = append(addrs, m.addr)
		}
	}
	return self, peers, addrs, ok
}

// othersKnowLocked reports whether every other ALIVE member holding our
// token publishes our set.
func (s *Store) othersKnowLocked(ms []member) bool {
	_, peers, _, _ := s.peers(ms)
	for _, p := range peers {
		if p.digest != s.digest {
			return false
		}
	}
	return true
}

// needSyncLocked reports whether we should re-broadcast our set: some ALIVE
// member holding our token publishes another set, and we have the lowest
// address among the ALIVE members holding our token that publish ours. So,
// when a member joins, one member per distinct set sends (not one per
// member), and members with nothing to send send nothing.
func (s *Store) needSyncLocked(ms []member) bool {
	if s.sig.key == nil || len(s.set) == 0 {
		return false
	}
	self, peers, addrs, ok := s.peers(ms)
	if !ok {
		return false
	}
	differ := false
	for i, p := range peers {
		if p.digest != s.digest {
			differ = true
		} else if addrs[i].Compare(self.addr) < 0 {
			return false // a member with our set and a lower address sends
		}
	}
	return differ
}

// syncNow re-broadcasts our whole set, freshly signed, if it is still our
// turn.
func (s *Store) syncNow() {
	ms := s.c.members()
	now := s.clk.Now()
	s.mu.Lock()
	s.syncTimer = nil
	if s.closed || !s.needSyncLocked(ms) {
		s.mu.Unlock()
		return
	}
	msgs := s.sig.encode(now, sortedIDs(s.set), s.maxBroadcast)
	s.stats.Syncs++
	s.mu.Unlock()
	s.log.Debug("liveness: re-broadcasting the decommissioned ids", "messages", len(msgs))
	s.send(msgs)
}

// metaLocked is the local node's metadata.
func (s *Store) metaLocked() []byte {
	return encodeMeta(memberMeta{id: s.cfg.ID, fp: s.sig.fp, digest: s.digest})
}

// publish sets the local node's metadata if it changed. Before the cluster
// runs it cannot: the local node's first status event publishes it.
func (s *Store) publish() {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	want, closed := s.metaLocked(), s.closed
	s.mu.Unlock()
	if closed || bytes.Equal(want, s.published) {
		return
	}
	if ms := s.c.members(); len(ms) > 0 && ms[0].local && bytes.Equal(ms[0].meta, want) {
		s.published = want // set in smudge.Config.Meta already
		return
	}
	if err := s.c.setMeta(want); err != nil {
		if !errors.Is(err, smudge.ErrNotStarted) && !errors.Is(err, smudge.ErrStopped) && !errors.Is(err, smudge.ErrLeaving) {
			s.log.Warn("liveness: publishing this node's metadata", "err", err)
		}
		return
	}
	s.published = want
}

// persist writes the set to the state directory, if there is one.
func (s *Store) persist() {
	if s.cfg.StateDir == "" {
		return
	}
	s.persistMu.Lock()
	defer s.persistMu.Unlock()
	s.mu.Lock()
	set := maps.Clone(s.set)
	s.mu.Unlock()
	if err := saveState(s.cfg.StateDir, s.cfg.ID, set); err != nil {
		s.mu.Lock()
		s.stats.PersistErrors++
		s.mu.Unlock()
		s.log.Error("liveness: the decommissioned ids are not saved", "err", err)
	}
}

// discard is a logger that drops everything, for tests and examples.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))
