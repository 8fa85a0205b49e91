package smsgw

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
	"switchboard/smsgw/coding"
	"switchboard/smsgw/smpp"
	"switchboard/smsgw/smsc"
	"switchboard/store"
	"switchboard/store/storetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// simGateway is a gateway of one SMSC, whose data coding 0 is alphabet,
// bound to sim until the test ends or stop is called.
type simGateway struct {
	*Gateway
	stop func()
}

func startSimGateway(t *testing.T, st *store.Store, sim string, alphabet coding.Alphabet, maxParts int) *simGateway {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	return startSimGatewayConfig(t, st, sim, alphabet, Config{Instance: "i1", MaxParts: maxParts, Logger: log})
}

// startSimGatewayConfig is startSimGateway with the gateway's Config.
func startSimGatewayConfig(t *testing.T, st *store.Store, sim string, alphabet coding.Alphabet, cfg Config) *simGateway {
	t.Helper()
	g := New(cfg, st, nil)
	c := smpp.NewClient(smpp.Config{Addr: sim, SystemID: "switchboard", Handler: g.Handler(""), Logger: cfg.Logger,
		ReconnectMin: 10 * time.Millisecond})
	g.AddLink(Link{Alphabet: alphabet, Client: c})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	var once bool
	stop := func() {
		if !once {
			once = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitBound(wctx); err != nil {
		t.Fatal(err)
	}
	return &simGateway{g, stop}
}

// TestAlphabetChangedWhileQueued: a message accepted when its SMSC's
// data coding 0 was one alphabet, and sent after a restart with another
// one that makes its text take another number of parts, is sent, not
// failed. Not started, it takes the parts planned now (within the most
// parts a message may take), and the store counts them; started, the
// rest goes in the parts the first ones were cut in, so that the phone
// joins them, or it fails saying why when that cannot be written any more.
func TestAlphabetChangedWhileQueued(t *testing.T) {
	// GSM 03.38 has é, ASCII has not: 2 parts as data coding 0, 3 as UCS-2.
	text := "é" + strings.Repeat("a", 199)
	for _, tc := range []struct {
		name          string
		before, after coding.Alphabet
		sentBefore    int // parts submitted before the restart
		maxParts      int
		dc            byte // of every part the SMSC took
		failed        string
	}{
		{name: "none sent, more parts", before: coding.GSM, after: coding.ASCII, dc: coding.DCUCS2},
		{name: "none sent, fewer parts", before: coding.ASCII, after: coding.GSM, dc: coding.DCDefault},
		{name: "one sent as UCS-2", before: coding.ASCII, after: coding.GSM, sentBefore: 1, dc: coding.DCUCS2},
		{name: "one sent as GSM, now not writable", before: coding.GSM, after: coding.ASCII, sentBefore: 1, dc: coding.DCDefault,
			failed: "cannot be sent in the same parts"},
		{name: "none sent, too many parts now", before: coding.GSM, after: coding.ASCII, maxParts: 2,
			failed: "it would now take 3 SMS, and at most 2 are allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Engines(t, func(t *testing.T, st *store.Store) {
				ctx := context.Background()
				sim := smsc.NewServer(smsc.Config{Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
				addr, err := sim.Start("")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sim.Close() })

				g1 := startSimGateway(t, st, addr, tc.before, 0)
				const dest = "+12015550199"
				m := &store.Outbound{SenderJID: "a@example.com/x", SenderNumber: "+12015550100", Dest: dest, Body: text,
					Parts: g1.Parts(dest, text), WantReceipt: true}
				if _, n := tc.after.Count(text); n == m.Parts {
					t.Fatalf("%d parts under both %s and %s", n, tc.before, tc.after)
				}
				total := m.Parts // once a part went, the rest keeps its cut
				if tc.sentBefore == 0 {
					_, total = tc.after.Count(text)
				}
				if err := st.AcceptOutbound(ctx, []*store.Outbound{m}); err != nil {
					t.Fatal(err)
				}
				if tc.sentBefore > 0 {
					// The SMSC throttles the rest: the message goes back
					// to the queue with its first parts sent.
					sim.SetConfig(func(c *smsc.Config) {
						c.SubmitStatus = func(sm *smsc.Message) uint32 {
							if sm.Concat != nil && int(sm.Concat.Seq) > tc.sentBefore {
								return 0x58 // ESME_RTHROTTLED
							}
							return 0
						}
					})
					ms, err := st.ClaimOutbound(ctx, "i1", 10, time.Minute)
					if err != nil || len(ms) != 1 {
						t.Fatalf("claimed %d, %v", len(ms), err)
					}
					g1.submit(ctx, ms[0])
					if state, why, err := st.MessageState(ctx, m.ID); err != nil || state != store.StateQueued {
						t.Fatalf("after the throttle: %s (%s), %v; want queued", state, why, err)
					}
					if got := len(sim.Messages()); got != tc.sentBefore {
						t.Fatalf("%d parts sent before the restart, want %d", got, tc.sentBefore)
					}
					sim.SetConfig(func(c *smsc.Config) { c.SubmitStatus = nil })
				}
				g1.stop()

				g2 := startSimGateway(t, st, addr, tc.after, tc.maxParts)
				runCtx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- g2.Run(runCtx, time.Second) }()
				defer func() {
					cancel()
					<-done
				}()
				var state, why string
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					if state, why, err = st.MessageState(ctx, m.ID); err != nil {
						t.Fatal(err)
					}
					if state == store.StateDelivered || state == store.StateFailed || time.Now().After(deadline) {
						break
					}
				}
				if tc.failed != "" {
					if state != store.StateFailed || !strings.Contains(why, tc.failed) {
						t.Fatalf("state %s (%s), want failed (…%s…)", state, why, tc.failed)
					}
					if got := len(sim.Messages()); got != tc.sentBefore {
						t.Fatalf("the SMSC took %d parts, want the %d sent before", got, tc.sentBefore)
					}
					return
				}
				if state != store.StateDelivered {
					t.Fatalf("state %s (%s), want delivered", state, why)
				}
				checkConcat(t, sim.Messages(), uint8(m.ID), total, tc.dc, text)
			})
		})
	}
}

// checkConcat checks that msgs are the parts of one concatenated message:
// reference ref, total parts, each part once, all in data coding dc, whose
// text joined is text.
func checkConcat(t *testing.T, msgs []*smsc.Message, ref uint8, total int, dc byte, text string) {
	t.Helper()
	if len(msgs) != total {
		t.Fatalf("the SMSC took %d parts, want %d", len(msgs), total)
	}
	slices.SortFunc(msgs, func(a, b *smsc.Message) int { return int(a.Concat.Seq) - int(b.Concat.Seq) })
	var joined strings.Builder
	for i, p := range msgs {
		c := p.Concat
		if c == nil || p.ESMClass&coding.ESMClassUDHI == 0 || c.Ref != uint16(ref) || int(c.Total) != total || int(c.Seq) != i+1 {
			t.Fatalf("part %d: esm_class 0x%02X, concatenation %+v; want UDHI, ref %d, %d of %d", i+1, p.ESMClass, c, ref, i+1, total)
		}
		if p.DataCoding != dc {
			t.Errorf("part %d: data_coding 0x%02X, want 0x%02X", i+1, p.DataCoding, dc)
		}
		joined.WriteString(p.Text)
	}
	if joined.String() != text {
		t.Errorf("the parts read %q, want %q", joined.String(), text)
	}
}
