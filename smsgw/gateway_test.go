package smsgw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
	"switchboard/smsgw/coding"
	"switchboard/smsgw/smpp"
	"switchboard/store"
	"switchboard/store/storetest"
)

type bind struct{ up bool }

func (b *bind) Submit(context.Context, *smpp.Submit) (string, error) { return "", nil }
func (b *bind) Bound() bool                                          { return b.up }

func TestPick(t *testing.T) {
	g := New(Config{}, nil, nil)
	a1, a2 := &bind{up: true}, &bind{up: true}
	uk, any := &bind{up: true}, &bind{up: true}
	g.AddLink(Link{SMSC: "a", Prefixes: []string{"+1201"}, Client: a1})
	g.AddLink(Link{SMSC: "a", Prefixes: []string{"+1201"}, Client: a2})
	g.AddLink(Link{SMSC: "uk", Prefixes: []string{"+44", "+1"}, Client: uk})
	g.AddLink(Link{SMSC: "any", Client: any})
	count := map[Submitter]int{}
	for range 4 {
		count[g.pick("+12015550199").Client]++
	}
	if count[a1] != 2 || count[a2] != 2 {
		t.Fatalf("the two binds of the longest match did not take turns: %v", count)
	}
	if l := g.pick("+442079460000"); l.Client != uk {
		t.Fatalf("+44 went to %s", l.SMSC)
	}
	if l := g.pick("+4930901820"); l.Client != any {
		t.Fatalf("+49 went to %s", l.SMSC)
	}
	a1.up, a2.up = false, false
	if l := g.pick("+12015550199"); l.Client != uk {
		t.Fatalf("failover went to %s", l.SMSC)
	}
	uk.up, any.up = false, false
	if l := g.pick("+12015550199"); l != nil {
		t.Fatalf("picked %s with every bind down", l.SMSC)
	}
}

