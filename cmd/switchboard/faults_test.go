package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"

	"mellium.im/xmpp/jid"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
	"switchboard/store"
)

// Integration tests for the walking skeleton's fault and receipt
// requirements: every form of delivery receipt, SMSC and XMPP outages,
// gateway restarts, validity, temporary SMSC errors and odd inbound PDUs.
// They run through a real Prosody, the SMSC simulator and SQLite (and
// PostgreSQL where correlation across the table matters).

// startStackEnv is startStack with extra SWITCHBOARD_* settings, which
// override the defaults of startStack.
func startStackEnv(t *testing.T, dsn string, simCfg smsc.Config, extra ...string) *stack {
	t.Helper()
	if simCfg.SystemID == "" {
		simCfg.SystemID, simCfg.Password = "switchboard", "secret"
	}
	return startStack(t, dsn, simCfg, extra...)
}

// restartSMSC starts a new simulator with the old one's configuration on
// the address the gateway is configured for (the old one must be closed).
func restartSMSC(t *testing.T, s *stack) {
	t.Helper()
	cfg := s.smsc.Config()
	sim := smsc.NewServer(cfg)
	var err error
	for range 50 { // the port is free once the old listener is closed; retry briefly in case of a lingering close
		if _, err = sim.Start(s.cfg.SMPP.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restarting the SMSC on %s: %v", s.cfg.SMPP.Addr, err)
	}
	t.Cleanup(func() { sim.Close() })
	s.smsc = sim
}

// send sends a chat message from c to the phone's number JID.
func send(t *testing.T, ctx context.Context, s *stack, c *testenv.Client, id, body string, receipt bool) {
	t.Helper()
	req := ""
	if receipt {
		req = "<request xmlns='urn:xmpp:receipts'/>"
	}
	must(t, c.Send(ctx, fmt.Sprintf(`<message to='%s' id='%s' type='chat'><body>%s</body>%s</message>`, s.numberJID(phone), id, body, req)))
}

// outcomeOf says which of the user's messages a stanza reports on — an
// XEP-0184 receipt or a message error — or "" when it is neither.
func outcomeOf(st testenv.Stanza) (id string, isErr bool) {
	if st.Name != "message" {
		return "", false
	}
	if st.Attr["type"] == "error" {
		return st.Attr["id"], true
	}
	var v struct {
		Received struct {
			ID string `xml:"id,attr"`
		} `xml:"urn:xmpp:receipts received"`
	}
	if st.Decode(&v) != nil {
		return "", false
	}
	return v.Received.ID, false
}

// waitOutcome waits for the receipt or error about message id.
func waitOutcome(t *testing.T, ctx context.Context, c *testenv.Client, id string) (testenv.Stanza, bool) {
	t.Helper()
	r, err := c.Next(ctx, func(st testenv.Stanza) bool { got, _ := outcomeOf(st); return got == id })
	if err != nil {
		t.Fatalf("no receipt or error for %s: %v", id, err)
	}
	_, isErr := outcomeOf(r)
	return r, isErr
}

// wantReceipt waits for the outcome of id and checks it is a receipt.
func wantReceipt(t *testing.T, ctx context.Context, c *testenv.Client, id string) {
	t.Helper()
	if r, isErr := waitOutcome(t, ctx, c, id); isErr {
		t.Errorf("%s: want a receipt, got %s", id, r.XML)
	}
}

// wantError waits for the outcome of id and checks it is an error whose
// text contains every one of words.
func wantError(t *testing.T, ctx context.Context, c *testenv.Client, id string, words ...string) {
	t.Helper()
	r, isErr := waitOutcome(t, ctx, c, id)
	if !isErr {
		t.Errorf("%s: want an error, got %s", id, r.XML)
		return
	}
	for _, w := range words {
		if !strings.Contains(r.XML, w) {
			t.Errorf("%s: error does not mention %q: %s", id, w, r.XML)
		}
	}
}

// noMoreOutcomes checks, after a grace period, that the user got no second
// receipt or error for any of ids.
func noMoreOutcomes(t *testing.T, c *testenv.Client, grace time.Duration, ids ...string) {
	t.Helper()
	time.Sleep(grace)
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for _, st := range c.Pending() {
		if id, _ := outcomeOf(st); id != "" && want[id] {
			t.Errorf("second outcome for %s: %s", id, st.XML)
		}
	}
}

// submitsByText counts the simulator's submits per text.
func submitsByText(ms []*smsc.Message) map[string]int {
	n := make(map[string]int)
	for _, m := range ms {
		n[m.FullText]++
	}
	return n
}

// TestReceiptForms runs one message per receipt form and outcome: text,
// TLV and data_sm receipts; hex and decimal ids, the receipt naming the id
// in the other base; a receipt before submit_sm_resp. Each message gets
// exactly one receipt, or one error naming the carrier status.
func TestReceiptForms(t *testing.T) {
	type tc struct {
		name    string
		mode    smsc.ReceiptMode
		idf     string
		other   bool
		early   bool
		outcome smsc.Outcome
		stat    string // "" for a receipt; else the status the error names
	}
	var cases []tc
	for _, mode := range []smsc.ReceiptMode{smsc.ReceiptText, smsc.ReceiptTLV, smsc.ReceiptDataSM} {
		for _, idf := range []string{smsc.IDHex, smsc.IDDecimal} {
			for _, other := range []bool{false, true} {
				for _, early := range []bool{false, true} {
					cases = append(cases, tc{fmt.Sprintf("%s/%s/other=%v/early=%v", mode, idf, other, early), mode, idf, other, early, smsc.OutcomeDelivered, ""})
				}
			}
		}
	}
	cases = append(cases,
		tc{"text/failed", smsc.ReceiptText, smsc.IDHex, false, false, smsc.OutcomeFailed, "UNDELIV"},
		tc{"text/rejected/decimal/other", smsc.ReceiptText, smsc.IDDecimal, true, false, smsc.OutcomeRejected, "REJECTD"},
		tc{"text/expired/early", smsc.ReceiptText, smsc.IDHex, false, true, smsc.OutcomeExpired, "EXPIRED"},
		tc{"tlv/failed/other", smsc.ReceiptTLV, smsc.IDHex, true, false, smsc.OutcomeFailed, "UNDELIV"},
		tc{"tlv/rejected/decimal/early", smsc.ReceiptTLV, smsc.IDDecimal, false, true, smsc.OutcomeRejected, "REJECTD"},
		tc{"data_sm/expired", smsc.ReceiptDataSM, smsc.IDHex, false, false, smsc.OutcomeExpired, "EXPIRED"},
		tc{"data_sm/failed/decimal/other/early", smsc.ReceiptDataSM, smsc.IDDecimal, true, true, smsc.OutcomeFailed, "UNDELIV"},
		tc{"data_sm/rejected", smsc.ReceiptDataSM, smsc.IDHex, false, false, smsc.OutcomeRejected, "REJECTD"},
	)
	stores(t, func(t *testing.T, dsn string) {
		s := startStackEnv(t, dsn, smsc.Config{})
		a := s.login(t, "alice")
		waitComponent(t, s, a)
		ctx := ctxT(t, 60*time.Second)
		var ids []string
		for i, c := range cases {
			id := fmt.Sprintf("rf%d", i)
			ids = append(ids, id)
			t.Run(c.name, func(t *testing.T) {
				s.smsc.SetConfig(func(cfg *smsc.Config) {
					cfg.ReceiptMode, cfg.IDFormat, cfg.ReceiptIDOtherForm, cfg.EarlyReceipt, cfg.Outcome = c.mode, c.idf, c.other, c.early, c.outcome
				})
				send(t, ctx, s, a, id, "receipt form "+id, true)
				if c.stat == "" {
					wantReceipt(t, ctx, a, id)
				} else {
					wantError(t, ctx, a, id, c.stat)
				}
				ms := s.smsc.Messages()
				m := ms[len(ms)-1]
				if m.FullText != "receipt form "+id {
					t.Fatalf("last submit is %q", m.FullText)
				}
				if dec := strings.Trim(m.ID, "0123456789") == ""; dec != (c.idf == smsc.IDDecimal) {
					t.Errorf("SMSC id %q is not in %s form", m.ID, c.idf)
				}
			})
		}
		noMoreOutcomes(t, a, 300*time.Millisecond, ids...)
		for text, n := range submitsByText(s.smsc.Messages()) {
			if n != 1 {
				t.Errorf("%q submitted %d times", text, n)
			}
		}
	})
}

// TestDeliverSeqCollision sends deliver_sm PDUs whose sequence numbers
// equal that of a submit_sm still waiting for its response (go-smpp would
// swallow them). Every MO reaches the user and the submit's response is
// not lost: no resubmission, and the receipt comes.
func TestDeliverSeqCollision(t *testing.T) {
	// Generous response timeouts on both sides: the hold below must end
	// long before either gives up, even on a loaded machine.
	s := startStackEnv(t, sqliteDSN(t), smsc.Config{ResponseTimeout: 20 * time.Second},
		"SWITCHBOARD_SMPP_RESP_TIMEOUT=20s")
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)

	// The simulator holds the submit_sm (its reader blocks in SubmitStatus)
	// until the MOs are through; deliver_sm goes out on its writer.
	held, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	s.smsc.SetConfig(func(c *smsc.Config) {
		c.SubmitStatus = func(m *smsc.Message) uint32 {
			if m.Text == "held" {
				held <- struct{}{}
				select {
				case <-release:
				case <-time.After(25 * time.Second):
				}
			}
			return 0
		}
	})
	send(t, ctx, s, a, "sq1", "held", true)
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("submit never reached the SMSC")
	}

	// The client numbers bind_transceiver 1 and its requests from 2; the
	// held submit is one of the first few. Cover them all.
	const n = 6
	statuses := make(chan string, n)
	for seq := uint32(1); seq <= n; seq++ {
		go func() {
			st, err := s.smsc.SendDeliver(ctx, smsc.DeliverOpts{
				Seq: seq, Source: phone[1:], SourceTON: 1, SourceNPI: 1, Dest: alice[1:], DestTON: 1, DestNPI: 1,
				ShortMessage: []byte(fmt.Sprintf("collide %d", seq)),
			})
			statuses <- fmt.Sprintf("seq %d: status %#x err %v", seq, st, err)
		}()
	}
	got := make(map[string]bool)
	for len(got) < n {
		r, err := a.Next(ctx, message(s.numberJID(phone)))
		if err != nil {
			t.Fatalf("MOs received while the submit was in flight: %v; %v", got, err)
		}
		if r.Body == "" {
			continue
		}
		if got[r.Body] {
			t.Errorf("MO %q twice", r.Body)
		}
		got[r.Body] = true
	}
	free()
	for range n {
		select {
		case st := <-statuses:
			if !strings.Contains(st, "status 0x0 err <nil>") {
				t.Errorf("deliver_sm %s", st)
			}
		case <-ctx.Done():
			t.Fatal("deliver_sm responses missing")
		}
	}
	wantReceipt(t, ctx, a, "sq1")
	noMoreOutcomes(t, a, 300*time.Millisecond, "sq1")
	if ms := s.smsc.Messages(); len(ms) != 1 {
		t.Errorf("%d submits at the SMSC, want 1 (a lost submit_sm_resp makes a resubmission)", len(ms))
	}
}

