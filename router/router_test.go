package router_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/internal/testenv"
	"switchboard/router"
	"switchboard/store"
	"switchboard/store/storetest"
)

// sent is one stanza the router asked the XMPP side to send.
type sent struct {
	kind      string // text, receipt, error, relay, relay-error
	from, to  string
	id, text  string
	condition stanza.Condition
	request   bool
}

// fakeXMPP records what the router sends; it is the only fake here (the
// store is a real SQLite file).
type fakeXMPP struct {
	mu       sync.Mutex
	out      []sent
	notify   chan struct{}
	present  map[string]bool // JID (bare, or a resource on its own) → available; absent: unknown
	asked    int             // calls of Available
	relayErr error           // what SendRelay returns
	down     atomic.Bool     // Connected says false
	reach    map[string]bool // full JID → whether Reachable finds it there; absent: no answer
	probed   []string        // the JIDs Reachable was asked about
}

func newFakeXMPP() *fakeXMPP { return &fakeXMPP{notify: make(chan struct{}, 100)} }

func (f *fakeXMPP) add(s sent) error {
	f.mu.Lock()
	f.out = append(f.out, s)
	f.mu.Unlock()
	f.notify <- struct{}{}
	return nil
}

func (f *fakeXMPP) Connected() bool { return !f.down.Load() }
func (f *fakeXMPP) SendText(_ context.Context, from, to jid.JID, id, body string, _ time.Time) error {
	return f.add(sent{kind: "text", from: from.String(), to: to.String(), id: id, text: body})
}
func (f *fakeXMPP) SendReceipt(_ context.Context, from, to jid.JID, id string) error {
	return f.add(sent{kind: "receipt", from: from.String(), to: to.String(), id: id})
}
func (f *fakeXMPP) SendError(_ context.Context, from, to jid.JID, id string, e stanza.Error) error {
	return f.add(sent{kind: "error", from: from.String(), to: to.String(), id: id, condition: e.Condition, text: e.Text[""]})
}
func (f *fakeXMPP) SendRelay(_ context.Context, from, to jid.JID, id string, payload []byte, req bool) error {
	f.mu.Lock()
	err := f.relayErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.add(sent{kind: "relay", from: from.String(), to: to.String(), id: id, text: string(payload), request: req})
}
func (f *fakeXMPP) Reachable(_ context.Context, j jid.JID) (known, reachable bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probed = append(f.probed, j.String())
	reachable, known = f.reach[j.String()]
	return known, reachable
}
func (f *fakeXMPP) SendRelayError(_ context.Context, from, to jid.JID, id string, payload []byte) error {
	return f.add(sent{kind: "relay-error", from: from.String(), to: to.String(), id: id, text: string(payload)})
}
func (f *fakeXMPP) Batch(ctx context.Context) (context.Context, func() error) {
	return ctx, func() error { return nil }
}
func (f *fakeXMPP) Sync(context.Context) error { return nil }
func (f *fakeXMPP) Available(j jid.JID) (bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	if avail, known := f.present[j.String()]; known {
		return known, avail
	}
	avail, known := f.present[j.Bare().String()]
	return known, avail
}

// setPresent makes Available say avail for j (a bare JID: any resource;
// a full JID: that one).
func (f *fakeXMPP) setPresent(j string, avail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.present == nil {
		f.present = make(map[string]bool)
	}
	f.present[j] = avail
}

// next waits for the next sent stanza matching kind.
func (f *fakeXMPP) next(t *testing.T, kind string) sent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		for i, s := range f.out {
			if s.kind == kind {
				f.out = append(f.out[:i], f.out[i+1:]...)
				f.mu.Unlock()
				return s
			}
		}
		f.mu.Unlock()
		select {
		case <-f.notify:
		case <-deadline:
			t.Fatalf("no %s sent", kind)
		}
	}
}

var (
	comp  = jid.MustParse("sms.example.com")
	alice = jid.MustParse("alice@example.com/phone")
	bob   = jid.MustParse("bob@example.com/laptop")
)

const (
	aliceNum = "+12015550100"
	bobNum   = "+12015550101"
	phone    = "+12015550199"
)

type fixture struct {
	r     *router.Router
	st    *store.Store
	x     *fakeXMPP
	woken chan struct{}
}

func setup(t *testing.T, cfg router.Config) *fixture {
	t.Helper()
	return setupLog(t, cfg, zerolog.NewTestWriter(t))
}