func TestAssemble(t *testing.T) {
	k := store.FragmentKey{Total: 4}
	frag := func(seq int, dc byte, b ...byte) store.Fragment {
		return store.Fragment{FragmentKey: k, Seq: seq, DataCoding: dc, Payload: b}
	}
	for _, tc := range []struct {
		name  string
		frags []store.Fragment
		want  string
	}{
		{"complete", []store.Fragment{frag(1, 0, 'a'), frag(2, 0, 'b'), frag(3, 0, 'c'), frag(4, 0, 'd')}, "abcd"},
		{"gaps marked", []store.Fragment{frag(1, 0, 'a'), frag(3, 0, 'c')}, "a[…]c[…]"},
		{"first missing", []store.Fragment{frag(2, 0, 'b'), frag(3, 0, 'c'), frag(4, 0, 'd')}, "[…]bcd"},
		// A UCS-2 surrogate pair split across two parts survives.
		{"surrogate across parts", []store.Fragment{frag(1, 8, 0xD8, 0x3D), frag(2, 8, 0xDE, 0x00), frag(3, 0, 'x'), frag(4, 0, 'y')}, "😀xy"},
	} {
		if got := assemble(tc.frags); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestAddresses(t *testing.T) {
	for in, want := range map[string]smpp.Address{
		"+12015550100": {TON: 1, NPI: 1, Addr: "12015550100"},
		"Switchboard":  {TON: 5, NPI: 0, Addr: "Switchboard"},
	} {
		if got, ok := sourceAddr(in); !ok || got != want {
			t.Errorf("sourceAddr(%q) = %+v, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "TwelveLetter", "Ünïcödé€€€", "+12a"} {
		if _, ok := sourceAddr(in); ok {
			t.Errorf("sourceAddr(%q) accepted", in)
		}
	}
	for _, tc := range []struct {
		a      smpp.Address
		region string
		want   string
	}{
		{smpp.Address{TON: 1, NPI: 1, Addr: "12015550199"}, "", "+12015550199"},
		{smpp.Address{TON: 5, NPI: 0, Addr: "BANK"}, "US", "BANK"},
		{smpp.Address{TON: 3, NPI: 0, Addr: "72345"}, "US", "72345"},
		// National numbers, read in the default region when there is one.
		{smpp.Address{TON: 2, NPI: 1, Addr: "2015550199"}, "US", "+12015550199"},
		{smpp.Address{TON: 2, NPI: 1, Addr: "2015550199"}, "", "2015550199"},
		{smpp.Address{TON: 2, NPI: 1, Addr: "02071234567"}, "GB", "+442071234567"},
		// Unknown: international when valid so, else national.
		{smpp.Address{TON: 0, NPI: 1, Addr: "12015550199"}, "US", "+12015550199"},
		{smpp.Address{TON: 0, NPI: 1, Addr: "2015550199"}, "US", "+12015550199"},
		{smpp.Address{TON: 0, NPI: 1, Addr: "447700900123"}, "US", "+447700900123"},
		{smpp.Address{TON: 0, NPI: 1, Addr: "2015550199"}, "", "+2015550199"},
		// The international prefix left in: 00 anywhere, the region's own
		// (011 in North America) for TON 0.
		{smpp.Address{TON: 1, NPI: 1, Addr: "00447700900123"}, "US", "+447700900123"},
		{smpp.Address{TON: 0, NPI: 1, Addr: "0012015550155"}, "US", "+12015550155"},
		{smpp.Address{TON: 0, NPI: 1, Addr: "011442071234567"}, "US", "+442071234567"},
		// A leading 0 left is no country code: no number, kept as given.
		{smpp.Address{TON: 1, NPI: 1, Addr: "07700900123"}, "GB", "07700900123"},
	} {
		if got := phoneAddr(tc.a, tc.region); got != tc.want {
			t.Errorf("phoneAddr(%+v, %q) = %q, want %q", tc.a, tc.region, got, tc.want)
		}
	}
	if ref, total, seq, ok, bad := sar(map[uint16][]byte{tlvSarMsgRefNum: {0x01, 0x02}, tlvSarTotalSegments: {3}, tlvSarSegmentSeqnum: {2}}); !ok || bad != smpp.StatusOK || ref != 0x0102 || total != 3 || seq != 2 {
		t.Errorf("sar = %d %d %d %v %v", ref, total, seq, ok, bad)
	}
	if _, _, _, ok, bad := sar(nil); ok || bad != smpp.StatusOK {
		t.Errorf("sar without SAR TLVs = %v, %v; want none, no fault", ok, bad)
	}
	// Some there but not all, or of the wrong length: refused as such,
	// not read as a whole message (a part alone would reach the user).
	if _, _, _, ok, bad := sar(map[uint16][]byte{tlvSarMsgRefNum: {1}}); ok || bad != smpp.StatusMissingOptParam {
		t.Errorf("sar without all three TLVs = %v, %v; want ESME_RMISSINGOPTPARAM", ok, bad)
	}
	if _, _, _, ok, bad := sar(map[uint16][]byte{tlvSarMsgRefNum: {1, 2, 3}, tlvSarTotalSegments: {3}, tlvSarSegmentSeqnum: {2}}); ok || bad != smpp.StatusInvParLen {
		t.Errorf("sar with a 3-octet reference = %v, %v; want ESME_RINVPARLEN", ok, bad)
	}
}

// flipBind is a bind whose state a test changes while the gateway runs.
type flipBind struct{ up atomic.Bool }

func (b *flipBind) Submit(context.Context, *smpp.Submit) (string, error) { return "", nil }
func (b *flipBind) Bound() bool                                          { return b.up.Load() }

// handoffGateway is a gateway with three submission slots on a real store,
// and one bind that is up.
func handoffGateway(t *testing.T) (*Gateway, *store.Store, *flipBind) {
	t.Helper()
	st := storetest.SQLite(t)
	g := New(Config{Instance: "i1", Concurrency: 3}, st, nil)
	b := new(flipBind)
	b.up.Store(true)
	g.AddLink(Link{Client: b})
	return g, st, b
}

// TestReserve checks the hand-off's slots: none before Run or without a
// bind, no more than the free ones, and unused ones given back.
func TestReserve(t *testing.T) {
	g, _, b := handoffGateway(t)
	if _, _, n := g.Reserve(2); n != 0 {
		t.Fatalf("Reserve before Run = %d", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, 0) }()
	defer func() {
		cancel()
		<-done
	}()
	_, _, n := reserveRunning(g, 2)
	owner, until, m := g.Reserve(5)
	if n != 2 || m != 1 || owner != "i1" || time.Until(until) < claimLease/2 {
		t.Fatalf("Reserve = %d then %d (%s until %v), want 2 then the 1 left", n, m, owner, until)
	}
	g.Take(nil, n+m) // stored nothing: all given back
	if _, _, n := g.Reserve(5); n != 3 {
		t.Fatalf("Reserve after giving back = %d, want 3", n)
	}
	g.Take(nil, 3)
	b.up.Store(false)
	if _, _, n := g.Reserve(1); n != 0 {
		t.Fatalf("Reserve with no bind up = %d", n)
	}
}

// reserveRunning reserves up to max slots once g's Run has started (until
// then Reserve gives none).
func reserveRunning(g *Gateway, max int) (owner string, until time.Time, n int) {
	for n == 0 {
		time.Sleep(time.Millisecond)
		owner, until, n = g.Reserve(max)
	}
	return owner, until, n
}

// TestTakeAfterRun checks that messages reserved before Run ended and
// stored after are given back to the queue at once, not left to their lease.
func TestTakeAfterRun(t *testing.T) {
	ctx := context.Background()
	g, st, _ := handoffGateway(t)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx, 0) }()
	owner, until, n := reserveRunning(g, 1)
	cancel()
	<-done
	m := &store.Outbound{SenderJID: "a@example.com/x", SenderNumber: "+12015550100", Dest: "+12015550199", Body: "hi", Parts: 1,
		LeaseOwner: owner, LeaseUntil: until}
	if err := st.AcceptOutbound(ctx, []*store.Outbound{m}); err != nil {
		t.Fatal(err)
	}
	g.Take([]*store.Outbound{m}, n)
	if state, _, err := st.MessageState(ctx, m.ID); err != nil || state != store.StateQueued {
		t.Fatalf("state after Take without Run = %q, %v; want queued", state, err)
	}
	if len(g.sem) != 0 {
		t.Fatalf("%d slots still held", len(g.sem))
	}
}

// jitterBind records what it is sent after a random pause of up to 2 ms,
// as a bind whose writes wait on others' would.
type jitterBind struct{ recBind }

func (b *jitterBind) Submit(ctx context.Context, s *smpp.Submit) (string, error) {
	time.Sleep(time.Duration(rand.N(2000)) * time.Microsecond)
	return b.recBind.Submit(ctx, s)
}

// TestSubmitOrder: a user's messages to one number reach the SMSC in the
// order they were taken, whether handed off or claimed, while messages to
// other numbers go beside them.
func TestSubmitOrder(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	g := New(Config{Instance: "i1", Concurrency: 16}, st, nil) // 16 handed off, 8 claimed
	b := &jitterBind{recBind{alphabet: coding.GSM}}
	g.AddLink(Link{Client: b})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx, 0) }()
	defer func() {
		cancel()
		<-done
	}()
	dests := []string{"+12015550199", "+12015550188"}
	const each = 12
	owner, until, n := reserveRunning(g, 2*each)
	var msgs []*store.Outbound
	for i := range each {
		for _, d := range dests {
			m := &store.Outbound{SenderJID: "a@example.com/x", SenderNumber: "+12015550100", Dest: d, Body: fmt.Sprintf("message %02d", i), Parts: 1}
			if len(msgs) < n {
				m.LeaseOwner, m.LeaseUntil = owner, until
			}
			msgs = append(msgs, m)
		}
	}
	if err := st.AcceptOutbound(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	g.Take(msgs[:n], n) // the rest are queued: the gateway claims them
	g.Wake()
	deadline := time.Now().Add(10 * time.Second)
	for len(b.dests()) < len(msgs) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := map[string][]string{}
	for _, s := range b.take() {
		got[s.Dest.Addr] = append(got[s.Dest.Addr], string(s.ShortMessage))
	}
	for _, d := range dests {
		texts := got[strings.TrimPrefix(d, "+")]
		if len(texts) != each || !slices.IsSorted(texts) {
			t.Errorf("to %s, %d of %d submitted, in the order %q", d, len(texts), each, texts)
		}
	}
}

// nobody is an inbox without a recipient for any number.
type nobody struct{}

var errNobody = errors.New("no such number")

func (nobody) Inbound(context.Context, *store.Inbound) error {
	return fmt.Errorf("inbound: %w", errNobody)
}

// TestSweepDropsPartsForNobody: the parts of an incomplete message to a
// number nobody has any more are deleted by the sweep, not read again at
// every sweep after.
func TestSweepDropsPartsForNobody(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	g := New(Config{Instance: "i1", NoRecipient: errNobody, Reassembly: time.Millisecond}, st, nobody{})
	key := store.FragmentKey{Source: "+12015550199", Dest: "+12015550100", Ref: 3, Total: 2}
	if _, err := st.AddFragment(ctx, store.Fragment{FragmentKey: key, Seq: 1, Payload: []byte("half")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // past the reassembly time
	g.sweepFragments(ctx)
	if groups, err := st.StaleFragments(ctx, time.Now().Add(time.Hour)); err != nil || len(groups) != 0 {
		t.Fatalf("parts left after the sweep: %v, %v", groups, err)
	}
}

// TestPartForNobody: a part of a message to a number nobody has is
// answered ESME_RINVDSTADR, as a whole message is, and not kept; the
// number's owner is looked up with the part's write (store.Fragment.Owned).
func TestPartForNobody(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	g := New(Config{Instance: "i1", Reassembly: time.Hour}, st, aliceInbox(t, st))
	addr := func(n string) smpp.Address { return smpp.Address{TON: 1, NPI: 1, Addr: n} }
	part := func(dest string) *smpp.Deliver {
		return &smpp.Deliver{Command: 0x05, Source: addr("12015550199"), Dest: addr(dest), ESMClass: coding.ESMClassUDHI,
			ShortMessage: []byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, 'h', 'i'}, Session: 1}
	}
	if s := g.Handler("").HandleDeliver(ctx, part("12015550111")); s != smpp.StatusInvDstAdr {
		t.Errorf("part to a number nobody has answered %v, want %v", s, smpp.StatusInvDstAdr)
	}
	if s := g.Handler("").HandleDeliver(ctx, part("12015550100")); s != smpp.StatusOK {
		t.Errorf("part to alice's number answered %v", s)
	}
	groups, err := st.StaleFragments(ctx, time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0][0].Dest != "+12015550100" {
		t.Errorf("parts kept: %+v; want alice's only", groups)
	}
}

// TestMalformedPartsRefused: a part whose number is out of range, or whose
// concatenation header or sar_ parameters are malformed, and a message to
// an address that is no number, are refused with the status that names
// the fault, and counted as refused messages.
func TestMalformedPartsRefused(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	var refused int
	g := New(Config{Instance: "i1", Reassembly: time.Hour, OnMessage: func(dir, route, outcome string) {
		if dir == store.In && outcome == "refused" {
			refused++
		}
	}}, st, aliceInbox(t, st))
	deliver := func(dest string, esm byte, sm []byte, tlvs map[uint16][]byte) *smpp.Deliver {
		return &smpp.Deliver{Command: 0x05, Source: smpp.Address{TON: 1, NPI: 1, Addr: "12015550199"},
			Dest: smpp.Address{TON: 1, NPI: 1, Addr: dest}, ESMClass: esm, ShortMessage: sm, TLVs: tlvs, Session: 1}
	}
	sarTLVs := func(seq byte) map[uint16][]byte {
		return map[uint16][]byte{tlvSarMsgRefNum: {7}, tlvSarTotalSegments: {2}, tlvSarSegmentSeqnum: {seq}}
	}
	for _, tc := range []struct {
		name string
		d    *smpp.Deliver
		want smpp.Status
	}{
		{"SAR part 0", deliver("12015550100", 0, []byte("hi"), sarTLVs(0)), smpp.StatusInvOptParamVal},
		{"SAR part 3 of 2", deliver("12015550100", 0, []byte("hi"), sarTLVs(3)), smpp.StatusInvOptParamVal},
		{"SAR without its count", deliver("12015550100", 0, []byte("hi"), map[uint16][]byte{tlvSarMsgRefNum: {7}, tlvSarSegmentSeqnum: {1}}), smpp.StatusMissingOptParam},
		{"UDH part 0", deliver("12015550100", coding.ESMClassUDHI, []byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x00, 'h', 'i'}, nil), smpp.StatusInvEsmClass},
		{"to no number", deliver("ALICE", 0, []byte("hi"), nil), smpp.StatusInvDstAdr},
	} {
		before := refused
		if s := g.Handler("").HandleDeliver(ctx, tc.d); s != tc.want {
			t.Errorf("%s: answered %v, want %v", tc.name, s, tc.want)
		}
		if refused != before+1 {
			t.Errorf("%s: counted %d refused, want 1", tc.name, refused-before)
		}
	}
}

// TestReplacedCharactersLogged: a message from a phone whose octets its
// coding does not define is delivered with U+FFFD in their place, and the
// operator is told.
func TestReplacedCharactersLogged(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	logs := testenv.NewLogs(t)
	g := New(Config{Instance: "i1", Reassembly: time.Hour, Logger: zerolog.New(logs)}, st, aliceInbox(t, st))
	d := &smpp.Deliver{Command: 0x05, Source: smpp.Address{TON: 1, NPI: 1, Addr: "12015550199"},
		Dest: smpp.Address{TON: 1, NPI: 1, Addr: "12015550100"}, ShortMessage: []byte{'H', 0xE9, 0xFF, 0x80}, Session: 1}
	if s := g.Handler("").HandleDeliver(ctx, d); s != smpp.StatusOK {
		t.Fatalf("answered %v", s)
	}
	line := logs.Next("message from a phone with octets its coding does not define: delivered with U+FFFD in their place")
	if line["level"] != "warn" || line["replaced"] != float64(3) {
		t.Errorf("logged %v; want a warning counting 3 replaced", line)
	}
	ns, err := st.ClaimNotices(ctx, "test", 10, time.Minute)
	if err != nil || len(ns) != 1 || !strings.HasPrefix(ns[0].Body, "H\uFFFD") {
		t.Errorf("delivered %+v, %v; want the text with U+FFFD", ns, err)
	}
}

// TestNationalLanguageParts: text from phones under national language
// tables (UDH IE 0x25 locking shift, 0x24 single shift, TS 23.038 annex A)
// reaches the user as written. Each part is read with the tables its own
// UDH names, though it is stored until the others come (the second part of
// a Turkish message comes first), and a part of a message that never came
// whole keeps them for the sweep. A language without a table is read with
// the default alphabet and delivered, with a warning.
func TestNationalLanguageParts(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	logs := testenv.NewLogs(t)
	g := New(Config{Instance: "i1", Reassembly: time.Millisecond, Logger: zerolog.New(logs)}, st, aliceInbox(t, st))
	const unknown = "message from a phone in a national language without a table: read with the default GSM alphabet"
	mo := func(sm ...byte) *smpp.Deliver {
		return &smpp.Deliver{Command: 0x05, Source: smpp.Address{TON: 1, NPI: 1, Addr: "12015550199"},
			Dest: smpp.Address{TON: 1, NPI: 1, Addr: "12015550100"}, ESMClass: coding.ESMClassUDHI, ShortMessage: sm, Session: 1}
	}
	cat := func(udh []byte, text string) []byte { return append(udh, text...) }
	for i, d := range []*smpp.Deliver{
		// "Günaydın, Şişli'de buluşalım.": part 2 (Turkish locking and
		// single shift) before part 1 (locking shift).
		mo(cat([]byte{0x0B, 0x00, 0x03, 0x2A, 0x02, 0x02, 0x25, 0x01, 0x01, 0x24, 0x01, 0x01}, "\x1b\x53i\x1dli'de bulu\x1dal\x07m.")...),
		mo(cat([]byte{0x08, 0x00, 0x03, 0x2A, 0x02, 0x01, 0x25, 0x01, 0x01}, "G\x7enayd\x07n, ")...),
		// Parts with and without a Turkish locking shift.
		mo(cat([]byte{0x08, 0x00, 0x03, 0x2B, 0x02, 0x01, 0x25, 0x01, 0x01}, "A\x07 ")...),
		mo(cat([]byte{0x05, 0x00, 0x03, 0x2B, 0x02, 0x02}, "A\x07")...),
		// A language without a table.
		mo(cat([]byte{0x03, 0x25, 0x01, 0x0E}, "A\x07 B")...),
		// The first of two parts, the second never coming.
		mo(cat([]byte{0x08, 0x00, 0x03, 0x2C, 0x02, 0x01, 0x25, 0x01, 0x01}, "\x60ok ")...),
	} {
		if s := g.Handler("").HandleDeliver(ctx, d); s != smpp.StatusOK {
			t.Fatalf("deliver_sm %d answered %v", i, s)
		}
	}
	line := logs.Next(unknown)
	if line["level"] != "warn" || !strings.Contains(fmt.Sprint(line["error"]), "language 14 (locking shift)") {
		t.Errorf("logged %v; want a warning naming language 14", line)
	}
	time.Sleep(10 * time.Millisecond) // past the reassembly time
	g.sweepFragments(ctx)
	if n := logs.Count(unknown); n != 1 {
		t.Errorf("warned %d times of a language without a table, want once", n)
	}
	want := []string{"Aì B", "Aı Aì", "Günaydın, Şişli'de buluşalım.", "çok […]"}
	if bodies := claimedBodies(t, st); !slices.Equal(bodies, want) {
		t.Errorf("messages for the user: %q, want %q", bodies, want)
	}
}

// TestReusedReference: two messages from one phone with one concatenation
// reference, their parts interleaved, each part's place taken by the
// other's: no text is lost (the part that found its place taken had
// replaced the stored one), the message it found is delivered as it
// stands, and every part is acknowledged.
func TestReusedReference(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	g := New(Config{Instance: "i1", Reassembly: time.Millisecond}, st, aliceInbox(t, st))
	texts := []string{"Meet me at the ", "Call the bank ", "station at 5pm.", "about the card."}
	for i, text := range texts {
		d := &smpp.Deliver{Command: 0x05, Source: smpp.Address{TON: 1, NPI: 1, Addr: "12015550199"},
			Dest: smpp.Address{TON: 1, NPI: 1, Addr: "12015550100"}, ESMClass: coding.ESMClassUDHI,
			ShortMessage: append([]byte{0x05, 0x00, 0x03, 0x2A, 0x02, byte(1 + i/2)}, text...), Session: 1}
		if s := g.Handler("").HandleDeliver(ctx, d); s != smpp.StatusOK {
			t.Fatalf("part %q answered %v", text, s)
		}
	}
	time.Sleep(10 * time.Millisecond) // past the reassembly time
	g.sweepFragments(ctx)
	ns, err := st.ClaimNotices(ctx, "test", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var all string
	for _, n := range ns {
		all += n.Body + "|"
	}
	for _, text := range texts {
		if !strings.Contains(all, text) {
			t.Errorf("%q lost: alice got %q", text, all)
		}
	}
	if groups, err := st.StaleFragments(ctx, time.Now().Add(time.Hour)); err != nil || len(groups) != 0 {
		t.Errorf("parts left: %v, %v", groups, err)
	}
}

// storeInbox stores messages from phones for alice, as the router does.
type storeInbox struct{ st *store.Store }

// aliceInbox binds +12015550100 to alice in st, where the store looks for
// the owner of a part's number, and returns a storeInbox on st.
func aliceInbox(t *testing.T, st *store.Store) storeInbox {
	t.Helper()
	if _, err := st.Bind(context.Background(), "+12015550100", "alice@example.com", "operator"); err != nil {
		t.Fatal(err)
	}
	return storeInbox{st}
}

func (i storeInbox) Inbound(ctx context.Context, in *store.Inbound) error {
	in.RecipientJID = "alice@example.com"
	return i.st.AcceptInbound(ctx, in)
}

// TestResendsAfterANewBind: what the SMSC sends again on a new bind, never
// having got the responses (a whole message, a part of a reassembled one),
// is acknowledged and reaches the user once. The same text again while
// its first bind is still up, after a bind whose responses the SMSC read,
// or first carried by another instance's bind, is a person writing it
// twice.
func TestResendsAfterANewBind(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	// Binds 1 and 2 were lost with their responses unread; bind 8 after
	// the SMSC read those of its first stretch; the others are up, or
	// were lost with every response read.
	unread := func(n, stretch uint64) bool { return n == 1 || n == 2 || n == 8 && stretch >= 1 }
	g := New(Config{Instance: "i1", Reassembly: time.Hour, Unread: unread}, st, aliceInbox(t, st))
	addr := func(n string) smpp.Address { return smpp.Address{TON: 1, NPI: 1, Addr: n} }
	part := func(session uint64, seq byte, text string) *smpp.Deliver {
		return &smpp.Deliver{Command: 0x05, Source: addr("12015550199"), Dest: addr("12015550100"), ESMClass: coding.ESMClassUDHI,
			ShortMessage: append([]byte{0x05, 0x00, 0x03, 0x2A, 0x02, seq}, text...), Session: session}
	}
	text := func(session uint64, s string) *smpp.Deliver {
		return &smpp.Deliver{Command: 0x05, Source: addr("12015550199"), Dest: addr("12015550100"), ShortMessage: []byte(s), Session: session}
	}
	inStretch := func(d *smpp.Deliver, stretch uint64) *smpp.Deliver { d.Stretch = stretch; return d }
	for i, d := range []*smpp.Deliver{
		part(1, 1, "hello "), part(1, 2, "world"), text(1, "ping"), // binds 1 and 2: responses unread
		part(2, 2, "world"), text(2, "ping"), // resends
		text(3, "ok"), text(4, "ok"), // bind 3 is up: twice
		text(6, "yes"), text(7, "yes"), // bind 6's responses were read: twice
		text(8, "maybe"), inStretch(text(8, "no"), 1), // read, and unread
		text(9, "maybe"), text(9, "no"), // the first twice, the second a resend
	} {
		if st := g.HandleDeliver(ctx, d); st != smpp.StatusOK {
			t.Fatalf("deliver_sm %d answered %v", i, st)
		}
	}
	// Another instance's bind counts as up.
	in := &store.Inbound{Source: "+12015550199", Dest: "+12015550100", RecipientJID: "alice@example.com", Body: "fine", Session: "i2/1"}
	if err := st.AcceptInbound(ctx, in); err != nil {
		t.Fatal(err)
	}
	if st := g.HandleDeliver(ctx, text(5, "fine")); st != smpp.StatusOK {
		t.Fatalf("deliver_sm answered %v", st)
	}
	bodies := claimedBodies(t, st)
	if !slices.Equal(bodies, []string{"fine", "fine", "hello world", "maybe", "maybe", "no", "ok", "ok", "ping", "yes", "yes"}) {
		t.Fatalf("messages for the user: %q", bodies)
	}
	if groups, err := st.StaleFragments(ctx, time.Now().Add(2*time.Hour)); err != nil || len(groups) != 0 {
		t.Fatalf("parts kept: %v, %v; want none", groups, err)
	}
}

// recBind is a bind that is up and keeps what it is sent.
type recBind struct {
	alphabet coding.Alphabet // the SMSC's, to read what it is sent
	mu       sync.Mutex
	sent     []*smpp.Submit
}

var smscIDs atomic.Int64

func (b *recBind) Submit(_ context.Context, s *smpp.Submit) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, s)
	return strconv.FormatInt(smscIDs.Add(1), 10), nil
}
func (b *recBind) Bound() bool { return true }