// TestRawReceipts feeds receipts the simulator would not build itself:
// a TLV-only deliver_sm with an empty short_message, sent twice, and a
// data_sm, for a delivered and a failed message.
func TestRawReceipts(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s := startStackEnv(t, dsn, smsc.Config{Outcome: smsc.OutcomeNone})
		a := s.login(t, "alice")
		waitComponent(t, s, a)
		ctx := ctxT(t, 30*time.Second)

		cases := []struct {
			id      string
			dataSM  bool
			other   bool // name the id in decimal
			state   byte
			twice   bool
			wantErr string
		}{
			{id: "raw1", state: 2, twice: true},
			{id: "raw2", other: true, state: 5, wantErr: "UNDELIV"},
			{id: "raw3", dataSM: true, state: 2},
			{id: "raw4", dataSM: true, other: true, state: 8, wantErr: "REJECTD"},
		}
		for i, c := range cases {
			send(t, ctx, s, a, c.id, "raw receipt "+c.id, true)
			ms, err := s.smsc.WaitMessages(ctx, i+1)
			must(t, err)
			smscID := ms[i].ID
			if c.other {
				var v uint64
				fmt.Sscanf(smscID, "%X", &v)
				smscID = fmt.Sprint(v)
			}
			o := smsc.DeliverOpts{
				UseDataSM: c.dataSM, ESMClass: 0x04,
				Source: phone[1:], SourceTON: 1, SourceNPI: 1, Dest: alice[1:], DestTON: 1, DestNPI: 1,
				TLVs: []smsc.TLV{{Tag: smsc.TagReceiptedMessageID, Value: append([]byte(smscID), 0)}, {Tag: smsc.TagMessageState, Value: []byte{c.state}}},
			}
			times := 1
			if c.twice {
				times = 2 // a repeated receipt changes nothing
			}
			for range times {
				st, err := s.smsc.SendDeliver(ctx, o)
				if err != nil || st != 0 {
					t.Fatalf("%s: receipt answered %#x, %v", c.id, st, err)
				}
			}
			if c.wantErr == "" {
				wantReceipt(t, ctx, a, c.id)
			} else {
				wantError(t, ctx, a, c.id, c.wantErr)
			}
		}
		noMoreOutcomes(t, a, 300*time.Millisecond, "raw1", "raw2", "raw3", "raw4")
	})
}

