//go:build faults

package faults

import (
	"context"
	"syscall"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
)

// Drain deadlines. A gateway killed with messages claimed leaves them to
// its lease (2 minutes, smsgw claimLease) before another process takes
// them; notices wait for theirs (30 s).
const (
	drainShort = 90 * time.Second
	drainLease = 200 * time.Second
)

// scenario is one fault under load.
type scenario struct {
	name      string
	opts      options
	instances int
	before    func(e *env)           // after the instances started, before the load
	fault     func(e *env)           // a third into the load
	drain     time.Duration          // at most this long after the load for the tally to balance
	bounds    func(e *env) bounds    // what the scenario tolerates
	after     func(e *env, r result) // extra checks
}

// Bounds on duplicates, per fault, from the delivery rules: a submit_sm
// whose response never comes is sent again (at-least-once), and a notice the
// XMPP server has not confirmed is sent again.
//
//   - the SMSC drops or the bind is lost: one window of submits;
//   - the SMSC hangs: every window sent until the bind is declared dead
//     (enquire_link unanswered), see TestSMSCStall;
//   - a gateway dies: the messages it had claimed (a submit answered but
//     whose SMSC id was not yet recorded counts too);
//   - on the XMPP side: one notice batch.
func perFault(e *env, smscPerFault int, crash bool) bounds {
	n := len(e.faults)
	return bounds{crash: crash, dupSMSC: smscPerFault * n, dupReports: noticeBatch * n, dupMO: noticeBatch * n}
}

func (sc scenario) run(t *testing.T) {
	t.Parallel()
	sc.runSerial(t)
}

func (sc scenario) runSerial(t *testing.T) {
	begin := time.Now()
	e := newEnv(t, sc.name, sc.opts)
	for n := range max(sc.instances, 1) {
		e.start(n)
	}
	e.login()
	if sc.before != nil {
		sc.before(e)
	}
	ctx := context.Background()
	carrierCtx, stopCarrier := context.WithCancel(ctx)
	carrierDone := make(chan struct{})
	go func() { e.carrier.run(carrierCtx); close(carrierDone) }()
	defer func() { stopCarrier(); <-carrierDone }()
	moCtx, stopMO := context.WithCancel(ctx)
	defer stopMO()

	loadDone := make(chan struct{})
	go func() { e.runLoad(ctx, loadTime(), moCtx); close(loadDone) }()
	time.Sleep(loadTime() / 3)
	if sc.fault != nil {
		sc.fault(e)
	}
	<-loadDone
	e.t.Logf("load over after %v; draining", time.Since(begin).Round(100*time.Millisecond))
	e.drain(ctx, sc.drain)
	time.Sleep(2 * time.Second) // late duplicates
	stopMO()
	r := e.verdict()
	e.check(r, sc.bounds(e))
	if sc.after != nil {
		sc.after(e, r)
	}
	t.Logf("scenario %s took %v", sc.name, time.Since(begin).Round(time.Second))
}

// kill9 kills instance 0 with SIGKILL and, with restart, starts it again.
func kill9(restart bool) func(e *env) {
	return func(e *env) {
		inst := e.instances[0]
		e.fault()
		inst.signal(syscall.SIGKILL, 10*time.Second)
		e.t.Logf("%s killed with SIGKILL", inst.name)
		if restart {
			time.Sleep(time.Second)
			e.start(0)
		}
	}
}

// TestTwoInstances runs two gateways on one PostgreSQL behind ejabberd,
// which spreads the component's stanzas over both connections, and kills
// one with SIGKILL: the survivor takes over its work after the leases.
func TestTwoInstances(t *testing.T) {
	scenario{
		name:      "two-instances",
		instances: 2,
		fault:     kill9(false),
		drain:     drainLease,
		bounds:    func(e *env) bounds { return perFault(e, claimed, true) },
	}.runWith(t, func() options { return options{ejabberd: true, dsn: testenv.StartPostgres(t)} })
}

// TestKill9 kills the gateway mid-load and starts it again: unsent work
// resumes (after the dead process's leases run out), receipts for messages
// submitted before the kill are matched after it.
func TestKill9(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			var o options
			if engine == "postgres" {
				o.dsn = testenv.StartPostgres(t)
			}
			scenario{
				name: "kill9-" + engine, opts: o, fault: kill9(true), drain: drainLease,
				bounds: func(e *env) bounds { return perFault(e, claimed, true) },
			}.run(t)
		})
	}
}

// TestSMSCRestart closes the SMSC (every connection drops, the port
// refuses) for three seconds and starts a new one on the same address.
func TestSMSCRestart(t *testing.T) {
	scenario{
		name: "smsc-restart",
		fault: func(e *env) {
			e.fault()
			e.restartSMSC(3 * time.Second)
		},
		drain:  drainShort,
		bounds: func(e *env) bounds { return perFault(e, window, false) },
	}.run(t)
}