// setupLog is setup with the router's log written to w.
func setupLog(t *testing.T, cfg router.Config, w io.Writer) *fixture {
	t.Helper()
	st := storetest.SQLite(t)
	for n, j := range map[string]string{aliceNum: "alice@example.com", bobNum: "bob@example.com"} {
		if _, err := st.Bind(context.Background(), n, j, "operator"); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{st: st, x: newFakeXMPP(), woken: make(chan struct{}, 100)}
	cfg.Component = comp
	cfg.Domains = []string{"example.com"}
	cfg.DefaultRegion = "US"
	cfg.Instance = "test"
	cfg.Logger = zerolog.New(w)
	cfg.WakeSMS = func() { f.woken <- struct{}{} }
	f.r = router.New(cfg, st)
	f.r.SetXMPP(f.x)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return f
}

// settle has alice's message id (asking for a receipt) accepted,
// claimed, submitted under SMSC id id, and settled by a receipt with stat
// and errCode.
func (f *fixture) settle(t *testing.T, id, body, stat, errCode string) {
	t.Helper()
	ctx := context.Background()
	m := &store.Outbound{SenderJID: alice.String(), SenderNumber: aliceNum, Dest: phone, StanzaID: id, WantReceipt: true, Body: body, Parts: 1}
	if err := f.st.AcceptOutbound(ctx, []*store.Outbound{m}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.ClaimOutbound(ctx, "test", 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.PartSubmitted(ctx, m.ID, 1, "", []string{id}); err != nil {
		t.Fatal(err)
	}
	if r, err := f.st.Receipt(ctx, "", []string{id}, stat, errCode); err != nil || !r.Final {
		t.Fatalf("Receipt = %+v, %v", r, err)
	}
}

func numberJID(n string) jid.JID { return jid.MustParse(n + "@sms.example.com") }

// receipt is user's XEP-0184 receipt for message id, to number's JID.
func receipt(user jid.JID, number, id string) router.Message {
	return router.Message{From: user, To: numberJID(number), ID: "r-" + id, Payload: []byte("<received xmlns='urn:xmpp:receipts' id='" + id + "'/>")}
}

func (f *fixture) queued(t *testing.T) []*store.Outbound {
	t.Helper()
	select {
	case <-f.woken:
	case <-time.After(10 * time.Second):
		t.Fatal("the SMS side was never woken")
	}
	msgs, err := f.st.ClaimOutbound(context.Background(), "t", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestChecksBeforeStoring(t *testing.T) {
	f := setup(t, router.Config{MaxParts: 2})
	ctx := context.Background()
	var se stanza.Error
	err := f.r.Outbound(ctx, router.Message{From: jid.MustParse("eve@elsewhere.example/x"), To: numberJID(phone), Body: "hi"})
	if !errors.As(err, &se) || se.Condition != stanza.Forbidden {
		t.Fatalf("foreign sender: %v", err)
	}
	err = f.r.Outbound(ctx, router.Message{From: alice, To: jid.MustParse("pizza@sms.example.com"), Body: "hi"})
	if !errors.As(err, &se) || se.Condition != stanza.JIDMalformed || !strings.Contains(se.Text[""], `"pizza" is a name, not a phone number`) {
		t.Fatalf("a name: %v", err)
	}
	// An alphanumeric sender ID that looks like a number: a name all the
	// same, not +12015550177 (libphonenumber reads the digits).
	err = f.r.Outbound(ctx, router.Message{From: alice, To: jid.MustParse("x2015550177@sms.example.com"), Body: "YES"})
	if !errors.As(err, &se) || se.Condition != stanza.JIDMalformed || !strings.Contains(se.Text[""], `"x2015550177" is a name, not a phone number`) {
		t.Fatalf("an alphanumeric sender: %v", err)
	}
	err = f.r.Outbound(ctx, router.Message{From: alice, To: jid.MustParse("+12015550199;ext=12@sms.example.com"), Body: "hi"})
	if !errors.As(err, &se) || se.Condition != stanza.JIDMalformed || !strings.Contains(se.Text[""], `"+12015550199;ext=12" has an extension, which no SMS can reach`) {
		t.Fatalf("an extension: %v", err)
	}
	err = f.r.Outbound(ctx, router.Message{From: alice, To: jid.MustParse("+1555@sms.example.com"), Body: "hi"})
	if !errors.As(err, &se) || se.Condition != stanza.JIDMalformed ||
		se.Text[""] != `"+1555" is not a phone number this gateway can reach: it has too few digits for a number with the country code +1.` {
		t.Fatalf("bad number: %v", err)
	}
	// Not in international form: said how to write it.
	err = f.r.Outbound(ctx, router.Message{From: alice, To: jid.MustParse("1-555@sms.example.com"), Body: "hi"})
	if !errors.As(err, &se) || se.Condition != stanza.JIDMalformed || !strings.Contains(se.Text[""], `"1-555" is not a phone number this gateway can reach: write it in international form`) {
		t.Fatalf("a number not in international form: %v", err)
	}
	// A short code (a service's sender) is said to be one, not malformed;
	// with answers to short codes off (Limits.ShortCodeReply 0), at once.
	err = f.r.Outbound(ctx, router.Message{From: alice, To: jid.MustParse("72345@sms.example.com"), Body: "STOP"})
	if !errors.As(err, &se) || se.Condition != stanza.ServiceUnavailable || !strings.Contains(se.Text[""], "72345 is a short code: this gateway sends no SMS to short codes") {
		t.Fatalf("reply to a short code: %v", err)
	}
	// A body-less stanza to a bad number is dropped quietly.
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: jid.MustParse("pizza@sms.example.com")}); err != nil {
		t.Fatalf("chat state to a bad number: %v", err)
	}
	// Checks that need the store come back as errors to the sender.
	if err := f.r.Outbound(ctx, router.Message{From: jid.MustParse("carol@example.com/x"), To: numberJID(phone), ID: "c1", Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	if s := f.x.next(t, "error"); s.condition != stanza.RegistrationRequired || s.id != "c1" || s.to != "carol@example.com/x" {
		t.Fatalf("no number: %+v", s)
	}
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(phone), ID: "a1", Body: strings.Repeat("x", 400)}); err != nil {
		t.Fatal(err)
	}
	if s := f.x.next(t, "error"); s.condition != stanza.PolicyViolation || !strings.Contains(s.text, "3 SMS") {
		t.Fatalf("too long: %+v", s)
	}
}

// TestPartsFromTheGateway: a message is stored with the parts
// Config.Parts gives for its destination (they depend on the SMSCs that
// carry it), and the limit on parts counts those.
func TestPartsFromTheGateway(t *testing.T) {
	var dest string
	f := setup(t, router.Config{MaxParts: 2, Parts: func(d, text string) int {
		dest = d
		return len(text)
	}})
	ctx := context.Background()
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(phone), ID: "a1", Body: "abc"}); err != nil {
		t.Fatal(err)
	}
	if s := f.x.next(t, "error"); s.condition != stanza.PolicyViolation || !strings.Contains(s.text, "3 SMS") {
		t.Fatalf("too long: %+v", s)
	}
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(phone), ID: "a2", Body: "ab"}); err != nil {
		t.Fatal(err)
	}
	if msgs := f.queued(t); len(msgs) != 1 || msgs[0].Parts != 2 || dest != phone {
		t.Fatalf("queued %+v for %s", msgs, dest)
	}
}

func TestRoutesBySMSOrXMPP(t *testing.T) {
	f := setup(t, router.Config{})
	ctx := context.Background()
	// To a phone: stored for SMS with the SMS text, from alice's number.
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(phone), ID: "s1", Body: "see", SMSText: "see\nhttps://x.example/y", WantReceipt: true}); err != nil {
		t.Fatal(err)
	}
	msgs := f.queued(t)
	if len(msgs) != 1 || msgs[0].SenderNumber != aliceNum || msgs[0].Dest != phone || msgs[0].Body != "see\nhttps://x.example/y" || !msgs[0].WantReceipt {
		t.Fatalf("queued %+v", msgs)
	}
	// To bob's number: relayed from alice's number JID, with a receipt request.
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: "x1", Body: "hi bob", Payload: []byte("<body>hi bob</body>"), WantReceipt: true}); err != nil {
		t.Fatal(err)
	}
	s := f.x.next(t, "relay")
	if s.from != aliceNum+"@sms.example.com" || s.to != "bob@example.com" || s.id != "x1" || !s.request || s.text != "<body>hi bob</body>" {
		t.Fatalf("relay %+v", s)
	}
	// Bob's receipt: delivered, passed to alice from bob's number JID.
	if !f.r.Receipt(ctx, receipt(bob, aliceNum, "x1"), "x1", true) {
		t.Fatal("receipt did not match the relayed message")
	}
	if s := f.x.next(t, "receipt"); s.from != bobNum+"@sms.example.com" || s.to != alice.String() || s.id != "x1" {
		t.Fatalf("receipt %+v", s)
	}
	// A receipt for no relayed message is relayed as it is, unless the
	// component says not to route it (then it is dropped); one from a user
	// of another server is not taken.
	if !f.r.Receipt(ctx, receipt(bob, aliceNum, "not-routed"), "not-routed", false) {
		t.Fatal("a receipt from a user served was not taken")
	}
	if !f.r.Receipt(ctx, receipt(bob, aliceNum, "unknown-id"), "unknown-id", true) {
		t.Fatal("a receipt from a user served was not taken")
	}
	if s := f.x.next(t, "relay"); s.from != bobNum+"@sms.example.com" || s.to != "alice@example.com" || !strings.Contains(s.text, "unknown-id") {
		t.Fatalf("a receipt for no relayed message went as %+v; want relayed as it is", s)
	}
	if f.r.Receipt(ctx, receipt(jid.MustParse("eve@elsewhere.example"), aliceNum, "x1"), "x1", true) {
		t.Fatal("a receipt from a user not served was taken")
	}
	// Chat states to bob are relayed; to a phone they vanish.
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), Payload: []byte("<composing/>")}); err != nil {
		t.Fatal(err)
	}
	if s := f.x.next(t, "relay"); s.request || s.text != "<composing/>" {
		t.Fatalf("chat state relay %+v", s)
	}
}