// TestSMSCDown closes the SMSC while the gateway runs: the user's messages
// are accepted and wait; a new SMSC on the same address gets each of them
// once and the receipts reach the user.
func TestSMSCDown(t *testing.T) {
	dsn := sqliteDSN(t)
	s := startStackEnv(t, dsn, smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 40*time.Second)
	send(t, ctx, s, a, "up0", "before the outage", true)
	wantReceipt(t, ctx, a, "up0")

	s.smsc.Close()
	ids := []string{"dn1", "dn2", "dn3"}
	for _, id := range ids {
		send(t, ctx, s, a, id, "while down "+id, true)
	}
	st, err := store.Open(ctx, dsn)
	must(t, err)
	defer st.Close()
	for {
		c, err := st.Counts(ctx)
		must(t, err)
		if c["out/queued"]+c["out/submitting"] == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("messages not accepted while the SMSC is down: %v", c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range a.Pending() {
		if p.Attr["type"] == "error" {
			t.Errorf("error while the SMSC is down: %s", p.XML)
		}
	}

	restartSMSC(t, s)
	for _, id := range ids {
		wantReceipt(t, ctx, a, id)
	}
	noMoreOutcomes(t, a, 300*time.Millisecond, ids...)
	texts := submitsByText(s.smsc.Messages())
	if len(texts) != 3 {
		t.Errorf("new SMSC got %v, want the 3 texts", texts)
	}
	for _, id := range ids {
		if n := texts["while down "+id]; n != 1 {
			t.Errorf("%s submitted %d times", id, n)
		}
	}
}

// TestSMSCReusesIDs restarts the SMSC, whose message ids then start again
// from the same value, and has it send each receipt before its
// submit_sm_resp: the receipt naming a reused id must reach the new
// message, not be taken for a repeat of the old message's receipt.
func TestSMSCReusesIDs(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s := startStackEnv(t, dsn, smsc.Config{EarlyReceipt: true})
		a := s.login(t, "alice")
		waitComponent(t, s, a)
		ctx := ctxT(t, 30*time.Second)
		send(t, ctx, s, a, "id1", "first life", true)
		wantReceipt(t, ctx, a, "id1")
		first := s.smsc.Messages()[0].ID

		s.smsc.Close()
		restartSMSC(t, s)
		send(t, ctx, s, a, "id2", "second life", true)
		ms, err := s.smsc.WaitMessages(ctx, 1)
		must(t, err)
		if ms[0].ID != first {
			t.Fatalf("the new SMSC gave id %s, not the reused %s", ms[0].ID, first)
		}
		wantReceipt(t, ctx, a, "id2")
		noMoreOutcomes(t, a, 300*time.Millisecond, "id1", "id2")
	})
}