// take returns what was sent since the last call.
func (b *recBind) take() []*smpp.Submit {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sent
	b.sent = nil
	return s
}

func (b *recBind) dests() []smpp.Address {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []smpp.Address
	for _, s := range b.sent {
		out = append(out, s.Dest)
	}
	return out
}

// TestLatin1SMSC: on an SMSC whose data coding 0 is Latin-1, GSM text goes
// as data coding 0 written in Latin-1, and text with a character Latin-1
// lacks as UCS-2, in the parts Parts told the router; a message that may
// go to either of a GSM and a Latin-1 SMSC is planned for both and written
// for the one that takes it. Text from phones in data coding 0, whole or
// in parts, is read in the alphabet of the SMSC that carried it.
func TestLatin1SMSC(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	g := New(Config{Instance: "i1", Reassembly: time.Hour, Unread: func(uint64, uint64) bool { return false }}, st, aliceInbox(t, st))
	latin, gsm := &recBind{alphabet: coding.Latin1}, &recBind{alphabet: coding.GSM}
	g.AddLink(Link{SMSC: "latin", Alphabet: coding.Latin1, Client: latin})
	g.AddLink(Link{SMSC: "gsm", Prefixes: []string{"+44"}, Client: gsm})

	const us, uk = "+12015550199", "+447700900123" // uk: the GSM SMSC, failing over to the Latin-1 one
	long := "Δ" + strings.Repeat("a", 100)         // one SMS in GSM 03.38, two in UCS-2
	for _, tc := range []struct {
		dest, text string
		bind       *recBind
		dc         byte
		sm         []byte // the short_message of a message of one part
	}{
		{us, "Café @ 5£ {ok}", latin, coding.DCDefault, []byte("Caf\xe9 @ 5\xa3 {ok}")},
		{us, "Δ", latin, coding.DCUCS2, []byte{0x03, 0x94}},
		{us, long, latin, coding.DCUCS2, nil},
		{uk, "Café @", gsm, coding.DCDefault, []byte{'C', 'a', 'f', 0x05, ' ', 0x00}},
		{uk, "5€", gsm, coding.DCUCS2, []byte{0x00, '5', 0x20, 0xAC}},
	} {
		m := &store.Outbound{SenderJID: "a@example.com/x", SenderNumber: "+12015550100", Dest: tc.dest, Body: tc.text,
			Parts: g.Parts(tc.dest, tc.text), LeaseOwner: "i1", LeaseUntil: time.Now().Add(time.Minute)}
		if err := st.AcceptOutbound(ctx, []*store.Outbound{m}); err != nil {
			t.Fatal(err)
		}
		g.submit(ctx, m)
		if state, errText, err := st.MessageState(ctx, m.ID); err != nil || state != store.StateSubmitted {
			t.Fatalf("%q to %s: %s (%s), %v", tc.text, tc.dest, state, errText, err)
		}
		sent := tc.bind.take()
		if len(sent) != m.Parts {
			t.Fatalf("%q to %s: %d submit_sm for %d parts", tc.text, tc.dest, len(sent), m.Parts)
		}
		var text strings.Builder
		for _, s := range sent {
			if s.DataCoding != tc.dc {
				t.Errorf("%q to %s: data_coding 0x%02X, want 0x%02X", tc.text, tc.dest, s.DataCoding, tc.dc)
			}
			payload := s.ShortMessage
			if len(sent) > 1 {
				if _, payload, _ = coding.SplitUDH(payload); s.ESMClass&coding.ESMClassUDHI == 0 {
					t.Errorf("%q to %s: a part without UDHI", tc.text, tc.dest)
				}
			}
			part, _ := tc.bind.alphabet.Decode(s.DataCoding, payload)
			text.WriteString(part)
		}
		if tc.sm != nil && (len(sent) != 1 || !bytes.Equal(sent[0].ShortMessage, tc.sm)) {
			t.Errorf("%q to %s: short_message % X, want % X", tc.text, tc.dest, sent[0].ShortMessage, tc.sm)
		}
		if text.String() != tc.text {
			t.Errorf("%q to %s: the parts read %q", tc.text, tc.dest, text.String())
		}
	}
	if _, n := coding.Count(long); n != 1 || g.Parts(us, long) != 2 || g.Parts(uk, long) != 2 {
		t.Errorf("parts of %q: %d in GSM, %d to %s, %d to %s; want 1, 2, 2", long, n, g.Parts(us, long), us, g.Parts(uk, long), uk)
	}

	addr := func(n string) smpp.Address { return smpp.Address{TON: 1, NPI: 1, Addr: n} }
	mo := func(sm ...byte) *smpp.Deliver {
		d := &smpp.Deliver{Command: 0x05, Source: addr("12015550199"), Dest: addr("12015550100"), ShortMessage: sm, Session: 1}
		if sm[0] == 5 {
			d.ESMClass = coding.ESMClassUDHI
		}
		return d
	}
	for i, in := range []struct {
		smsc string
		d    *smpp.Deliver
	}{
		{"latin", mo('C', 'a', 'f', 0xE9, ' ', '@', ' ', '5', 0xA3)},
		{"latin", mo(5, 0, 3, 0x2A, 2, 1, 'G', 'r', 0xFC)},
		{"latin", mo(5, 0, 3, 0x2A, 2, 2, 0xDF, 'e', '!')},
		{"gsm", mo('C', 'a', 'f', 0x05, ' ', 0x00)},
	} {
		if st := g.Handler(in.smsc).HandleDeliver(ctx, in.d); st != smpp.StatusOK {
			t.Fatalf("deliver_sm %d answered %v", i, st)
		}
	}
	if bodies, want := claimedBodies(t, st), []string{"Café @", "Café @ 5£", "Grüße!"}; !slices.Equal(bodies, want) {
		t.Fatalf("messages for the user: %q, want %q", bodies, want)
	}
}