func TestFallbackOnceAndBounce(t *testing.T) {
	f := setup(t, router.Config{FallbackAfter: 100 * time.Millisecond})
	ctx := context.Background()
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: "f1", Body: "are you there"}); err != nil {
		t.Fatal(err)
	}
	f.x.next(t, "relay")
	if n := f.x.next(t, "text"); !strings.Contains(n.text, "sent as SMS") || n.to != alice.String() {
		t.Fatalf("notice %+v", n)
	}
	msgs := f.queued(t)
	if len(msgs) != 1 || msgs[0].Body != "are you there" || msgs[0].Dest != bobNum {
		t.Fatalf("fallback queued %+v", msgs)
	}
	// A late receipt is reported; the message is not queued again.
	f.r.Receipt(ctx, receipt(bob, aliceNum, "f1"), "f1", true)
	if more, _ := f.st.ClaimOutbound(ctx, "t", 100, time.Minute); len(more) != 0 {
		t.Fatalf("queued twice: %+v", more)
	}
	// A bounce falls back at once.
	f2 := setup(t, router.Config{FallbackAfter: time.Hour})
	if err := f2.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: "b1", Body: "bounced"}); err != nil {
		t.Fatal(err)
	}
	f2.x.next(t, "relay")
	if !f2.r.Bounce(ctx, bob, numberJID(aliceNum), "b1", []byte("<error/>")) {
		t.Fatal("bounce did not match")
	}
	if msgs := f2.queued(t); len(msgs) != 1 || msgs[0].Body != "bounced" {
		t.Fatalf("bounce queued %+v", msgs)
	}
	// With the fallback off, a bounce is passed to the sender instead.
	f3 := setup(t, router.Config{FallbackAfter: -1})
	if err := f3.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: "b2", Body: "no fallback"}); err != nil {
		t.Fatal(err)
	}
	f3.x.next(t, "relay")
	if rel, err := f3.st.FindRelay(ctx, aliceNum, bobNum, "b2"); err != nil || rel.State != store.StateSent {
		t.Fatalf("relay with no fallback: %+v, %v; want sent", rel, err)
	}
	f3.r.Bounce(ctx, bob, numberJID(aliceNum), "b2", []byte("<error/>"))
	if s := f3.x.next(t, "relay-error"); s.id != "b2" || s.to != alice.String() {
		t.Fatalf("relayed error %+v", s)
	}
	if rel, err := f3.st.FindRelay(ctx, aliceNum, bobNum, "b2"); err != nil || rel.State != store.StateFailed {
		t.Fatalf("bounced relay: %+v, %v; want failed", rel, err)
	}
	// A receipt for a relay with no fallback delivers it.
	if err := f3.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: "b3", Body: "acked"}); err != nil {
		t.Fatal(err)
	}
	f3.x.next(t, "relay")
	if !f3.r.Receipt(ctx, receipt(bob, aliceNum, "b3"), "b3", true) {
		t.Fatal("receipt did not match")
	}
	// Recorded after Receipt returns (the router's ackLoop).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rel, err := f3.st.FindRelay(ctx, aliceNum, bobNum, "b3")
		if err == nil && rel.State == store.StateDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acknowledged relay: %+v, %v; want delivered", rel, err)
		}
	}
}

// TestRelayNotHandedOn: a relay the XMPP side could not send fails back to
// its sender when no SMS fallback is armed; with one, it waits for it.
func TestRelayNotHandedOn(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		after time.Duration
		state string
	}{{-1, store.StateFailed}, {time.Hour, store.StateRelayed}} {
		f := setup(t, router.Config{FallbackAfter: tc.after})
		f.x.relayErr = errors.New("component: not connected")
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: "n1", Body: "lost?"}); err != nil {
			t.Fatal(err)
		}
		var rel store.Relay
		for range 100 {
			var err error
			if rel, err = f.st.FindRelay(ctx, aliceNum, bobNum, "n1"); err == nil && rel.State == tc.state {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if rel.State != tc.state {
			t.Fatalf("fallback after %v: state %q, want %s", tc.after, rel.State, tc.state)
		}
		if tc.state == store.StateFailed {
			if s := f.x.next(t, "error"); s.id != "n1" || s.condition != stanza.RecipientUnavailable || !strings.Contains(s.text, "could not be handed") {
				t.Fatalf("error to the sender: %+v", s)
			}
		}
	}
}

// TestFailuresReadPresenceOnce: a batch of failure reports to one client
// reads its presence once, not once a report (see presenceSeen).
func TestFailuresReadPresenceOnce(t *testing.T) {
	f := setup(t, router.Config{})
	f.x.setPresent(alice.String(), false) // gone: each report is a chat message
	ns := make([]store.Notice, 3)
	for i := range ns {
		ns[i] = store.Notice{ID: int64(i + 1), Direction: store.Out, Route: store.RouteSMS, State: store.StateFailed,
			UserJID: alice.String(), PeerNumber: phone, StanzaID: fmt.Sprint("f", i), Body: "text", Error: "the carrier refused it"}
	}
	f.r.HandNotices(ns) // one batch
	for range ns {
		if s := f.x.next(t, "text"); s.to != alice.Bare().String() {
			t.Fatalf("report %+v", s)
		}
	}
	f.x.mu.Lock()
	asked := f.x.asked
	f.x.mu.Unlock()
	if asked != 1 {
		t.Fatalf("Available asked %d times for 3 reports to one client in one batch", asked)
	}
}

// A relay that would fall back to SMS obeys the SMS limits like any SMS,
// whether the timer or a bounce makes it fall back: over the sender's
// quota, or to a blocked prefix, it fails, the sender is told why, and
// nothing goes as SMS; within them it goes.
func TestFallbackWithinLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits router.Limits
		want   string // in the error; "" when the SMS goes
	}{
		{"quota", router.Limits{PerUserMinute: 1}, "the SMS limits refused it as SMS: you have sent 1 SMS in the last minute"},
		{"prefix", router.Limits{BlockedPrefixes: []string{bobNum}}, "the SMS limits refused it as SMS: SMS to " + bobNum},
		{"within", router.Limits{PerUserMinute: 5}, ""},
	} {
		for _, bounce := range []bool{false, true} {
			after := 100 * time.Millisecond
			if bounce {
				after = time.Hour
			}
			var (
				mu       sync.Mutex
				refusals []string
			)
			f := setup(t, router.Config{FallbackAfter: after, Limits: tc.limits, OnRefused: func(r string) {
				mu.Lock()
				defer mu.Unlock()
				refusals = append(refusals, r)
			}})
			ctx := context.Background()
			if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(phone), ID: "s1", Body: "the one SMS"}); err != nil {
				t.Fatal(err)
			}
			if msgs := f.queued(t); len(msgs) != 1 {
				t.Fatalf("first SMS queued %+v", msgs)
			}
			if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: "r1", Body: "relayed"}); err != nil {
				t.Fatal(err)
			}
			f.x.next(t, "relay")
			if bounce && !f.r.Bounce(ctx, bob, numberJID(aliceNum), "r1", []byte("<error/>")) {
				t.Fatal("bounce did not match")
			}
			name := fmt.Sprintf("%s, bounce %v", tc.name, bounce)
			if tc.want == "" {
				if msgs := f.queued(t); len(msgs) != 1 || msgs[0].Body != "relayed" {
					t.Fatalf("%s: fallback queued %+v", name, msgs)
				}
				mu.Lock()
				n := len(refusals)
				mu.Unlock()
				if rel, err := f.st.FindRelay(ctx, aliceNum, bobNum, "r1"); err != nil || rel.State == store.StateFailed || n != 0 {
					t.Fatalf("%s: relay %+v, %v, %d refusals; want it gone as SMS, none refused", name, rel, err, n)
				}
				continue
			}
			e := f.x.next(t, "error")
			if e.id != "r1" || e.to != alice.String() || e.condition != stanza.PolicyViolation ||
				!strings.HasPrefix(e.text, "The message was not delivered: ") || !strings.Contains(e.text, tc.want) {
				t.Fatalf("%s: error %+v", name, e)
			}
			if msgs, err := f.st.ClaimOutbound(ctx, "t", 100, time.Minute); err != nil || len(msgs) != 0 {
				t.Fatalf("%s: %d SMS queued past the limits (%v)", name, len(msgs), err)
			}
			if rel, err := f.st.FindRelay(ctx, aliceNum, bobNum, "r1"); err != nil || rel.State != store.StateFailed {
				t.Fatalf("%s: relay %+v, %v", name, rel, err)
			}
			mu.Lock()
			n := len(refusals)
			mu.Unlock()
			if n != 1 {
				t.Fatalf("%s: %d refusals counted, want one", name, n)
			}
		}
	}
}

