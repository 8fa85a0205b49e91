package smsgw

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
	"switchboard/smsgw/coding"
	"switchboard/smsgw/smsc"
	"switchboard/store"
	"switchboard/store/storetest"
)

// startSim starts an SMSC simulator with cfg (its logger set), closed when
// the test ends.
func startSim(t *testing.T, cfg smsc.Config) (*smsc.Server, string) {
	t.Helper()
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	sim := smsc.NewServer(cfg)
	addr, err := sim.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, addr
}

// run runs g until the test ends.
func run(t *testing.T, g *Gateway) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, time.Second) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// queue stores a message of text to +12015550199, valid for validity.
func queue(t *testing.T, g *Gateway, st *store.Store, text string, validity time.Duration) *store.Outbound {
	t.Helper()
	const dest = "+12015550199"
	m := &store.Outbound{SenderJID: "a@example.com/x", SenderNumber: "+12015550100", Dest: dest, Body: text,
		Parts: g.Parts(dest, text), WantReceipt: true, ExpiresAt: time.Now().Add(validity)}
	if err := st.AcceptOutbound(context.Background(), []*store.Outbound{m}); err != nil {
		t.Fatal(err)
	}
	g.Wake()
	return m
}

// waitState waits up to 20 s for message id to reach one of states, and
// returns the state it is in then, with its error text.
func waitState(t *testing.T, st *store.Store, id int64, states ...string) (string, string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		state, why, err := st.MessageState(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if state == s {
				return state, why
			}
		}
		if time.Now().After(deadline) {
			return state, why
		}
	}
}

const noIDWarning = "the SMSC accepts messages without a message_id: their receipts cannot be matched, so they end as sent after sms.receipt_wait, their delivery not confirmed"

// TestNoMessageID: an OK submit_sm_resp whose message_id is empty is the
// SMSC's acceptance (SMPP 3.4 §4.4.2): the part is recorded as submitted
// at once, under an id no receipt matches, and never sent again; the
// message ends as sent, unconfirmed, when its wait for receipts ends. The
// gateway warns once for the SMSC, not once per message.
func TestNoMessageID(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		sim, addr := startSim(t, smsc.Config{NoMessageID: true})
		logs := testenv.NewLogs(t)
		g := startSimGatewayConfig(t, st, addr, coding.GSM, Config{Instance: "i1", Logger: zerolog.New(logs)})
		run(t, g.Gateway)
		short := queue(t, g.Gateway, st, "hi", time.Hour)
		long := queue(t, g.Gateway, st, strings.Repeat("a", 200), time.Hour)
		for _, m := range []*store.Outbound{short, long} {
			if state, why := waitState(t, st, m.ID, store.StateSubmitted); state != store.StateSubmitted {
				t.Fatalf("message %d of %d parts: %s (%s), want submitted", m.ID, m.Parts, state, why)
			}
		}
		if n := len(sim.Messages()); n != 3 {
			t.Fatalf("the SMSC took %d parts, want 3", n)
		}
		// The receipts, naming ids the gateway never learnt, and ones
		// naming what it recorded instead, settle nothing.
		for _, id := range []string{sim.Messages()[0].ID, "NOID/" + strconv.FormatInt(short.ID, 10) + "/1", "noid/" + strconv.FormatInt(short.ID, 10) + "/1"} {
			if s, err := sim.SendDeliver(ctx, smsc.DeliverOpts{Source: "12015550199", Dest: "12015550100", ESMClass: 0x04,
				ShortMessage: []byte("id:" + id + " sub:001 dlvrd:000 submit date:2401010000 done date:2401010000 stat:UNDELIV err:001 text:")}); err != nil || s != 0 {
				t.Fatalf("receipt for %s: status %#x, %v", id, s, err)
			}
		}
		if state, why, _ := st.MessageState(ctx, short.ID); state != store.StateSubmitted {
			t.Fatalf("after receipts: %s (%s), want submitted", state, why)
		}
		if n, err := st.EndReceiptWaits(ctx, time.Now().Add(time.Second)); err != nil || n != 2 {
			t.Fatalf("EndReceiptWaits = %d, %v; want 2", n, err)
		}
		for _, m := range []*store.Outbound{short, long} {
			if state, _, _ := st.MessageState(ctx, m.ID); state != "sent" {
				t.Errorf("message %d after the wait for receipts: %s, want sent", m.ID, state)
			}
		}
		if n := len(sim.Messages()); n != 3 {
			t.Errorf("the SMSC took %d parts, want 3", n)
		}
		if n := logs.Count(noIDWarning); n != 1 {
			t.Errorf("warned %d times about the SMSC, want once", n)
		}
	})
}