// TestShortCodeAnswer: a message from a short code records how its SMSC
// addressed it and which SMSC that was; an answer goes to that SMSC's
// binds (not by prefix, with no failover), addressed as the short code
// came, except a TON that would read it as an international number or a
// name; an SMSC no longer configured fails it. A long message from a
// short code delivered incomplete records the same.
func TestShortCodeAnswer(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	g := New(Config{Instance: "i1", DefaultRegion: "US", Reassembly: time.Millisecond}, st, aliceInbox(t, st))
	home, other := new(recBind), new(recBind)
	g.AddLink(Link{Prefixes: []string{"+1"}, Client: home})
	g.AddLink(Link{SMSC: "b", Client: other}) // any destination
	d := &smpp.Deliver{Command: 0x05, Source: smpp.Address{TON: 3, NPI: 0, Addr: "72345"},
		Dest: smpp.Address{TON: 1, NPI: 1, Addr: "12015550100"}, ShortMessage: []byte("Reply YES to confirm")}
	if s := g.Handler("b").HandleDeliver(ctx, d); s != smpp.StatusOK {
		t.Fatalf("deliver_sm from a short code answered %v", s)
	}
	sc, err := st.ShortCodeWrote(ctx, "alice@example.com", "+12015550100", "72345", time.Now().Add(-time.Minute))
	if err != nil || sc != (store.ShortCode{TON: 3, NPI: 0, SMSC: "b"}) {
		t.Fatalf("stored short code = %+v, %v; want TON 3, NPI 0, SMSC b", sc, err)
	}
	half := *d
	half.Source.Addr, half.ESMClass = "65432", coding.ESMClassUDHI
	half.ShortMessage = append([]byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x01}, "Your code is"...)
	if s := g.Handler("b").HandleDeliver(ctx, &half); s != smpp.StatusOK {
		t.Fatalf("part from a short code answered %v", s)
	}
	time.Sleep(10 * time.Millisecond) // past the reassembly time
	g.sweepFragments(ctx)
	sc, err = st.ShortCodeWrote(ctx, "alice@example.com", "+12015550100", "65432", time.Now().Add(-time.Minute))
	if err != nil || sc != (store.ShortCode{TON: 3, NPI: 0, SMSC: "b"}) {
		t.Fatalf("short code of a message delivered incomplete = %+v, %v; want TON 3, NPI 0, SMSC b", sc, err)
	}
	send := func(ton, npi byte, smsc string) *store.Outbound {
		t.Helper()
		m := &store.Outbound{SenderJID: "alice@example.com/x", SenderNumber: "+12015550100", Dest: "72345", Body: "YES", Parts: 1,
			DestTON: ton, DestNPI: npi, SMSC: smsc}
		if err := st.AcceptOutbound(ctx, []*store.Outbound{m}); err != nil {
			t.Fatal(err)
		}
		ms, err := st.ClaimOutbound(ctx, "i1", 10, time.Minute)
		if err != nil || len(ms) != 1 {
			t.Fatalf("claimed %d, %v", len(ms), err)
		}
		g.submit(ctx, ms[0])
		return m
	}
	send(3, 0, "b")
	send(1, 1, "b")
	send(6, 0, "")
	want := []smpp.Address{{TON: 3, NPI: 0, Addr: "72345"}, {TON: 0, NPI: 1, Addr: "72345"}}
	if got := other.dests(); !slices.Equal(got, want) {
		t.Fatalf("SMSC b got %+v, want %+v", got, want)
	}
	if got, want := home.dests(), []smpp.Address{{TON: 6, NPI: 0, Addr: "72345"}}; !slices.Equal(got, want) {
		t.Fatalf("the default SMSC got %+v, want %+v", got, want)
	}
	gone := send(3, 0, "removed")
	if state, why, err := st.MessageState(ctx, gone.ID); err != nil || state != store.StateFailed || !strings.Contains(why, "no longer configured") {
		t.Fatalf("answer through an SMSC no longer configured: %s (%s), %v", state, why, err)
	}
}