func TestUnavailableRecipientGoesBySMS(t *testing.T) {
	f := setup(t, router.Config{})
	f.x.setPresent("bob@example.com", false)
	if err := f.r.Outbound(context.Background(), router.Message{From: alice, To: numberJID(bobNum), ID: "u1", Body: "offline"}); err != nil {
		t.Fatal(err)
	}
	if msgs := f.queued(t); len(msgs) != 1 || msgs[0].Body != "offline" {
		t.Fatalf("queued %+v", msgs)
	}
}

// TestEmptyAnsweredAlike: a message with no content that asks for a
// receipt gets the same error whoever has the number, so it cannot tell
// which numbers are registered; a chat state (no receipt asked) still
// reaches a registered number's owner.
func TestEmptyAnsweredAlike(t *testing.T) {
	f := setup(t, router.Config{})
	ctx := context.Background()
	for _, to := range []string{bobNum, phone} {
		id := "empty-" + to
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(to), ID: id, WantReceipt: true,
			Payload: []byte(`<active xmlns='http://jabber.org/protocol/chatstates'/>`)}); err != nil {
			t.Fatal(err)
		}
		if s := f.x.next(t, "error"); s.id != id || s.condition != stanza.NotAcceptable || !strings.Contains(s.text, "The message is empty") {
			t.Fatalf("to %s: %+v", to, s)
		}
	}
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: "state",
		Payload: []byte(`<active xmlns='http://jabber.org/protocol/chatstates'/>`)}); err != nil {
		t.Fatal(err)
	}
	if s := f.x.next(t, "relay"); s.id != "state" {
		t.Fatalf("chat state %+v", s)
	}
	// To a JID that is no number, a name or a number too short, the
	// same answer, at once; a chat state there goes nowhere, silently.
	for _, local := range []string{"abc", "+12"} {
		to := jid.MustParse(local + "@sms.example.com")
		err := f.r.Outbound(ctx, router.Message{From: alice, To: to, ID: "e", WantReceipt: true})
		var se stanza.Error
		if !errors.As(err, &se) || se.Condition != stanza.NotAcceptable || !strings.Contains(se.Text[""], "The message is empty") {
			t.Errorf("empty message asking for a receipt to %s: %v; want not-acceptable, the message is empty", to, err)
		}
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: to, ID: "s",
			Payload: []byte(`<active xmlns='http://jabber.org/protocol/chatstates'/>`)}); err != nil {
			t.Errorf("chat state to %s: %v; want none", to, err)
		}
	}
}

func TestLimits(t *testing.T) {
	f := setup(t, router.Config{Limits: router.Limits{
		AllowedRegions: []string{"US", "CA"}, BlockedPrefixes: []string{"+1900"}, PerUserMinute: 2,
	}})
	ctx := context.Background()
	send := func(id, to string) {
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(to), ID: id, Body: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	send("g1", "+442079460000")
	if s := f.x.next(t, "error"); s.condition != stanza.PolicyViolation || !strings.Contains(s.text, "GB") {
		t.Fatalf("country %+v", s)
	}
	send("p1", "+19005550123")
	if s := f.x.next(t, "error"); !strings.Contains(s.text, "+1900") {
		t.Fatalf("prefix %+v", s)
	}
	send("q1", phone)
	send("q2", phone)
	send("q3", phone)
	if s := f.x.next(t, "error"); s.id != "q3" || !strings.Contains(s.text, "last minute") {
		t.Fatalf("quota %+v", s)
	}
	// XMPP relays are not counted.
	send("r1", bobNum)
	if s := f.x.next(t, "relay"); s.id != "r1" {
		t.Fatalf("relay %+v", s)
	}
}

// TestPolicyLogBounded: a user can have messages refused by the limits at
// will; each is refused and counted, but the log takes ten lines a
// minute of them, not one each.
func TestPolicyLogBounded(t *testing.T) {
	logs := testenv.NewLogs(t)
	refused := 0
	f := setupLog(t, router.Config{Limits: router.Limits{BlockedPrefixes: []string{"+1900"}},
		OnRefused: func(string) { refused++ }}, logs)
	ctx := context.Background()
	const n = 30
	for i := range n {
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID("+19005550123"), ID: fmt.Sprint("p", i), Body: "x"}); err != nil {
			t.Fatal(err)
		}
		if s := f.x.next(t, "error"); s.condition != stanza.PolicyViolation {
			t.Fatalf("message %d: %+v", i, s)
		}
	}
	if lines := logs.Count("SMS refused by policy"); lines != 10 || refused != n {
		t.Errorf("%d refusals counted, %d logged; want %d and 10", refused, lines, n)
	}
}

// TestGlobalAndDailyLimits: everyone's SMS per minute and a user's per day
// are limits of their own.
func TestGlobalAndDailyLimits(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		limits router.Limits
		from   []jid.JID // the last one is refused
		text   string
		body   string // default "x"
	}{
		{"global", router.Limits{GlobalMinute: 2}, []jid.JID{alice, bob, alice}, "too many SMS right now", ""},
		{"day", router.Limits{PerUserDay: 2}, []jid.JID{alice, alice, alice}, "last 24 hours", ""},
		// The limits count SMS as billed, a part each: two messages of
		// two parts are four of five; the third does not fit.
		{"parts", router.Limits{PerUserDay: 5}, []jid.JID{alice, alice, alice},
			"This message takes 2 SMS, and 1 of the 5 allowed in the last 24 hours are left", strings.Repeat("x", 200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, router.Config{Limits: tc.limits, MaxParts: 10})
			for i, from := range tc.from {
				if err := f.r.Outbound(ctx, router.Message{From: from, To: numberJID(phone), ID: fmt.Sprint(i), Body: cmp.Or(tc.body, "x")}); err != nil {
					t.Fatal(err)
				}
				if i == len(tc.from)-1 {
					break
				}
				// Stored (the SMS sender is woken) before the next comes,
				// so each batch reads the count from the store.
				select {
				case <-f.woken:
				case <-time.After(10 * time.Second):
					t.Fatalf("message %d not stored", i)
				}
			}
			last := fmt.Sprint(len(tc.from) - 1)
			if s := f.x.next(t, "error"); s.id != last || !strings.Contains(s.text, tc.text) {
				t.Fatalf("refusal %+v, want message %s refused with %q", s, last, tc.text)
			}
		})
	}
}

// fakeHandoff is the gateway's side of the hand-off: it has free slots, and
// records what it is given.
type fakeHandoff struct {
	free  int
	taken chan []*store.Outbound
	freed chan int // slots given back unused
}

func (h *fakeHandoff) Reserve(max int) (string, time.Time, int) {
	n := min(max, h.free)
	h.free -= n
	return "gw", time.Now().Add(time.Minute), n
}

func (h *fakeHandoff) Take(msgs []*store.Outbound, reserved int) {
	h.free += reserved - len(msgs)
	h.freed <- reserved - len(msgs)
	h.taken <- msgs
}