// TestReceiptsThatDecideNothing: an intermediate notification (esm_class
// 0x20), whatever its stat, a receipt in progress (BUFFRED, BUFFERD,
// ACKED, ENROUTE, ACCEPTD) and one whose message_state is UNKNOWN leave
// the message waiting; the failure that comes then fails it, and a
// DELIVRD after that changes nothing (a final state is final).
func TestReceiptsThatDecideNothing(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		sim, addr := startSim(t, smsc.Config{Outcome: smsc.OutcomeNone, IDFormat: smsc.IDDecimal})
		g := startSimGateway(t, st, addr, coding.GSM, 0)
		run(t, g.Gateway)
		m := queue(t, g.Gateway, st, "hi", time.Hour)
		if state, why := waitState(t, st, m.ID, store.StateSubmitted); state != store.StateSubmitted {
			t.Fatalf("%s (%s), want submitted", state, why)
		}
		id := sim.Messages()[0].ID
		text := func(stat string) []byte {
			return []byte("id:" + id + " sub:001 dlvrd:000 submit date:2401010000 done date:2401010000 stat:" + stat + " err:001 text:")
		}
		for _, tc := range []struct {
			name  string
			d     smsc.DeliverOpts
			state string
		}{
			{"intermediate UNDELIV", smsc.DeliverOpts{ESMClass: 0x20, ShortMessage: text("UNDELIV")}, store.StateSubmitted},
			{"intermediate with TLVs", smsc.DeliverOpts{ESMClass: 0x20, TLVs: []smsc.TLV{
				{Tag: smsc.TagReceiptedMessageID, Value: append([]byte(id), 0)}, {Tag: smsc.TagMessageState, Value: []byte{5}}}}, store.StateSubmitted},
			{"BUFFRED", smsc.DeliverOpts{ESMClass: 0x04, ShortMessage: text("BUFFRED")}, store.StateSubmitted},
			{"BUFFERD", smsc.DeliverOpts{ESMClass: 0x04, ShortMessage: text("BUFFERD")}, store.StateSubmitted},
			{"ACKED", smsc.DeliverOpts{ESMClass: 0x04, ShortMessage: text("ACKED")}, store.StateSubmitted},
			{"ENROUTE", smsc.DeliverOpts{ESMClass: 0x04, ShortMessage: text("ENROUTE")}, store.StateSubmitted},
			{"message_state ACCEPTED", smsc.DeliverOpts{ESMClass: 0x04, TLVs: []smsc.TLV{
				{Tag: smsc.TagReceiptedMessageID, Value: append([]byte(id), 0)}, {Tag: smsc.TagMessageState, Value: []byte{6}}}}, store.StateSubmitted},
			{"message_state UNKNOWN", smsc.DeliverOpts{ESMClass: 0x04, TLVs: []smsc.TLV{
				{Tag: smsc.TagReceiptedMessageID, Value: append([]byte(id), 0)}, {Tag: smsc.TagMessageState, Value: []byte{7}}}}, store.StateSubmitted},
			{"UNDELIV", smsc.DeliverOpts{ESMClass: 0x04, ShortMessage: text("UNDELIV")}, store.StateFailed},
			{"DELIVRD after it", smsc.DeliverOpts{ESMClass: 0x04, ShortMessage: text("DELIVRD")}, store.StateFailed},
		} {
			tc.d.Source, tc.d.Dest = "12015550199", "12015550100"
			if s, err := sim.SendDeliver(ctx, tc.d); err != nil || s != 0 {
				t.Fatalf("%s: status %#x, %v", tc.name, s, err)
			}
			if state, why, _ := st.MessageState(ctx, m.ID); state != tc.state {
				t.Fatalf("after %s: %s (%s), want %s", tc.name, state, why, tc.state)
			}
		}
	})
}

// TestBusyAndBindStatus: a submit_sm refused with ESME_RTHROTTLED or
// ESME_RMSGQFUL (the SMSC is busy) or ESME_RINVBNDSTS (the bind is in the
// wrong state) goes back to the queue without counting an attempt, so a
// message refused so more often than it has attempts is still sent; and
// one refused past its validity period fails, saying so.
func TestBusyAndBindStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   uint32
		refusals int32 // then accepted; -1: never
		validity time.Duration
		failed   string
	}{
		{name: "throttled", status: 0x58, refusals: 3},
		{name: "queue full", status: 0x14, refusals: 3},
		{name: "bind status", status: 0x04, refusals: 3},
		{name: "throttled past validity", status: 0x58, refusals: -1, validity: 2 * time.Second, failed: "within its validity period"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out the gateway's and the bind's backoffs
			storetest.Engines(t, func(t *testing.T, st *store.Store) {
				var refused atomic.Int32
				sim, addr := startSim(t, smsc.Config{SubmitStatus: func(*smsc.Message) uint32 {
					if tc.refusals < 0 || refused.Add(1) <= tc.refusals {
						return tc.status
					}
					return 0
				}})
				log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
				g := startSimGatewayConfig(t, st, addr, coding.GSM, Config{Instance: "i1", MaxAttempts: 1, Logger: log})
				run(t, g.Gateway)
				validity := tc.validity
				if validity == 0 {
					validity = time.Hour
				}
				m := queue(t, g.Gateway, st, "hi", validity)
				state, why := waitState(t, st, m.ID, store.StateDelivered, store.StateFailed)
				switch {
				case tc.failed == "" && state != store.StateDelivered:
					t.Fatalf("%s (%s), want delivered", state, why)
				case tc.failed != "" && (state != store.StateFailed || !strings.Contains(why, tc.failed)):
					t.Fatalf("%s (%s), want failed (…%s…)", state, why, tc.failed)
				}
				if n, want := len(sim.Messages()), 1; tc.failed != "" && n != 0 || tc.failed == "" && n != want {
					t.Errorf("the SMSC took %d messages", n)
				}
			})
		})
	}
}