// TestShortCodePlan: an answer to a short code may go through any SMSC (the
// one the short code wrote through), so its parts are planned for the
// narrowest alphabet of them all, and are the same whichever sends it.
func TestShortCodePlan(t *testing.T) {
	g := New(Config{}, nil, nil)
	g.AddLink(Link{SMSC: "gsm", Prefixes: []string{"+1"}, Client: &bind{up: true}})
	g.AddLink(Link{SMSC: "latin", Alphabet: coding.Latin1, Prefixes: []string{"+44"}, Client: &bind{up: true}})
	text := strings.Repeat("Δ", 100) // GSM: one part; not in Latin-1: UCS-2, two
	if n := g.Parts("+12015550199", text); n != 1 {
		t.Errorf("to a GSM SMSC's number: %d parts, want 1", n)
	}
	if n := g.Parts("72345", text); n != 2 {
		t.Errorf("to a short code: %d parts, want 2 (planned for the Latin-1 SMSC too)", n)
	}
}

// claimedBodies claims the notices waiting in st and returns their bodies,
// sorted.
func claimedBodies(t *testing.T, st *store.Store) []string {
	t.Helper()
	ns, err := st.ClaimNotices(context.Background(), "t", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, n := range ns {
		bodies = append(bodies, n.Body)
	}
	slices.Sort(bodies)
	return bodies
}

// refusingBind accepts the submit_sm of the parts before part and answers
// that one with status.
type refusingBind struct {
	part   int
	status smpp.Status
	n      atomic.Int32
}

func (b *refusingBind) Submit(context.Context, *smpp.Submit) (string, error) {
	if n := int(b.n.Add(1)); n == b.part {
		return "", b.status
	}
	return strconv.FormatInt(smscIDs.Add(1), 10), nil
}
func (b *refusingBind) Bound() bool { return true }

// TestRefusalInWords: an SMSC's permanent refusal fails the message in
// words for its sender, with the status for whoever asks the carrier, and
// the stanza error condition it calls for; a refused part after others
// went says so.
func TestRefusalInWords(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		status    smpp.Status
		part      int
		text      string
		words     string
		condition string
	}{
		{smpp.StatusInvDstAdr, 1, "hi", "the carrier does not know this number (ESME_RINVDSTADR (0x0000000B))", "item-not-found"},
		{smpp.StatusInvSrcAdr, 1, "hi", "the carrier does not accept your number as the sender (ESME_RINVSRCADR (0x0000000A))", "not-allowed"},
		{smpp.StatusSubmitFail, 1, "hi", "the carrier refused it (ESME_RSUBMITFAIL (0x00000045))", "recipient-unavailable"},
		{smpp.StatusInvEsmClass, 1, "hi", "the gateway and the carrier disagree on how to send it; the operator has been told (ESME_RINVESMCLASS (0x00000043))", ""},
		{smpp.StatusInvDstAdr, 2, strings.Repeat("a", 200), "part 2 of 2: the carrier does not know this number (ESME_RINVDSTADR (0x0000000B)); the parts before it were sent", "item-not-found"},
	} {
		st := storetest.SQLite(t)
		g := New(Config{Instance: "i1"}, st, nil)
		g.AddLink(Link{Client: &refusingBind{part: tc.part, status: tc.status}})
		m := &store.Outbound{SenderJID: "a@example.com/x", SenderNumber: "+12015550100", Dest: "+12015550199", Body: tc.text,
			Parts: g.Parts("+12015550199", tc.text), LeaseOwner: "i1", LeaseUntil: time.Now().Add(time.Minute)}
		if err := st.AcceptOutbound(ctx, []*store.Outbound{m}); err != nil {
			t.Fatal(err)
		}
		g.submit(ctx, m)
		ns, err := st.ClaimNotices(ctx, "t", 10, time.Minute)
		if err != nil || len(ns) != 1 {
			t.Fatalf("%v: notices %+v, %v", tc.status, ns, err)
		}
		if n := ns[0]; n.State != store.StateFailed || n.Error != tc.words || n.ErrorCondition != tc.condition {
			t.Errorf("%v, part %d: %s %q %q; want failed %q %q", tc.status, tc.part, n.State, n.Error, n.ErrorCondition, tc.words, tc.condition)
		}
	}
}