// TestSMSCDropsSessions drops the SMPP connection in the middle of a stream
// of 50 messages: each ends with a receipt or an error at the user, and
// only messages in flight at the drop may reach the SMSC twice.
func TestSMSCDropsSessions(t *testing.T) {
	s := startStackEnv(t, sqliteDSN(t),
		smsc.Config{ReceiptDelay: 100 * time.Millisecond}, "SWITCHBOARD_SMPP_THROUGHPUT=50")
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 45*time.Second)

	const total = 50
	ids := make([]string, total)
	for i := range ids {
		ids[i] = fmt.Sprintf("st%02d", i)
		send(t, ctx, s, a, ids[i], "stream "+ids[i], true)
	}
	_, err := s.smsc.WaitMessages(ctx, total/2)
	must(t, err)
	s.smsc.DropSessions()
	// Once the gateway has bound again, every submit of the dropped
	// session has been recorded by the simulator.
	for s.smsc.Bound() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the gateway did not bind again after the drop")
		}
		time.Sleep(20 * time.Millisecond)
	}
	atDrop := s.smsc.Messages()
	before := make(map[string]bool)
	for _, m := range atDrop {
		before[m.FullText] = true
	}
	t.Logf("%d submits at the SMSC when the gateway had bound again after the drop", len(atDrop))

	receipts, errs := 0, 0
	for _, id := range ids {
		if _, isErr := waitOutcome(t, ctx, a, id); isErr {
			errs++
		} else {
			receipts++
		}
	}
	noMoreOutcomes(t, a, 500*time.Millisecond, ids...)
	t.Logf("%d receipts, %d errors, 0 missing", receipts, errs)

	dups := 0
	for text, n := range submitsByText(s.smsc.Messages()) {
		if n > 1 {
			dups += n - 1
			t.Logf("duplicate at the SMSC: %q submitted %d times", text, n)
			if !before[text] {
				t.Errorf("%q duplicated but it had not reached the SMSC before the drop", text)
			}
		}
	}
	if dups > s.cfg.SMPP.Window {
		t.Errorf("%d duplicates, more than the %d submits that can be in flight", dups, s.cfg.SMPP.Window)
	}
	t.Logf("%d duplicate submits", dups)
}

