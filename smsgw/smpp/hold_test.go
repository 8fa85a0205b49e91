package smpp

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
)

// phone is a Handler that records the messages it takes, as "source:text",
// and refuses with ESME_RX_T_APPN those refuse says to.
type phone struct {
	mu     sync.Mutex
	taken  []string
	calls  []string
	refuse func(key string, call int) bool // call counts the calls for key, from 1
}

func (ph *phone) HandleDeliver(_ context.Context, d *Deliver) Status {
	key := d.Source.Addr + ":" + string(d.ShortMessage)
	ph.mu.Lock()
	ph.calls = append(ph.calls, key)
	n := 0
	for _, c := range ph.calls {
		if c == key {
			n++
		}
	}
	ph.mu.Unlock()
	if ph.refuse != nil && ph.refuse(key, n) {
		return StatusRxTAppn
	}
	ph.mu.Lock()
	ph.taken = append(ph.taken, key)
	ph.mu.Unlock()
	return StatusOK
}

// of returns what was taken and the calls made for source src, in order.
func (ph *phone) of(src string) (taken, calls []string) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	for _, k := range ph.taken {
		if k[:len(src)] == src {
			taken = append(taken, k)
		}
	}
	for _, k := range ph.calls {
		if k[:len(src)] == src {
			calls = append(calls, k)
		}
	}
	return taken, calls
}

const (
	alice = "12015550101"
	bob   = "12015550102"
	user  = "12015550100"
)

// step is one PDU the SMSC sends and the status it must get back.
type step struct {
	src, text string
	esm       byte
	want      Status
}

// play sends each step's deliver_sm and checks its answer before the next.
func play(t *testing.T, p *peer, seq *uint32, steps []step) {
	t.Helper()
	for _, s := range steps {
		*seq++
		p.send(raw(cmdDeliverSM, 0, *seq, deliverBody(s.src, user, s.esm, 0, []byte(s.text))))
		p.expectBytes(raw(cmdDeliverSM|respBit, uint32(s.want), *seq, []byte{0}))
	}
}

func checkTaken(t *testing.T, ph *phone, src string, want ...string) {
	t.Helper()
	taken, _ := ph.of(src)
	for i := range want {
		want[i] = src + ":" + want[i]
	}
	if !slices.Equal(taken, want) {
		t.Errorf("%s: taken %q, want %q", src, taken, want)
	}
}

// TestRefusedHoldsPair: once a message from a phone is refused with
// ESME_RX_T_APPN, the phone's later ones to the same user are refused too,
// without reaching the Handler, until the refused one comes back and is
// taken; then they are taken in the order the phone sent them. Another
// phone, and receipts from the held phone, are not held.
func TestRefusedHoldsPair(t *testing.T) {
	f := newFakeSMSC(t)
	ph := &phone{refuse: func(key string, call int) bool { return key == alice+":1" && call == 1 }}
	logs := testenv.NewLogs(t)
	h := startClient(t, f, func(c *Config) {
		c.Handler = ph
		c.Logger = zerolog.New(logs)
	})
	p := f.acceptBound()
	h.waitBound(t)

	var seq uint32
	play(t, p, &seq, []step{
		{src: alice, text: "1", want: StatusRxTAppn}, // the store failed
		{src: alice, text: "2", want: StatusRxTAppn}, // held
		{src: bob, text: "a", want: StatusOK},
		{src: alice, text: "id:1 stat:DELIVRD", esm: 0x04, want: StatusOK}, // a receipt
		{src: alice, text: "3", want: StatusRxTAppn},
		{src: alice, text: "1", want: StatusOK}, // the SMSC sends it again
		{src: alice, text: "2", want: StatusOK},
		{src: alice, text: "3", want: StatusOK},
		{src: alice, text: "4", want: StatusOK},
	})
	checkTaken(t, ph, alice, "id:1 stat:DELIVRD", "1", "2", "3", "4")
	checkTaken(t, ph, bob, "a")
	if _, calls := ph.of(alice); len(calls) != 6 {
		t.Errorf("handler called for %q; held messages must not reach it", calls)
	}
	var held []string
	for len(logs.Lines()) > 0 {
		l := <-logs.Lines()
		if msg, _ := l["message"].(string); strings.Contains(msg, "ESME_RX_T_APPN") {
			held = append(held, fmt.Sprint(l["level"], " ", msg))
		}
	}
	if len(held) != 1 || !strings.HasPrefix(held[0], "info ") {
		t.Errorf("logged %q; want one info line for the held phone", held)
	}
}