// TestHandoff checks that new SMS go straight to the gateway as far as it
// has slots, stored leased to it (no claim can take them), and that the
// rest is queued and the claimer woken.
func TestHandoff(t *testing.T) {
	h := &fakeHandoff{free: 2, taken: make(chan []*store.Outbound, 10), freed: make(chan int, 10)}
	f := setup(t, router.Config{Handoff: h})
	ctx := context.Background()
	for i, id := range []string{"h1", "h2", "h3"} {
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(phone), ID: id, Body: "hi"}); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			// Stored, then taken: leased to the gateway, first attempt.
			msgs := <-h.taken
			if <-h.freed != 0 || len(msgs) != 1 || msgs[0].StanzaID != id || msgs[0].ID == 0 || msgs[0].Attempts != 1 || msgs[0].LeaseOwner != "gw" {
				t.Fatalf("message %s: taken %+v", id, msgs)
			}
			if st, _, err := f.st.MessageState(ctx, msgs[0].ID); err != nil || st != store.StateSubmitting {
				t.Fatalf("message %s stored as %q, %v; want submitting", id, st, err)
			}
			continue
		}
	}
	// No slot left for the third: queued, and the claimer woken. The two
	// handed off cannot be claimed while their lease holds.
	msgs := f.queued(t)
	if len(msgs) != 1 || msgs[0].StanzaID != "h3" {
		t.Fatalf("claimed %+v, want only h3", msgs)
	}
	// A message to an XMPP user is never handed to the SMS gateway.
	h.free = 5
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: "x1", Body: "hi bob", Payload: []byte("<body>hi bob</body>")}); err != nil {
		t.Fatal(err)
	}
	f.x.next(t, "relay")
	select {
	case m := <-h.taken:
		t.Fatalf("relay handed to the gateway: %+v", m)
	default:
	}
}

// TestHandedNotices checks that a receipt's notice handed over by the store
// reaches the sender without a claim.
func TestHandedNotices(t *testing.T) {
	f := setup(t, router.Config{})
	f.st.HandNotices("test", router.NoticeLease, f.r.HandNotices)
	f.settle(t, "r1", "hi", "DELIVRD", "")
	if s := f.x.next(t, "receipt"); s.from != phone+"@sms.example.com" || s.to != alice.String() || s.id != "r1" {
		t.Fatalf("receipt %+v", s)
	}
}