// TestProsodyRestart restarts Prosody while phones send 20 messages: the
// gateway keeps storing them, the component reconnects by itself, and the
// user gets each body exactly once (before the restart, or after logging
// in again, possibly from offline storage).
func TestProsodyRestart(t *testing.T) {
	s := startStackEnv(t, sqliteDSN(t), smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 45*time.Second)

	const total = 20
	sent := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		for i := range total {
			if i == 5 {
				close(started)
			}
			if err := s.smsc.SendMO(ctx, phone, alice, fmt.Sprintf("mo %02d", i)); err != nil {
				sent <- fmt.Errorf("MO %d: %w", i, err)
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
		sent <- nil
	}()
	<-started
	s.prosody.Restart(t)
	must(t, <-sent)

	seen := make(map[string]int)
	collect := func(st testenv.Stanza) {
		if st.Name == "message" && strings.HasPrefix(st.Attr["from"], s.numberJID(phone)) && st.Body != "" {
			seen[st.Body]++
		}
	}
	for _, st := range a.Pending() { // what reached the first session before the restart
		collect(st)
	}
	t.Logf("%d bodies before the restart", len(seen))
	a2 := s.login(t, "alice")
	for len(seen) < total {
		st, err := a2.Next(ctx, nil)
		if err != nil {
			t.Fatalf("after the restart: got %d of %d bodies: %v", len(seen), total, err)
		}
		collect(st)
	}
	time.Sleep(500 * time.Millisecond)
	for _, st := range a2.Pending() {
		collect(st)
	}
	for i := range total {
		if n := seen[fmt.Sprintf("mo %02d", i)]; n != 1 {
			t.Errorf("mo %02d received %d times", i, n)
		}
	}
	waitComponent(t, s, a2)
}

// TestPhoneMessagesWhileServerDown: messages from a phone that come while
// the XMPP server is down wait in the store and reach the user, in order,
// once it is back, each saying when it came (XEP-0203), since that was
// seconds before the user sees it.
func TestPhoneMessagesWhileServerDown(t *testing.T) {
	s := startStackEnv(t, sqliteDSN(t), smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 45*time.Second)

	s.prosody.Stop(t)
	var came []time.Time
	for i := range 3 {
		came = append(came, time.Now())
		must(t, s.smsc.SendMO(ctx, phone, alice, fmt.Sprintf("while down %d", i)))
	}
	time.Sleep(6 * time.Second) // more than the router's delayedAfter
	s.prosody.Start(t)
	a2 := s.login(t, "alice")
	for i := range 3 {
		st, err := a2.Next(ctx, message(s.numberJID(phone)))
		must(t, err)
		if want := fmt.Sprintf("while down %d", i); st.Body != want {
			t.Fatalf("got %q, want %q", st.Body, want)
		}
		var v struct {
			Delays []struct {
				From  string `xml:"from,attr"`
				Stamp string `xml:"stamp,attr"`
			} `xml:"urn:xmpp:delay delay"`
		}
		must(t, st.Decode(&v))
		var stamp time.Time
		for _, d := range v.Delays {
			if d.From == s.prosody.Component {
				stamp, err = time.Parse(time.RFC3339Nano, d.Stamp)
				must(t, err)
			}
		}
		if d := stamp.Sub(came[i]); d < -time.Second || d > 2*time.Second {
			t.Errorf("%q: delay from %s says %v, %v after it was sent; want when it came (%s)", st.Body, s.prosody.Component, stamp, d, st.XML)
		}
	}
}

// TestGatewayRestart stops the gateway while receipts are pending at the
// SMSC and starts it again on the same store: the receipts that come after
// the restart are matched through the table and reach the user.
func TestGatewayRestart(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s := startStackEnv(t, dsn, smsc.Config{ReceiptDelay: 2 * time.Second})
		a := s.login(t, "alice")
		waitComponent(t, s, a)
		ctx := ctxT(t, 40*time.Second)
		ids := []string{"gr1", "gr2", "gr3"}
		for _, id := range ids {
			send(t, ctx, s, a, id, "across a restart "+id, true)
		}
		_, err := s.smsc.WaitMessages(ctx, len(ids))
		must(t, err)
		s.stop()
		for _, p := range a.Pending() {
			if id, _ := outcomeOf(p); id != "" {
				t.Logf("outcome before the restart: %s", p.XML)
			}
		}
		s.start(t)
		for _, id := range ids {
			wantReceipt(t, ctx, a, id)
		}
		noMoreOutcomes(t, a, 300*time.Millisecond, ids...)
		if ms := s.smsc.Messages(); len(ms) != len(ids) {
			t.Errorf("%d submits, want %d (nothing resubmitted after the restart)", len(ms), len(ids))
		}
	})
}