// TestRefusedHoldsQueued: the phone's messages that came while the refused
// one was being handled, queued behind it, are refused after it.
func TestRefusedHoldsQueued(t *testing.T) {
	f := newFakeSMSC(t)
	entered, release := make(chan struct{}), make(chan struct{})
	ph := &phone{refuse: func(key string, call int) bool {
		if key == alice+":1" && call == 1 {
			close(entered)
			<-release
			return true
		}
		return false
	}}
	h := startClient(t, f, func(c *Config) { c.Handler = ph })
	p := f.acceptBound()
	h.waitBound(t)

	p.send(raw(cmdDeliverSM, 0, 1, deliverBody(alice, user, 0, 0, []byte("1"))))
	<-entered
	p.send(raw(cmdDeliverSM, 0, 2, deliverBody(alice, user, 0, 0, []byte("2"))))
	p.send(raw(cmdDeliverSM, 0, 3, deliverBody(alice, user, 0, 0, []byte("3"))))
	seq := uint32(3)
	play(t, p, &seq, []step{{src: bob, text: "a", want: StatusOK}}) // 2 and 3 are queued by now
	close(release)
	for seq := uint32(1); seq <= 3; seq++ {
		p.expectBytes(raw(cmdDeliverSM|respBit, uint32(StatusRxTAppn), seq, []byte{0}))
	}
	seq = 4
	play(t, p, &seq, []step{
		{src: alice, text: "2", want: StatusRxTAppn}, // 1 comes back first
		{src: alice, text: "1", want: StatusOK},
		{src: alice, text: "3", want: StatusRxTAppn}, // 2 comes back first
		{src: alice, text: "2", want: StatusOK},
		{src: alice, text: "5", want: StatusRxTAppn}, // new, behind 3
		{src: alice, text: "3", want: StatusOK},
		{src: alice, text: "5", want: StatusOK},
	})
	checkTaken(t, ph, alice, "1", "2", "3", "5")
}

// TestQueueFullHoldsPair: a message refused because the dispatch queue is
// full holds its pair like one the Handler refused; those of its pair
// already queued, which came before it, are handled.
func TestQueueFullHoldsPair(t *testing.T) {
	f := newFakeSMSC(t)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	ph := &phone{refuse: func(key string, call int) bool {
		if key == bob+":0" {
			entered <- struct{}{}
			<-release
		}
		return false
	}}
	h := startClient(t, f, func(c *Config) {
		c.DispatchWorkers = 1
		c.Handler = ph
	})
	p := f.acceptBound()
	h.waitBound(t)

	p.send(raw(cmdDeliverSM, 0, 1, deliverBody(bob, user, 0, 0, []byte("0"))))
	<-entered
	for seq := uint32(2); seq <= 9; seq++ { // fills the queue of 8
		p.send(raw(cmdDeliverSM, 0, seq, deliverBody(alice, user, 0, 0, []byte(fmt.Sprint(seq)))))
	}
	seq := uint32(9)
	play(t, p, &seq, []step{{src: alice, text: "10", want: StatusRxTAppn}})
	close(release)
	for seq := uint32(1); seq <= 9; seq++ {
		p.expectBytes(raw(cmdDeliverSM|respBit, 0, seq, []byte{0}))
	}
	play(t, p, &seq, []step{
		{src: alice, text: "11", want: StatusRxTAppn},
		{src: alice, text: "10", want: StatusOK},
		{src: alice, text: "11", want: StatusOK},
	})
	checkTaken(t, ph, alice, "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")
}