// TestFailureReports: a failure goes back as a message error to the
// client that sent the message while it is online (or its presence is not
// known); once it has gone, as a chat message to the user's bare JID
// quoting the message, whether the notice was handed on at once (no text)
// or claimed (with the text).
func TestFailureReports(t *testing.T) {
	f := setup(t, router.Config{})
	f.st.HandNotices("test", router.NoticeLease, f.r.HandNotices)
	ctx := context.Background()
	fail := func(id, body string) { t.Helper(); f.settle(t, id, body, "UNDELIV", "000") }

	// Presence unknown, then the sending client online: an error to it.
	fail("f1", "first")
	if s := f.x.next(t, "error"); s.id != "f1" || s.to != alice.String() || !strings.Contains(s.text, "not delivered") {
		t.Fatalf("report %+v", s)
	}
	f.x.setPresent(alice.String(), true)
	fail("f2", "second")
	if s := f.x.next(t, "error"); s.id != "f2" || s.to != alice.String() {
		t.Fatalf("report %+v", s)
	}

	// The client has gone: a chat message to the bare JID, quoting the
	// beginning of the text on one line.
	f.x.setPresent(alice.String(), false)
	long := "Running late,\nsee you at the station in twenty minutes or so, sorry about that"
	fail("f3", long)
	s := f.x.next(t, "text")
	if s.to != alice.Bare().String() || s.from != comp.String() ||
		!strings.HasPrefix(s.text, "Your SMS to "+phone+" “Running late, see you at the station in twenty minutes or so…” was not delivered") {
		t.Fatalf("report %+v", s)
	}

	// A notice claimed rather than handed carries the text itself.
	n := &store.Outbound{SenderJID: alice.String(), SenderNumber: aliceNum, Dest: phone, StanzaID: "f4", Body: "claimed", Parts: 1}
	if err := f.st.AcceptOutbound(ctx, []*store.Outbound{n}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Fail(ctx, n.ID, "it could not be handed to the carrier within its validity period"); err != nil {
		t.Fatal(err)
	}
	if s := f.x.next(t, "text"); s.to != alice.Bare().String() || !strings.Contains(s.text, "“claimed”") || !strings.Contains(s.text, "validity period") {
		t.Fatalf("report %+v", s)
	}
	// Nothing else: no error to the client that has gone.
	time.Sleep(100 * time.Millisecond)
	f.x.mu.Lock()
	defer f.x.mu.Unlock()
	if len(f.x.out) != 0 { // next takes what it returns
		t.Fatalf("sent besides the reports: %+v", f.x.out)
	}
}

// TestClaimedFirst: after the XMPP side was down, notices left to a claim
// (older: their lease ran out meanwhile) go before those handed since, so
// a phone's messages keep their order.
func TestClaimedFirst(t *testing.T) {
	f := setup(t, router.Config{})
	f.x.down.Store(true)
	old := &store.Inbound{Source: phone, Dest: aliceNum, RecipientJID: "alice@example.com", Body: "first"}
	if err := f.st.AcceptInbound(context.Background(), old); err != nil || old.Handed {
		t.Fatalf("AcceptInbound: handed %v, %v; want it left to a claim", old.Handed, err)
	}
	f.r.HandNotices([]store.Notice{{ID: old.ID + 1, Direction: store.In, UserJID: "alice@example.com", PeerNumber: phone, Body: "second", Stored: time.Now()}})
	f.r.Wake() // the claim is due before the loop can run again
	f.x.down.Store(false)
	f.r.Wake() // as the component does when it connects
	for _, want := range []string{"first", "second"} {
		if s := f.x.next(t, "text"); s.text != want {
			t.Fatalf("sent %q, want %q", s.text, want)
		}
	}
}

// TestOddMessagesFromPhones: an SMS without text, or without a sender,
// still reads as something in a client: empty bodies are not shown.
func TestOddMessagesFromPhones(t *testing.T) {
	f := setup(t, router.Config{})
	f.r.HandNotices([]store.Notice{
		{ID: 1, Direction: store.In, UserJID: "alice@example.com", PeerNumber: phone, Body: "", Stored: time.Now()},
		{ID: 2, Direction: store.In, UserJID: "alice@example.com", PeerNumber: "", Body: "who?", Stored: time.Now()},
	})
	for _, want := range []sent{
		{from: phone + "@sms.example.com", text: "(an empty SMS)"},
		{from: "sms.example.com", text: "(no sender): who?"},
	} {
		if s := f.x.next(t, "text"); s.from != want.from || s.text != want.text {
			t.Fatalf("sent %+v, want from %s text %q", s, want.from, want.text)
		}
	}
}

// TestClaimsNotStarved checks that a steady stream of handed notices does
// not keep claimable ones — a message from a phone — waiting.
func TestClaimsNotStarved(t *testing.T) {
	f := setup(t, router.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	fed := make(chan struct{})
	defer func() {
		cancel()
		<-fed
	}()
	go func() {
		defer close(fed)
		// Receipts nobody asked to see: handed over, sent as nothing.
		// More than the loop can send, so some are always waiting.
		for id := int64(1 << 40); ctx.Err() == nil; {
			ns := make([]store.Notice, 300)
			for i := range ns {
				id++
				ns[i] = store.Notice{ID: id, Direction: store.Out, State: store.StateDelivered, UserJID: alice.String(), PeerNumber: phone}
			}
			f.r.HandNotices(ns)
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	in := &store.Inbound{Source: phone, Dest: aliceNum, RecipientJID: "alice@example.com", Body: "from the phone"}
	if err := f.st.AcceptInbound(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	f.r.Wake()
	if s := f.x.next(t, "text"); s.text != "from the phone" || s.to != "alice@example.com" {
		t.Fatalf("sent %+v", s)
	}
}

// TestAnswerShortCode: a short code that wrote to a user within
// Limits.ShortCodeReply may be answered: the SMS goes to the short code,
// addressed as it came (TON, NPI, SMSC), within the quotas and outside the
// region limit (a short code has no region). One that wrote to another
// user, never wrote, or wrote before the window, is refused with a text.
func TestAnswerShortCode(t *testing.T) {
	ctx := context.Background()
	var (
		mu      sync.Mutex
		refused []string
	)
	f := setup(t, router.Config{
		Limits:    router.Limits{AllowedRegions: []string{"CA"}, PerUserMinute: 2, ShortCodeReply: 24 * time.Hour},
		OnRefused: func(reason string) { mu.Lock(); refused = append(refused, reason); mu.Unlock() },
	})
	wrote := func(f *fixture, code, num, user string) {
		t.Helper()
		in := &store.Inbound{Source: code, Dest: num, RecipientJID: user, Body: "Reply YES to confirm", SourceTON: 3, SourceNPI: 0, SMSC: "b"}
		if err := f.st.AcceptInbound(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(f *fixture, id, code string) {
		t.Helper()
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(code), ID: id, Body: "YES"}); err != nil {
			t.Fatalf("answer %s: %v", id, err)
		}
	}
	wrote(f, "72345", aliceNum, "alice@example.com")
	wrote(f, "55555", bobNum, "bob@example.com")

	answer(f, "a1", "72345")
	msgs := f.queued(t)
	if len(msgs) != 1 || msgs[0].Dest != "72345" || msgs[0].SenderNumber != aliceNum || msgs[0].Body != "YES" ||
		msgs[0].DestTON != 3 || msgs[0].DestNPI != 0 || msgs[0].SMSC != "b" {
		t.Fatalf("answer queued as %+v; want to 72345, TON 3, NPI 0, SMSC b", msgs)
	}
	for _, code := range []string{"55555", "99999"} { // bob's short code; one that never wrote
		answer(f, "n"+code, code)
		s := f.x.next(t, "error")
		if s.id != "n"+code || s.condition != stanza.ServiceUnavailable ||
			!strings.Contains(s.text, code+" is a short code: it can only be answered within 1 day after it wrote to you") {
			t.Fatalf("answer to %s: %+v; want service-unavailable saying it did not write", code, s)
		}
	}
	// The quotas count answers like any SMS: the second passes, the third
	// is over alice's two a minute.
	answer(f, "a2", "72345")
	f.queued(t)
	answer(f, "a3", "72345")
	if s := f.x.next(t, "error"); s.id != "a3" || !strings.Contains(s.text, "last minute") {
		t.Fatalf("third answer in a minute: %+v; want the quota's refusal", s)
	}
	mu.Lock()
	if want := []string{"short_code", "short_code", "quota_user_minute"}; !slices.Equal(refused, want) {
		t.Errorf("refusals counted as %q, want %q", refused, want)
	}
	mu.Unlock()

	// A short code that wrote before the window may not be answered.
	f2 := setup(t, router.Config{Limits: router.Limits{ShortCodeReply: time.Millisecond}})
	wrote(f2, "72345", aliceNum, "alice@example.com")
	time.Sleep(20 * time.Millisecond) // the message is out of the window
	answer(f2, "late", "72345")
	if s := f2.x.next(t, "error"); s.id != "late" || s.condition != stanza.ServiceUnavailable || !strings.Contains(s.text, "it has not written to your number "+aliceNum) {
		t.Fatalf("answer after the window: %+v", s)
	}
}

// TestAnswersFromFormWrittenTo: a message written to another form of a
// number than the international one (here the national one, in the
// default region US) gets its receipt and its error from the JID written
// to, and the phone's messages after it come from that JID too, until the
// user writes to the international form again. A relay between users
// comes from the form its recipient last wrote the sender's number in,
// and its receipt from the form the sender wrote to.
func TestAnswersFromFormWrittenTo(t *testing.T) {
	f := setup(t, router.Config{})
	ctx := context.Background()
	const national = "2015550199"
	at := func(local string) string { return local + "@sms.example.com" }
	// send has alice's message id accepted and settled by a receipt with stat.
	send := func(to, id, stat string) {
		t.Helper()
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(to), ID: id, Body: "hi " + id, WantReceipt: true}); err != nil {
			t.Fatal(err)
		}
		msgs := f.queued(t)
		if len(msgs) != 1 || msgs[0].Dest != phone {
			t.Fatalf("queued %+v", msgs)
		}
		if _, err := f.st.PartSubmitted(ctx, msgs[0].ID, 1, "", []string{id}); err != nil {
			t.Fatal(err)
		}
		if r, err := f.st.Receipt(ctx, "", []string{id}, stat, ""); err != nil || !r.Final {
			t.Fatalf("Receipt = %+v, %v", r, err)
		}
		f.r.Wake()
	}
	reply := func(body string) sent {
		t.Helper()
		if err := f.r.Inbound(ctx, &store.Inbound{Source: phone, Dest: aliceNum, Body: body}); err != nil {
			t.Fatal(err)
		}
		return f.x.next(t, "text")
	}

	send(national, "n1", "DELIVRD")
	if s := f.x.next(t, "receipt"); s.from != at(national) || s.id != "n1" {
		t.Fatalf("receipt %+v, want from %s", s, at(national))
	}
	send(national, "n2", "UNDELIV")
	if s := f.x.next(t, "error"); s.from != at(national) || s.id != "n2" {
		t.Fatalf("error %+v, want from %s", s, at(national))
	}
	if s := reply("hello"); s.from != at(national) || s.text != "hello" {
		t.Fatalf("reply %+v, want from %s", s, at(national))
	}
	// Written to in the international form again: answers come from it.
	send(phone, "n3", "DELIVRD")
	if s := f.x.next(t, "receipt"); s.from != at(phone) || s.id != "n3" {
		t.Fatalf("receipt %+v, want from %s", s, at(phone))
	}
	if s := reply("again"); s.from != at(phone) {
		t.Fatalf("reply %+v, want from %s", s, at(phone))
	}

	// Bob writes to alice's number as 12015550100: alice's relay back to
	// him comes from that JID; his receipt to her from the form she
	// wrote to (the international one).
	if err := f.r.Outbound(ctx, router.Message{From: bob, To: numberJID("12015550100"), ID: "b1", Body: "hi alice", WantReceipt: true}); err != nil {
		t.Fatal(err)
	}
	if s := f.x.next(t, "relay"); s.from != at(bobNum) || s.to != "alice@example.com" {
		t.Fatalf("relay to alice %+v", s)
	}
	if !f.r.Receipt(ctx, receipt(alice, bobNum, "b1"), "b1", true) {
		t.Fatal("alice's receipt did not match")
	}
	if s := f.x.next(t, "receipt"); s.from != at("12015550100") || s.to != bob.String() {
		t.Fatalf("receipt to bob %+v, want from %s", s, at("12015550100"))
	}
	if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: "a1", Body: "hi bob"}); err != nil {
		t.Fatal(err)
	}
	if s := f.x.next(t, "relay"); s.from != at("12015550100") || s.to != "bob@example.com" {
		t.Fatalf("relay to bob %+v, want from %s", s, at("12015550100"))
	}

	// The notice that a relay went as SMS after all comes from the form
	// written to.
	f2 := setup(t, router.Config{FallbackAfter: 100 * time.Millisecond})
	if err := f2.r.Outbound(ctx, router.Message{From: alice, To: numberJID("12015550101"), ID: "f1", Body: "are you there"}); err != nil {
		t.Fatal(err)
	}
	f2.x.next(t, "relay")
	if n := f2.x.next(t, "text"); !strings.Contains(n.text, "sent as SMS") || n.from != at("12015550101") {
		t.Fatalf("fallback notice %+v, want from %s", n, at("12015550101"))
	}
}

// TestResentTakenOnce: a message sent again with its id and text (a client
// resending after a reconnection) is taken once: one SMS, one relay; the
// same id with other text, or to another number, is a new message; one
// refused is tried again when sent again.
func TestResentTakenOnce(t *testing.T) {
	f := setup(t, router.Config{Limits: router.Limits{BlockedPrefixes: []string{"+1900"}}})
	ctx := context.Background()
	send := func(id, to, body string) {
		t.Helper()
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(to), ID: id, Body: body, WantReceipt: true}); err != nil {
			t.Fatal(err)
		}
	}
	send("d1", phone, "resent msg")
	send("d1", phone, "resent msg")
	send("d1", phone, "other text")
	send("d1", "+12015550177", "resent msg")
	var got []string
	for len(got) < 3 {
		for _, m := range f.queued(t) {
			got = append(got, m.Dest+" "+m.Body)
		}
	}
	slices.Sort(got)
	if want := []string{"+12015550177 resent msg", phone + " other text", phone + " resent msg"}; !slices.Equal(got, want) {
		t.Errorf("queued %q, want %q", got, want)
	}
	// Over XMPP: relayed once.
	send("d2", bobNum, "to bob")
	send("d2", bobNum, "to bob")
	if s := f.x.next(t, "relay"); s.id != "d2" {
		t.Fatalf("relay %+v", s)
	}
	// Refused, then sent again: refused again, not taken as a resend.
	for range 2 {
		send("d3", "+19005550123", "premium")
		if s := f.x.next(t, "error"); s.id != "d3" || s.condition != stanza.PolicyViolation {
			t.Fatalf("error %+v", s)
		}
	}
	time.Sleep(200 * time.Millisecond)
	f.x.mu.Lock()
	relays := 0
	for _, s := range f.x.out {
		if s.kind == "relay" {
			relays++
		}
	}
	f.x.mu.Unlock()
	if relays != 0 {
		t.Errorf("one message sent twice relayed %d times more", relays)
	}
	if msgs, err := f.st.ClaimOutbound(ctx, "t", 100, time.Minute); err != nil || len(msgs) != 0 {
		t.Errorf("more queued after: %d, %v", len(msgs), err)
	}
}