// TestValidityExpired puts a message whose validity has passed in the queue
// while the SMSC is down: when the bind comes back it fails back to its
// sender, naming the validity period, and never reaches the SMSC.
func TestValidityExpired(t *testing.T) {
	dsn := sqliteDSN(t)
	s := startStackEnv(t, dsn, smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)

	s.smsc.Close()
	st, err := store.Open(ctx, dsn)
	must(t, err)
	defer st.Close()
	must(t, st.AcceptOutbound(ctx, []*store.Outbound{{
		SenderJID: a.JID.String(), SenderNumber: alice, Dest: phone, StanzaID: "val1", WantReceipt: true,
		Body: "too late", Parts: 1, ExpiresAt: time.Now().Add(-time.Minute),
	}}))
	restartSMSC(t, s)
	wantError(t, ctx, a, "val1", "validity")
	// A message sent after it still goes out: the bind is up.
	send(t, ctx, s, a, "val2", "in time", true)
	wantReceipt(t, ctx, a, "val2")
	for _, m := range s.smsc.Messages() {
		if m.FullText == "too late" {
			t.Errorf("expired message reached the SMSC: %+v", m)
		}
	}
}

// TestTemporarySMSCErrors: a throttled submit is retried until accepted;
// a permanent refusal fails back to the sender naming the status.
func TestTemporarySMSCErrors(t *testing.T) {
	s := startStackEnv(t, sqliteDSN(t), smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)

	var throttled, refused atomic.Int32
	s.smsc.SetConfig(func(c *smsc.Config) {
		c.SubmitStatus = func(m *smsc.Message) uint32 {
			switch m.Text {
			case "throttle me":
				if throttled.Add(1) <= 2 {
					return 0x58 // ESME_RTHROTTLED
				}
			case "refuse me":
				refused.Add(1)
				return 0x0B // ESME_RINVDSTADR
			case "refuse the sender":
				return 0x0A // ESME_RINVSRCADR
			case "refuse the PDU":
				return 0x43 // ESME_RINVESMCLASS
			}
			return 0
		}
	})
	send(t, ctx, s, a, "tmp1", "throttle me", true)
	wantReceipt(t, ctx, a, "tmp1")
	if n := throttled.Load(); n != 3 {
		t.Errorf("throttled message submitted %d times, want 3", n)
	}
	// In plain words, with the condition the refusal calls for; the status
	// for whoever asks the carrier.
	send(t, ctx, s, a, "perm1", "refuse me", true)
	wantError(t, ctx, a, "perm1", "RINVDSTADR", "the carrier does not know this number", "<item-not-found")
	send(t, ctx, s, a, "perm2", "refuse the sender", true)
	wantError(t, ctx, a, "perm2", "RINVSRCADR", "does not accept your number as the sender", "<not-allowed")
	send(t, ctx, s, a, "perm3", "refuse the PDU", true)
	wantError(t, ctx, a, "perm3", "RINVESMCLASS", "the operator has been told", "<recipient-unavailable")
	noMoreOutcomes(t, a, 300*time.Millisecond, "tmp1", "perm1", "perm2", "perm3")
	if n := refused.Load(); n != 1 {
		t.Errorf("permanently refused message submitted %d times, want 1", n)
	}
}

// TestPhoneBurstInOrder: two phones write to a user at once, each a burst
// the SMSC sends without waiting for responses; the user gets each phone's
// messages in the order it wrote them.
func TestPhoneBurstInOrder(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s := startStackEnv(t, dsn, smsc.Config{})
		a := s.login(t, "alice")
		waitComponent(t, s, a)
		ctx := ctxT(t, 60*time.Second)

		const each = 150
		phones := []string{phone, "+12015550198"}
		var burst []smsc.DeliverOpts
		for i := range each {
			for _, p := range phones {
				burst = append(burst, smsc.DeliverOpts{
					Source: p[1:], SourceTON: 1, SourceNPI: 1, Dest: alice[1:], DestTON: 1, DestNPI: 1,
					ShortMessage: []byte(fmt.Sprintf("message %d", i)),
				})
			}
		}
		sts, err := s.smsc.SendDelivers(ctx, burst)
		must(t, err)
		for i, st := range sts {
			if st != 0 {
				t.Fatalf("deliver_sm %d answered %#x", i, st)
			}
		}
		for _, p := range phones {
			for i := range each {
				m, err := a.Next(ctx, message(s.numberJID(p)))
				must(t, err)
				if want := fmt.Sprintf("message %d", i); m.Body != want {
					t.Fatalf("from %s: got %q where %q was written", p, m.Body, want)
				}
			}
		}
	})
}

