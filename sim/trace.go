package sim

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
)

// Trace is an Observer that writes the event log as text, one line per
// engine event and per action, in the order they happen:
//
//	12.250000000s n17 sees n5 suspect inc=1767225600 src=n17 (was alive)
//	12.251000000s n3 removed n5
//	13.000000000s n8 got broadcast n2/3735928559/1 len=5
//	20.000000000s CRASH n5
//
// Nodes of the simulation are named nI (their index); other addresses are
// written as they are. Call Flush at the end. The same seed and
// configuration give a byte-identical trace.
type Trace struct {
	w   *bufio.Writer
	buf []byte
	err error
}

// NewTrace returns a Trace writing to w.
func NewTrace(w io.Writer) *Trace {
	return &Trace{w: bufio.NewWriterSize(w, 1<<16)}
}

// Flush writes out what is buffered and returns the first write error.
func (t *Trace) Flush() error {
	if err := t.w.Flush(); t.err == nil {
		t.err = err
	}
	return t.err
}

// OnEvent implements Observer.
func (t *Trace) OnEvent(at time.Duration, n *Node, ev *swim.Event) {
	t.line(formatEvent(at, nodeName(n.Addr), ev, nodeName))
}

// OnAction implements Observer.
func (t *Trace) OnAction(at time.Duration, a *Action) {
	var b strings.Builder
	b.WriteString(fmtElapsed(at))
	b.WriteByte(' ')
	b.WriteString(a.Kind.String())
	if a.Node != nil {
		b.WriteString(" " + nodeName(a.Node.Addr))
	}
	switch a.Kind {
	case ActStart:
		if len(a.Nodes) > 0 {
			b.WriteString(" seeds=" + nodeList(a.Nodes))
		}
	case ActBootstrap:
		fmt.Fprintf(&b, " %d nodes", len(a.Nodes))
	case ActPause:
		fmt.Fprintf(&b, " for %v", a.Duration)
	case ActSlow:
		fmt.Fprintf(&b, " by %v", a.Duration)
	case ActPartition:
		if a.Cut {
			b.WriteString(" cut")
		}
		for _, g := range a.Groups {
			b.WriteString(" [" + nodeList(g) + "]")
		}
	case ActBroadcast:
		fmt.Fprintf(&b, " %d/%d len=%d", a.Boot, a.Index, len(a.Payload))
	case ActLoss:
		fmt.Fprintf(&b, " %g", a.Loss)
	case ActLinkLoss:
		fmt.Fprintf(&b, " %s->%s %g", nodeName(a.Nodes[0].Addr), nodeName(a.Nodes[1].Addr), a.Loss)
	}
	t.line(b.String())
}

func (t *Trace) line(s string) {
	if t.err != nil {
		return
	}
	if _, err := t.w.WriteString(s); err != nil {
		t.err = err
		return
	}
	if err := t.w.WriteByte('\n'); err != nil {
		t.err = err
	}
}

// nodeList names nodes compactly: n1,n2,n5-n9.
func nodeList(ns []*Node) string {
	var b strings.Builder
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1].Index == ns[j].Index+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString("n" + strconv.Itoa(ns[i].Index))
		if j > i {
			b.WriteString("-n" + strconv.Itoa(ns[j].Index))
		}
		i = j + 1
	}
	return b.String()
}

func nodeName(a netip.AddrPort) string {
	if i := IndexOf(a); i >= 0 {
		return "n" + strconv.Itoa(i)
	}
	return a.String()
}

func fmtElapsed(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 9, 64) + "s"
}

// formatEvent writes one engine event on one line. name names addresses;
// nil writes them in full.
func formatEvent(at time.Duration, observer string, ev *swim.Event, name func(netip.AddrPort) string) string {
	if name == nil {
		name = netip.AddrPort.String
	}
	t := fmtElapsed(at)
	switch ev.Kind {
	case swim.EventStatus:
		m := &ev.Member
		s := fmt.Sprintf("%s %s sees %s %v inc=%d", t, observer, name(m.Addr), m.Status, m.Incarnation)
		if m.Source.IsValid() && m.Source != m.Addr {
			s += " src=" + name(m.Source)
		}
		if ev.Previous != 0 {
			s += fmt.Sprintf(" (was %v)", ev.Previous)
		}
		return s
	case swim.EventRemoved:
		return fmt.Sprintf("%s %s removed %s", t, observer, name(ev.Member.Addr))
	case swim.EventBroadcast:
		b := &ev.Broadcast
		return fmt.Sprintf("%s %s got broadcast %s/%d/%d len=%d", t, observer, name(b.Origin), b.Boot, b.Index, len(b.Payload))
	}
	return fmt.Sprintf("%s %s event %d", t, observer, ev.Kind)
}

// addStats adds every counter of b to a (the Current* gauges take b's).
func addStats(a *swim.Stats, b swim.Stats) {
	av, bv := reflect.ValueOf(a).Elem(), reflect.ValueOf(b)
	for i := range av.NumField() {
		f := av.Field(i)
		if f.Kind() == reflect.Uint64 {
			f.SetUint(f.Uint() + bv.Field(i).Uint())
		} else if f.CanSet() {
			f.Set(bv.Field(i))
		}
	}
}