// clock is a Holds clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestHoldExpires: a pair is let go when its refused message has not come
// back within Holds.Wait; a refusal of the message come back starts the
// wait again.
func TestHoldExpires(t *testing.T) {
	f := newFakeSMSC(t)
	clk := newClock()
	ph := &phone{refuse: func(key string, call int) bool { return key == alice+":1" && call <= 2 }}
	h := startClient(t, f, func(c *Config) {
		c.Handler = ph
		c.Holds = &Holds{Wait: time.Minute, now: clk.now}
	})
	p := f.acceptBound()
	h.waitBound(t)

	var seq uint32
	play(t, p, &seq, []step{
		{src: alice, text: "1", want: StatusRxTAppn},
		{src: alice, text: "2", want: StatusRxTAppn},
	})
	clk.add(50 * time.Second)
	play(t, p, &seq, []step{{src: alice, text: "1", want: StatusRxTAppn}}) // refused again: 1 min more
	clk.add(50 * time.Second)
	play(t, p, &seq, []step{{src: alice, text: "2", want: StatusRxTAppn}})
	clk.add(11 * time.Second)
	play(t, p, &seq, []step{
		{src: alice, text: "2", want: StatusOK},
		{src: alice, text: "3", want: StatusOK},
		{src: alice, text: "1", want: StatusOK},
	})
	checkTaken(t, ph, alice, "2", "3", "1")
}

// TestHoldLastsSixWaits: a message refused every time it comes back holds
// its pair for 6 times Holds.Wait at most.
func TestHoldLastsSixWaits(t *testing.T) {
	f := newFakeSMSC(t)
	clk := newClock()
	ph := &phone{refuse: func(key string, _ int) bool { return key == alice+":1" }}
	h := startClient(t, f, func(c *Config) {
		c.Handler = ph
		c.Holds = &Holds{Wait: time.Minute, now: clk.now}
	})
	p := f.acceptBound()
	h.waitBound(t)

	var seq uint32
	for range 7 { // at 0, 50 s, … 300 s
		play(t, p, &seq, []step{
			{src: alice, text: "1", want: StatusRxTAppn},
			{src: alice, text: "2", want: StatusRxTAppn},
		})
		clk.add(50 * time.Second)
	}
	play(t, p, &seq, []step{{src: alice, text: "1", want: StatusRxTAppn}}) // 350 s: waited for until 360 s
	clk.add(9 * time.Second)
	play(t, p, &seq, []step{{src: alice, text: "2", want: StatusRxTAppn}})
	clk.add(2 * time.Second)
	play(t, p, &seq, []step{{src: alice, text: "2", want: StatusOK}})
	checkTaken(t, ph, alice, "2")
}

// TestHoldsBounded: when Holds.Pairs pairs are held, another pair's refusal
// is not remembered, until a held pair's wait is over.
func TestHoldsBounded(t *testing.T) {
	f := newFakeSMSC(t)
	clk := newClock()
	ph := &phone{refuse: func(key string, call int) bool { return strings.HasSuffix(key, ":1") && call == 1 }}
	h := startClient(t, f, func(c *Config) {
		c.Handler = ph
		c.Holds = &Holds{Wait: time.Minute, Pairs: 2, now: clk.now}
	})
	p := f.acceptBound()
	h.waitBound(t)

	const p1, p2, p3, p4 = "12015550111", "12015550112", "12015550113", "12015550114"
	var seq uint32
	play(t, p, &seq, []step{
		{src: p1, text: "1", want: StatusRxTAppn},
		{src: p2, text: "1", want: StatusRxTAppn},
		{src: p3, text: "1", want: StatusRxTAppn}, // not remembered
		{src: p1, text: "2", want: StatusRxTAppn},
		{src: p2, text: "2", want: StatusRxTAppn},
		{src: p3, text: "2", want: StatusOK},
	})
	clk.add(61 * time.Second)
	play(t, p, &seq, []step{
		{src: p4, text: "1", want: StatusRxTAppn}, // p1 and p2 are let go
		{src: p4, text: "2", want: StatusRxTAppn},
		{src: p1, text: "2", want: StatusOK},
		{src: p2, text: "2", want: StatusOK},
	})
}