// TestInboundEdgeCases sends crafted deliver_sm PDUs: concatenation by
// 16-bit UDH reference and by SAR TLVs, parts out of order, a missing part
// (delivered after the reassembly time with the gap marked), and the data
// codings GSM 03.38, Latin-1 and UCS-2.
func TestInboundEdgeCases(t *testing.T) {
	s := startStackEnv(t, sqliteDSN(t), smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)

	ucs2 := func(text string) []byte {
		var b []byte
		for _, u := range utf16.Encode([]rune(text)) {
			b = append(b, byte(u>>8), byte(u))
		}
		return b
	}
	udh8 := func(ref, total, seq byte) []byte { return []byte{5, 0x00, 3, ref, total, seq} }
	udh16 := func(ref uint16, total, seq byte) []byte {
		return []byte{6, 0x08, 4, byte(ref >> 8), byte(ref), total, seq}
	}
	type pdu struct {
		esm, dc byte
		sm      []byte
		tlvs    []smsc.TLV
	}
	sar := func(ref uint16, total, seq byte) []smsc.TLV {
		return []smsc.TLV{
			{Tag: smsc.TagSarMsgRefNum, Value: []byte{byte(ref >> 8), byte(ref)}},
			{Tag: smsc.TagSarTotalSegments, Value: []byte{total}},
			{Tag: smsc.TagSarSegmentSeqnum, Value: []byte{seq}},
		}
	}
	cases := []struct {
		name string
		pdus []pdu
		want string
	}{
		{"gsm", []pdu{{0, 0, []byte{'A', 't', ' ', 0x00, ' ', '5', 0x1B, 0x65, ' ', 0x02, '!'}, nil}}, "At @ 5€ $!"},
		{"latin1", []pdu{{0, 3, []byte("caf\xe9 \xf1and\xfa"), nil}}, "café ñandú"},
		{"ucs2", []pdu{{0, 8, ucs2("Привет 😀"), nil}}, "Привет 😀"},
		{"udh16", []pdu{
			{0x40, 0, append(udh16(0x1234, 2, 1), "sixteen-bit "...), nil},
			{0x40, 0, append(udh16(0x1234, 2, 2), "reference"...), nil},
		}, "sixteen-bit reference"},
		{"sar", []pdu{
			{0, 8, ucs2("SAR часть "), sar(0x0102, 2, 1)},
			{0, 8, ucs2("два"), sar(0x0102, 2, 2)},
		}, "SAR часть два"},
		{"out of order", []pdu{
			{0x40, 0, append(udh8(7, 3, 3), "three"...), nil},
			{0x40, 0, append(udh8(7, 3, 1), "one "...), nil},
			{0x40, 0, append(udh8(7, 3, 2), "two "...), nil},
		}, "one two three"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.pdus {
				st, err := s.smsc.SendDeliver(ctx, smsc.DeliverOpts{
					Source: phone[1:], SourceTON: 1, SourceNPI: 1, Dest: alice[1:], DestTON: 1, DestNPI: 1,
					ESMClass: p.esm, DataCoding: p.dc, ShortMessage: p.sm, TLVs: p.tlvs,
				})
				if err != nil || st != 0 {
					t.Fatalf("deliver_sm answered %#x, %v", st, err)
				}
			}
			r, err := a.Next(ctx, message(s.numberJID(phone)))
			must(t, err)
			if r.Body != c.want {
				t.Errorf("got %q, want %q", r.Body, c.want)
			}
		})
	}

	t.Run("missing part", func(t *testing.T) {
		for _, seq := range []byte{1, 3} {
			st, err := s.smsc.SendDeliver(ctx, smsc.DeliverOpts{
				Source: phone[1:], SourceTON: 1, SourceNPI: 1, Dest: alice[1:], DestTON: 1, DestNPI: 1,
				ESMClass: 0x40, ShortMessage: append(udh8(9, 3, seq), fmt.Sprintf("part %d ", seq)...),
			})
			if err != nil || st != 0 {
				t.Fatalf("deliver_sm answered %#x, %v", st, err)
			}
		}
		r, err := a.Next(ctx, message(s.numberJID(phone)))
		must(t, err)
		if want := "part 1 […]part 3 "; r.Body != want {
			t.Errorf("got %q, want %q", r.Body, want)
		}
	})
	// A part sent again after its message was complete (on the same bind)
	// is dropped once the wait for the rest is over, not delivered as a
	// second, incomplete message (checked below, after that wait).
	t.Run("part sent again", func(t *testing.T) {
		send := func(seq byte, text string) {
			t.Helper()
			st, err := s.smsc.SendDeliver(ctx, smsc.DeliverOpts{
				Source: phone[1:], SourceTON: 1, SourceNPI: 1, Dest: alice[1:], DestTON: 1, DestNPI: 1,
				ESMClass: 0x40, ShortMessage: append(udh8(0x42, 2, seq), text...),
			})
			if err != nil || st != 0 {
				t.Fatalf("deliver_sm answered %#x, %v", st, err)
			}
		}
		send(1, "once ")
		send(2, "only")
		r, err := a.Next(ctx, message(s.numberJID(phone)))
		must(t, err)
		if r.Body != "once only" {
			t.Fatalf("got %q", r.Body)
		}
		send(1, "once ")
		time.Sleep(4 * time.Second) // past the reassembly wait and a sweep
	})
	// Data for a phone's application (here a WAP push) is no text: refused
	// with ESME_RX_P_APPN, never shown as garbage (checked below).
	t.Run("binary", func(t *testing.T) {
		st, err := s.smsc.SendDeliver(ctx, smsc.DeliverOpts{
			Source: phone[1:], SourceTON: 1, SourceNPI: 1, Dest: alice[1:], DestTON: 1, DestNPI: 1,
			ESMClass: 0x40, DataCoding: 4, ShortMessage: []byte{0x06, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, 0xdc, 0x06, 0x01, 0xae},
		})
		if err != nil || st != 0x65 {
			t.Fatalf("binary deliver_sm answered %#x, %v; want 0x65 (ESME_RX_P_APPN)", st, err)
		}
	})
	// So is a message addressed to an application port whose data happens
	// to read as text (in the UDH, or by the destination_port TLV).
	t.Run("port addressed", func(t *testing.T) {
		for _, opts := range []smsc.DeliverOpts{
			{ESMClass: 0x40, ShortMessage: append([]byte{0x06, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0}, "looks like text"...)},
			{ShortMessage: []byte("//VVM:SYNC:ev=NM"), TLVs: []smsc.TLV{{Tag: 0x020B, Value: []byte{0x15, 0x7c}}}},
		} {
			opts.Source, opts.SourceTON, opts.SourceNPI = phone[1:], 1, 1
			opts.Dest, opts.DestTON, opts.DestNPI = alice[1:], 1, 1
			st, err := s.smsc.SendDeliver(ctx, opts)
			if err != nil || st != 0x65 {
				t.Fatalf("port-addressed deliver_sm answered %#x, %v; want 0x65 (ESME_RX_P_APPN)", st, err)
			}
		}
	})
	time.Sleep(300 * time.Millisecond)
	for _, p := range a.Pending() {
		if p.Name == "message" && p.Body != "" {
			t.Errorf("unexpected extra message: %s", p.XML)
		}
	}
}