// hungStore is a store whose AcceptOutbound waits for release, as a
// PostgreSQL that stopped answering.
type hungStore struct {
	*store.Store
	release chan struct{}
}

func (h *hungStore) AcceptOutbound(ctx context.Context, msgs []*store.Outbound) error {
	<-h.release
	return h.Store.AcceptOutbound(ctx, msgs)
}

// TestUnstored: the messages taken and not yet stored nor refused are
// counted, for serve to report those a shutdown that cannot wait loses.
func TestUnstored(t *testing.T) {
	st := storetest.SQLite(t)
	if _, err := st.Bind(context.Background(), aliceNum, "alice@example.com", "operator"); err != nil {
		t.Fatal(err)
	}
	h := &hungStore{Store: st, release: make(chan struct{})}
	r := router.New(router.Config{Component: comp, Domains: []string{"example.com"}, DefaultRegion: "US", Instance: "test",
		Logger: zerolog.New(zerolog.NewTestWriter(t))}, h)
	r.SetXMPP(newFakeXMPP())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	for i := range 3 {
		if err := r.Outbound(ctx, router.Message{From: alice, To: numberJID(phone), ID: fmt.Sprint("u", i), Body: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.Unstored(); n != 3 {
		t.Errorf("Unstored with the store hung = %d, want 3", n)
	}
	close(h.release)
	deadline := time.Now().Add(10 * time.Second)
	for r.Unstored() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := r.Unstored(); n != 0 {
		t.Errorf("Unstored once stored = %d", n)
	}
}

// TestDrainRefusesUnstored: at shutdown, before the stream closes, Drain
// waits for what users sent to be stored; when the store does not answer,
// RefuseUnstored answers each sender with an error, refuses what comes
// after, and leaves nothing counted as lost.
func TestDrainRefusesUnstored(t *testing.T) {
	st := storetest.SQLite(t)
	if _, err := st.Bind(context.Background(), aliceNum, "alice@example.com", "operator"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := func(s router.Store) (*router.Router, *fakeXMPP) {
		r := router.New(router.Config{Component: comp, Domains: []string{"example.com"}, DefaultRegion: "US", Instance: "test",
			Logger: zerolog.New(zerolog.NewTestWriter(t))}, s)
		x := newFakeXMPP()
		r.SetXMPP(x)
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		return r, x
	}
	var r *router.Router
	send := func(id string) error {
		return r.Outbound(ctx, router.Message{From: alice, To: numberJID(phone), ID: id, Body: "hi " + id})
	}

	// A store that answers: drained.
	r, _ = start(st)
	for i := range 3 {
		if err := send(fmt.Sprint("ok", i)); err != nil {
			t.Fatal(err)
		}
	}
	if !r.Drain(10 * time.Second) {
		t.Fatalf("Drain with a store that answers = false, %d unstored", r.Unstored())
	}
	if n := r.Unstored(); n != 0 {
		t.Fatalf("Unstored after Drain = %d", n)
	}

	// One that does not.
	h := &hungStore{Store: st, release: make(chan struct{})}
	r, x := start(h)
	for i := range 3 {
		if err := send(fmt.Sprint("u", i)); err != nil {
			t.Fatal(err)
		}
	}
	if r.Drain(200 * time.Millisecond) {
		t.Fatal("Drain with the store hung = true")
	}
	if n := r.RefuseUnstored(ctx); n != 3 {
		t.Fatalf("RefuseUnstored = %d, want 3", n)
	}
	ids := map[string]bool{}
	for range 3 {
		e := x.next(t, "error")
		if e.condition != stanza.InternalServerError || !strings.Contains(e.text, "could not store the message in time") || e.to != alice.String() {
			t.Errorf("error = %+v", e)
		}
		ids[e.id] = true
	}
	if !ids["u0"] || !ids["u1"] || !ids["u2"] {
		t.Errorf("errors for %v, want u0, u1, u2", ids)
	}
	if n := r.Unstored(); n != 0 {
		t.Errorf("Unstored after RefuseUnstored = %d", n)
	}
	// What comes after is refused at once, and not taken.
	err := send("late")
	var se stanza.Error
	if !errors.As(err, &se) || se.Condition != stanza.ResourceConstraint {
		t.Fatalf("a message after RefuseUnstored: %v", err)
	}
	if n := r.Unstored(); n != 0 {
		t.Errorf("Unstored after a refused message = %d", n)
	}
	// The store answering at last: what it stored of them is withdrawn
	// (failed, not queued to send), the rest not stored, and none is
	// answered twice.
	close(h.release)
	var counts map[string]int
	deadline := time.Now().Add(10 * time.Second)
	for counts["out/failed"] == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		var err error
		if counts, err = st.Counts(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if counts["out/failed"] == 0 || counts["out/queued"] != 3 || counts["out/failed"]+counts["out/queued"] > 6 {
		t.Errorf("messages by state = %v, want the first 3 queued, and failed those of the 3 refused that the hung call stored", counts)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.out {
		if s.kind == "error" {
			t.Errorf("answered twice: %+v", s)
		}
	}
}

// TestRelayLimits: messages to a registered number (relayed over XMPP)
// are bounded in length, and in number per user a minute
// (Limits.RelaysPerUserMinute); each refusal is an error saying which.
func TestRelayLimits(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	counted := map[string]int{} // route/outcome, and reason
	f := setup(t, router.Config{FallbackAfter: -1, Limits: router.Limits{RelaysPerUserMinute: 3},
		OnMessage: func(_, route, outcome string) { mu.Lock(); counted[route+"/"+outcome]++; mu.Unlock() },
		OnRefused: func(reason string) { mu.Lock(); counted[reason]++; mu.Unlock() }})
	send := func(id, body string) {
		t.Helper()
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(bobNum), ID: id, Body: body,
			Payload: []byte("<body>" + body + "</body>")}); err != nil {
			t.Fatal(err)
		}
	}
	send("long", strings.Repeat("y", 10_001))
	if e := f.x.next(t, "error"); e.id != "long" || e.condition != stanza.PolicyViolation || !strings.Contains(e.text, "at most 10000 characters") {
		t.Fatalf("a 10,001-character relay: %+v", e)
	}
	send("big", "hi<x xmlns='urn:example'>"+strings.Repeat("z", 64<<10)+"</x>")
	if e := f.x.next(t, "error"); e.id != "big" || e.condition != stanza.PolicyViolation {
		t.Fatalf("a relay of 64 KiB more than its text: %+v", e)
	}
	for i := range 4 {
		send(fmt.Sprint("r", i), "hi "+fmt.Sprint(i))
	}
	for i := range 3 {
		if s := f.x.next(t, "relay"); s.id != fmt.Sprint("r", i) || s.to != "bob@example.com" {
			t.Fatalf("relay %d: %+v", i, s)
		}
	}
	if e := f.x.next(t, "error"); e.id != "r3" || e.condition != stanza.PolicyViolation || !strings.Contains(e.text, "at most 3 a minute") {
		t.Fatalf("the fourth relay within a minute: %+v", e)
	}
	// Another user's are counted apart.
	if err := f.r.Outbound(ctx, router.Message{From: bob, To: numberJID(aliceNum), ID: "b1", Body: "hey", Payload: []byte("<body>hey</body>")}); err != nil {
		t.Fatal(err)
	}
	if s := f.x.next(t, "relay"); s.id != "b1" {
		t.Fatalf("bob's relay: %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if counted["xmpp/refused"] != 3 || counted["relay_limit"] != 3 || counted["sms/refused"] != 0 {
		t.Errorf("counted %v; want the three refusals as relays (route xmpp, reason relay_limit)", counted)
	}
}

// TestReleaseHandedAtStop: notices handed to the router and not sent (the
// XMPP side down) are given back when it stops, for the next instance to
// claim at once instead of after their lease.
func TestReleaseHandedAtStop(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	if _, err := st.Bind(ctx, aliceNum, "alice@example.com", "operator"); err != nil {
		t.Fatal(err)
	}
	r := router.New(router.Config{Component: comp, Domains: []string{"example.com"}, DefaultRegion: "US", Instance: "test",
		Logger: zerolog.New(zerolog.NewTestWriter(t))}, st)
	x := newFakeXMPP()
	x.down.Store(true)
	r.SetXMPP(x)
	st.HandNotices("test", router.NoticeLease, r.HandNotices)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- r.Run(runCtx) }()
	if err := st.AcceptInbound(ctx, &store.Inbound{Source: phone, Dest: aliceNum, Body: "while down", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if ns, err := st.ClaimNotices(ctx, "next", 10, time.Minute); err != nil || len(ns) != 0 {
		t.Fatalf("claimed while handed: %d, %v", len(ns), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ns, err := st.ClaimNotices(ctx, "next", 10, time.Minute)
	if err != nil || len(ns) != 1 || ns[0].Body != "while down" {
		t.Fatalf("claimed after the router stopped: %+v, %v; want the handed notice", ns, err)
	}
}

// TestResentAfterItsOutcome: a message sent again after its outcome went
// out (the client did not see it) gets that outcome again; one sent again
// while still on its way waits for its outcome, which answers both.
func TestResentAfterItsOutcome(t *testing.T) {
	f := setup(t, router.Config{})
	ctx := context.Background()
	send := func() {
		t.Helper()
		if err := f.r.Outbound(ctx, router.Message{From: alice, To: numberJID(phone), ID: "o1", Body: "did it go?", WantReceipt: true}); err != nil {
			t.Fatal(err)
		}
	}
	send()
	msgs := f.queued(t)
	if len(msgs) != 1 {
		t.Fatalf("queued %d", len(msgs))
	}
	m := msgs[0]
	send() // on its way: nothing yet
	if _, err := f.st.PartSubmitted(ctx, m.ID, 1, "", []string{"smsc-o1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Receipt(ctx, "", []string{"smsc-o1"}, "DELIVRD", "000"); err != nil {
		t.Fatal(err)
	}
	f.r.Wake()
	if s := f.x.next(t, "receipt"); s.id != "o1" {
		t.Fatalf("receipt %+v", s)
	}
	// After its receipt went out (and its notice is done: until then the
	// receipt is still on its way, and answers both).
	var again sent
	for try := 0; again.kind == "" && try < 20; try++ {
		send()
		deadline := time.After(500 * time.Millisecond)
	wait:
		for {
			f.x.mu.Lock()
			for i, s := range f.x.out {
				if s.kind == "receipt" {
					again = s
					f.x.out = slices.Delete(f.x.out, i, i+1)
					break
				}
			}
			f.x.mu.Unlock()
			if again.kind != "" {
				break
			}
			select {
			case <-f.x.notify:
			case <-deadline:
				break wait
			}
		}
	}
	if again.id != "o1" || again.to != alice.String() {
		t.Fatalf("the receipt again: %+v", again)
	}
	time.Sleep(200 * time.Millisecond)
	f.x.mu.Lock()
	defer f.x.mu.Unlock()
	for _, s := range f.x.out {
		if s.kind == "receipt" {
			t.Errorf("a receipt more: %+v", s)
		}
	}
}

// TestFailureToClientGone: where the sender's presence is not seen (no
// presence privilege), the client that sent a message which failed is
// asked whether it is there (a server drops an error to a gone client):
// gone (or serving no disco), the user is told in a chat message to the
// bare JID as well as by the error; there, or no answer, by the error as
// before. One question per client and batch; a client whose presence is
// seen is not asked.
func TestFailureToClientGone(t *testing.T) {
	f := setup(t, router.Config{})
	gone, there, silent := alice, jid.MustParse("alice@example.com/laptop"), jid.MustParse("alice@example.com/old")
	f.x.mu.Lock()
	f.x.reach = map[string]bool{gone.String(): false, there.String(): true}
	f.x.mu.Unlock()
	notice := func(id int64, user jid.JID) store.Notice {
		return store.Notice{ID: id, Direction: store.Out, Route: store.RouteSMS, State: store.StateFailed,
			UserJID: user.String(), PeerNumber: phone, StanzaID: fmt.Sprint("g", id), Body: "text", Error: "the carrier refused it"}
	}
	f.r.HandNotices([]store.Notice{notice(1, gone), notice(2, gone), notice(3, there), notice(4, silent)})
	for range 2 {
		if s := f.x.next(t, "text"); s.to != "alice@example.com" || !strings.Contains(s.text, "was not delivered") {
			t.Fatalf("to the gone client: %+v", s)
		}
	}
	var errs []string
	for range 4 {
		errs = append(errs, f.x.next(t, "error").id)
	}
	slices.Sort(errs)
	if want := []string{"g1", "g2", "g3", "g4"}; !slices.Equal(errs, want) {
		t.Errorf("errors for %v, want %v", errs, want)
	}
	f.x.mu.Lock()
	probed := slices.Clone(f.x.probed)
	f.x.mu.Unlock()
	slices.Sort(probed)
	if want := []string{there.String(), silent.String(), gone.String()}; !slices.Equal(probed, want) {
		t.Errorf("asked %v, want each client once: %v", probed, want)
	}
	// Seen through the privilege: not asked.
	f.x.setPresent(bob.String(), true)
	f.r.HandNotices([]store.Notice{notice(5, bob)})
	if s := f.x.next(t, "error"); s.id != "g5" {
		t.Fatalf("error %+v", s)
	}
	f.x.mu.Lock()
	defer f.x.mu.Unlock()
	if len(f.x.probed) != 3 {
		t.Errorf("asked %v; bob's presence is seen", f.x.probed)
	}
}