// TestHoldsShared: a refused message that comes back on another bind
// sharing the Holds, or on the next bind after a reconnect, lets its pair go.
func TestHoldsShared(t *testing.T) {
	f := newFakeSMSC(t)
	holds := new(Holds)
	ph := &phone{refuse: func(key string, call int) bool { return strings.HasSuffix(key, ":1") && call == 1 }}
	mod := func(c *Config) {
		c.Handler = ph
		c.Holds = holds
	}
	h1, h2 := startClient(t, f, mod), startClient(t, f, mod)
	t.Cleanup(func() { h1.cancel() }) // before h2's cleanup looks for session goroutines
	p1, p2 := f.acceptBound(), f.acceptBound()
	h1.waitBound(t)
	h2.waitBound(t)

	var seq uint32
	play(t, p1, &seq, []step{{src: alice, text: "1", want: StatusRxTAppn}})
	play(t, p2, &seq, []step{{src: alice, text: "2", want: StatusRxTAppn}})
	play(t, p2, &seq, []step{{src: alice, text: "1", want: StatusOK}})
	play(t, p1, &seq, []step{{src: alice, text: "2", want: StatusOK}})
	checkTaken(t, ph, alice, "1", "2")

	play(t, p1, &seq, []step{{src: bob, text: "1", want: StatusRxTAppn}})
	p1.c.Close()
	p1 = f.acceptBound()
	play(t, p1, &seq, []step{
		{src: bob, text: "2", want: StatusRxTAppn},
		{src: bob, text: "1", want: StatusOK},
		{src: bob, text: "2", want: StatusOK},
	})
	checkTaken(t, ph, bob, "1", "2")
}

// TestDigest: a message sent again is known by its content and how to read
// it, not by its sequence number, bind or other TLVs.
func TestDigest(t *testing.T) {
	base := func() *Deliver {
		return &Deliver{
			Command: cmdDeliverSM, Seq: 1, Session: 1,
			Source: Address{1, 1, alice}, Dest: Address{1, 1, user},
			ShortMessage: []byte("hi"),
			TLVs:         map[uint16][]byte{0x020C: {0, 7}, 0x020E: {2}, 0x020F: {1}},
		}
	}
	for _, tc := range []struct {
		name string
		mod  func(*Deliver)
		same bool
	}{
		{"sent again", func(d *Deliver) { d.Seq, d.Session, d.arrival = 9, 2, 5 }, true},
		{"data_sm", func(d *Deliver) { d.Command = cmdDataSM }, true},
		{"another SMSC TLV", func(d *Deliver) { d.TLVs[0x1401] = []byte{1} }, true},
		{"text", func(d *Deliver) { d.ShortMessage = []byte("ho") }, false},
		{"data_coding", func(d *Deliver) { d.DataCoding = 8 }, false},
		{"esm_class", func(d *Deliver) { d.ESMClass = 0x40 }, false},
		{"SAR part", func(d *Deliver) { d.TLVs[0x020F] = []byte{2} }, false},
		{"SAR reference", func(d *Deliver) { d.TLVs[0x020C] = []byte{0, 8} }, false},
		{"message_payload", func(d *Deliver) { d.TLVs[tagMessagePayload] = []byte("more") }, false},
	} {
		d := base()
		tc.mod(d)
		if same := digest(d) == digest(base()); same != tc.same {
			t.Errorf("%s: same digest %v, want %v", tc.name, same, tc.same)
		}
	}
}

// TestHoldsSwept: a held pair whose wait ran out is let go within a second
// of the next message from any phone, so the others go back to the path
// without the lock.
func TestHoldsSwept(t *testing.T) {
	f := newFakeSMSC(t)
	clk := newClock()
	holds := &Holds{Wait: time.Minute, now: clk.now}
	ph := &phone{refuse: func(key string, call int) bool { return key == alice+":1" && call == 1 }}
	h := startClient(t, f, func(c *Config) {
		c.Handler = ph
		c.Holds = holds
	})
	p := f.acceptBound()
	h.waitBound(t)

	var seq uint32
	play(t, p, &seq, []step{{src: alice, text: "1", want: StatusRxTAppn}}) // alice never writes again
	if n := holds.count.Load(); n != 1 {
		t.Fatalf("%d pairs held, want 1", n)
	}
	clk.add(61 * time.Second)
	play(t, p, &seq, []step{{src: bob, text: "a", want: StatusOK}})
	if n := holds.count.Load(); n != 0 {
		t.Fatalf("%d pairs held after alice's wait ran out, want 0", n)
	}
}