// TestSMSCStall makes the SMSC stop answering while it holds the
// connections, for longer than resp_timeout plus enquire_link, then recover.
func TestSMSCStall(t *testing.T) {
	scenario{
		name: "smsc-stall",
		fault: func(e *env) {
			e.fault()
			sim := e.currentSim()
			sim.SetConfig(func(c *smsc.Config) { c.Stall = true })
			e.t.Logf("SMSC stalled")
			time.Sleep(8 * time.Second)
			sim.SetConfig(func(c *smsc.Config) { c.Stall = false })
			e.t.Logf("SMSC answers again")
		},
		drain: drainShort,
		bounds: func(e *env) bounds {
			// The first unanswered request ends the bind: what was in
			// the window then may have reached the SMSC, and is sent
			// again (allow a second window for a submit racing the drop).
			// Messages from phones the SMSC sends again on the new bind
			// (it never got their responses) are recognised as resends:
			// none reaches a user twice.
			b := perFault(e, 2*window, false)
			b.dupMO = 0
			return b
		},
		after: func(e *env, r result) {
			if n := e.countLog("no submit_sm_resp: outcome unknown"); n == 0 {
				e.t.Errorf("the stall left no submit with an unknown outcome: it did not hit the load")
			}
		},
	}.run(t)
}

// TestProsodyRestart restarts the XMPP server mid-load; the users log in
// again at once (same resources), as clients do.
func TestProsodyRestart(t *testing.T) {
	scenario{
		name: "prosody-restart",
		fault: func(e *env) {
			e.fault()
			e.xmpp.Restart(e.t)
			e.login()
		},
		drain:  drainShort,
		bounds: func(e *env) bounds { return perFault(e, claimed, true) },
	}.run(t)
}

// TestPostgresRestart stops PostgreSQL (fast shutdown) for three seconds
// mid-load and starts it again on the same port.
func TestPostgresRestart(t *testing.T) {
	var pg *testenv.Postgres
	scenario{
		name: "postgres-restart",
		fault: func(e *env) {
			e.fault()
			pg.Stop(e.t)
			time.Sleep(3 * time.Second)
			pg.Start(e.t)
		},
		drain:  drainLease,
		bounds: func(e *env) bounds { return perFault(e, claimed, false) },
	}.runWith(t, func() options {
		pg = testenv.StartPrivatePostgres(t)
		return options{dsn: pg.DSN}
	})
}

// runWith is run with options made once the test is parallel.
func (sc scenario) runWith(t *testing.T, opts func() options) {
	t.Parallel()
	sc.opts = opts()
	sc.runSerial(t)
}

// TestThrottle: the SMSC throttles in bursts while the load runs
// (ESME_RTHROTTLED for one second in three, ESME_RMSGQFUL now and then):
// every message gets through
// or fails back, nothing is submitted twice (every answer was definite).
func TestThrottle(t *testing.T) {
	scenario{
		name: "throttle",
		before: func(e *env) {
			t0 := time.Now()
			var n int
			e.currentSim().SetConfig(func(c *smsc.Config) {
				c.SubmitStatus = func(m *smsc.Message) uint32 {
					if m.SystemID != systemID {
						return 0
					}
					n++ // the simulator calls this on one session's reader at a time
					since := time.Since(t0)
					switch {
					case since > loadTime():
						return 0 // the bursts end with the load
					case since%(3*time.Second) < time.Second:
						return 0x58 // ESME_RTHROTTLED
					case n%13 == 0:
						return 0x14 // ESME_RMSGQFUL
					}
					return 0
				}
			})
		},
		drain:  drainShort,
		bounds: func(e *env) bounds { return bounds{} },
		after: func(e *env, r result) {
			if n := e.countLog("SMSC busy; will resubmit"); n == 0 {
				e.t.Errorf("no submit was throttled")
			} else {
				e.t.Logf("%d throttled submits", n)
			}
			if n := e.countLog("smpp: SMSC throttling (ESME_RTHROTTLED); submits on this bind paused"); n == 0 {
				e.t.Errorf("the bind never paused for the throttling")
			} else {
				e.t.Logf("%d throttling pauses", n)
			}
		},
	}.run(t)
}

// TestSIGTERM stops the gateway with SIGTERM under load and starts it
// again: the shutdown drains what is in flight, so everything accepted is
// reported and nothing reaches the SMSC twice.
func TestSIGTERM(t *testing.T) {
	scenario{
		name: "sigterm",
		fault: func(e *env) {
			inst := e.instances[0]
			e.fault()
			begin := time.Now()
			if !inst.signal(syscall.SIGTERM, 20*time.Second) {
				e.t.Errorf("%s did not exit within 20s of SIGTERM", inst.name)
			} else if inst.err != nil {
				e.t.Errorf("%s exited with %v after SIGTERM:\n%s", inst.name, inst.err, inst.tail(20))
			}
			e.t.Logf("%s stopped by SIGTERM in %v", inst.name, time.Since(begin).Round(time.Millisecond))
			time.Sleep(time.Second)
			e.start(0)
		},
		drain: drainShort,
		bounds: func(e *env) bounds {
			// Nothing may reach the SMSC twice. Notices written while the
			// stream closes are not confirmed and are sent again after the
			// restart (at-least-once), so the XMPP side keeps its bound.
			return perFault(e, 0, false)
		},
	}.runWith(t, func() options { return options{dsn: testenv.StartPostgres(t)} })
}