// TestFailureAfterClientLeft: a message that fails after the client that
// sent it went offline is still reported. Prosody drops a message error to
// an unavailable full JID, so the report goes as a chat message to the
// user's bare JID: to her other client while one is online, else into
// offline storage, delivered when she comes back.
func TestFailureAfterClientLeft(t *testing.T) {
	s := startStackWith(t, sqliteDSN(t), testenv.ProsodyOptions{Privilege: true}, smsc.Config{})
	ctx := ctxT(t, 60*time.Second)
	// The SMSC holds each submit until the test lets it go, then refuses
	// it: the failure comes once the sending client is known to be gone.
	release, done := make(chan struct{}, 2), make(chan struct{})
	t.Cleanup(func() { close(done) }) // before the SMSC closes: nothing stays held
	s.smsc.SetConfig(func(c *smsc.Config) {
		c.SubmitStatus = func(*smsc.Message) uint32 {
			select {
			case <-release:
			case <-done:
			}
			return 0x0B // ESME_RINVDSTADR
		}
	})
	st, err := store.Open(ctx, s.cfg.Store.DSN)
	must(t, err)
	defer st.Close()
	login := func(resource string) *testenv.Client {
		return testenv.Login(t, s.prosody.C2SAddr, jid.MustParse("alice@"+s.prosody.Domain+"/"+resource), "alice")
	}
	leave := func(c *testenv.Client) {
		t.Helper()
		must(t, c.Close())
		waitAvailable(t, st, c.JID.Bare().String(), c.JID.Resourcepart(), false)
		release <- struct{}{}
	}
	report := func(c *testenv.Client, text string) testenv.Stanza {
		t.Helper()
		m, err := c.Next(ctx, func(m testenv.Stanza) bool { return strings.Contains(m.Body, text) })
		if err != nil {
			t.Fatalf("no report of %q: %v", text, err)
		}
		if m.Attr["from"] != s.prosody.Component || m.Attr["type"] == "error" || !strings.Contains(m.Body, "Your SMS to "+phone) {
			t.Errorf("report of %q: %s", text, m.XML)
		}
		return m
	}

	one, two := login("one"), login("two")
	waitComponent(t, s, one)
	waitGranted(t, 1, s)
	send(t, ctx, s, one, "gone1", "sent from one", true)
	leave(one)
	report(two, "“sent from one”")

	// Both clients offline: the report waits in Prosody's offline storage.
	send(t, ctx, s, two, "gone2", "sent from two", true)
	leave(two)
	waitUntil(t, 20*time.Second, "the report of gone2 never reached the server", func() bool {
		return s.logs.Count("notice handed to the XMPP server") >= 2 // both reports
	})
	if m := report(login("three"), "“sent from two”"); !strings.Contains(m.XML, "urn:xmpp:delay") {
		t.Errorf("report of gone2 not from offline storage (no delay stamp): %s", m.XML)
	}
}
