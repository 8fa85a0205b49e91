package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/component"
	"switchboard/internal/metrics"
	"switchboard/roster"
	"switchboard/roster/verify"
	"switchboard/router"
	"switchboard/smsgw"
	"switchboard/smsgw/coding"
	"switchboard/smsgw/smpp"
	"switchboard/store"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (TOML)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile (pprof) to this file until shutdown")
	memprofile := fs.String("memprofile", "", "write an allocation profile (pprof) to this file at shutdown")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		stop, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if *memprofile != "" {
		defer writeAllocProfile(*memprofile, stderr)
	}
	if fs.NArg() > 0 {
		return usageError{"serve takes no arguments besides its flags"}
	}
	cfg, err := loadConfig(*path, os.Environ())
	if err != nil {
		return err
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		// The live heap is small (tens of MB) and short-lived garbage per
		// message is most of it; collecting at 200 % growth instead of
		// 100 % took about a tenth off the CPU per message in the bench,
		// and 400 % another 4–5 % (peak RSS 85 → 105 MB at full speed,
		// 64 → 79 MB with 100,000 messages waiting).
		debug.SetGCPercent(gcPercent)
	}
	cfg.instance = instanceName()
	log := newServeLogger(cfg.Log, stderr)
	defer reloadOnHangup(ctx, *path, cfg, log.With().Str("instance", cfg.instance).Logger())()
	return run(ctx, cfg, log)
}

// gcPercent is the garbage collector's target unless GOGC is set.
const gcPercent = 400

func newLogger(c LogConfig, w io.Writer) zerolog.Logger {
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}
	}
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// isTerminal reports whether w is a terminal. Colour codes anywhere else
// (a file, a pipe, journald) are noise in the text.
func isTerminal(w io.Writer) bool {
	c, ok := w.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	// Control, unlike Fd, leaves the file in non-blocking mode.
	if err := rc.Control(func(fd uintptr) { tty = isatty.IsTerminal(fd) }); err != nil {
		return false
	}
	return tty
}

// storeWait bounds how long shutdown waits, before it closes the XMPP
// stream, for the messages read from users to be stored; those that are
// not get an error while it can still reach their senders.
const storeWait = 10 * time.Second

// drainTimeout bounds how long shutdown waits for submissions in flight.
const drainTimeout = 10 * time.Second

// stopTimeout bounds the whole shutdown: past it, a store or server that
// does not answer (a hung PostgreSQL) is given up, the store left unclosed,
// and serve returns an error. Under the 30 s that systemd (TimeoutStopSec)
// and the compose file (stop_grace_period) give before SIGKILL, so the log
// says why.
const stopTimeout = 25 * time.Second

// run wires the gateway and serves until ctx ends. Shutdown goes in order:
// store what was read from users (or answer it with errors, see storeWait),
// close the XMPP stream and store what the server sent meanwhile, let
// submissions in flight get their responses, unbind from the SMSC, close
// the store.
func run(ctx context.Context, cfg *Config, log zerolog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := store.OpenExclusive(ctx, cfg.Store.DSN)
	if err != nil {
		return err
	}
	abandoned := false // the shutdown gave up on the store (see stopTimeout)
	defer func() {
		if abandoned {
			return
		}
		if err := st.Close(); err != nil {
			log.Error().Err(err).Msg("closing store")
		}
	}()
	instance := cfg.instance
	if instance == "" {
		instance = instanceName()
	}
	log = log.With().Str("instance", instance).Logger()
	starting := log.Info().Str("version", version()).Str("store", st.Engine())
	if st.Engine() == "sqlite" {
		starting.Str("sqlite", store.SQLiteLibrary)
	}
	starting.Int("schema", store.Schema()).Str("xmpp_component", cfg.XMPP.Component).Msg("starting")

	promReg, mx := newMetrics()
	mx.SetStore(st)
	st.OnCommit(mx.StoreCommit)
	compJID := jid.MustParse(cfg.XMPP.Component)
	connected := make(chan struct{}, 1) // the component connected: see heartbeat
	var gw *smsgw.Gateway
	rt := router.New(router.Config{
		Component:     compJID,
		Domains:       cfg.XMPP.Domains,
		DefaultRegion: cfg.Phone.DefaultRegion,
		Validity:      cfg.SMS.Validity.D(),
		MaxParts:      cfg.SMS.MaxParts,
		// The gateway is built after the router, its SMSCs after both.
		Parts:         func(dest, text string) int { return gw.Parts(dest, text) },
		FallbackAfter: fallbackAfter(cfg.Routing.SMSFallbackAfter.D()),
		Limits: router.Limits{
			AllowedRegions:      cfg.Limits.AllowedCountries,
			BlockedPrefixes:     cfg.Limits.BlockedPrefixes,
			PerUserMinute:       max(cfg.Limits.PerUserMinute, 0),
			PerUserDay:          max(cfg.Limits.PerUserDay, 0),
			GlobalMinute:        max(cfg.Limits.GlobalMinute, 0),
			ShortCodeReply:      cfg.Limits.ShortCodeReply.D(),
			RelaysPerUserMinute: max(cfg.Limits.RelaysPerUserMinute, 0),
		},
		Instance:  instance,
		Logger:    log,
		WakeSMS:   func() { gw.Wake() },
		Handoff:   handoff{&gw},
		OnRefused: mx.Refusal,
		OnMessage: mx.Message,
	}, st)
	// Receipts' notices go straight to this instance's router, leased to it.
	st.HandNotices(instance, router.NoticeLease, rt.HandNotices)
	gw = smsgw.New(smsgw.Config{
		Instance:      instance,
		Concurrency:   submitSlots(append([]SMPPConfig{cfg.SMPP}, cfg.SMSCs...)),
		MaxAttempts:   cfg.SMS.MaxAttempts,
		MaxParts:      cfg.SMS.MaxParts,
		Reassembly:    cfg.SMS.Reassembly.D(),
		ReceiptWait:   cfg.SMS.ReceiptWait.D(),
		DefaultRegion: cfg.Phone.DefaultRegion,
		NoRecipient:   router.ErrNoRecipient,
		OnFinal:       rt.Wake,
		OnMessage:     mx.Message,
		OnSubmit:      mx.PartSubmitted,
		OnReceipt:     mx.ReceiptLatency,
		Logger:        log,
	}, st, rt)

	ab := cfg.AddressBook
	book := roster.New(roster.Config{
		Component:     compJID,
		Group:         ab.Group,
		MaxContacts:   ab.MaxContacts,
		DailyLookups:  ab.DailyLookups,
		DefaultRegion: cfg.Phone.DefaultRegion,
		Refuse:        rt.Forbidden,
		Logger:        log,
	}, st)
	reg := cfg.Registration
	verifier := verify.New(verify.Config{
		Mode:          reg.Verification,
		Sender:        reg.Sender,
		Text:          reg.Text,
		CodeTTL:       reg.CodeTTL.D(),
		MaxTries:      reg.MaxTries,
		Resend:        reg.ResendAfter.D(),
		PerNumberDay:  reg.PerNumberDay,
		PerJIDDay:     reg.PerJIDDay,
		GlobalHour:    reg.GlobalHour,
		DefaultRegion: cfg.Phone.DefaultRegion,
		Refuse:        rt.Forbidden,
		Parts:         gw.Parts,
		Logger:        log,
		WakeSMS:       func() { gw.Wake() },
		// The store marked the address books holding the numbers whose
		// owner changed; the roster worker pushes them now.
		OnBind:   func(context.Context, jid.JID, string) { book.Wake() },
		OnUnbind: func(ctx context.Context, owner jid.JID, _ string) { _ = book.Forget(ctx, owner) },
	}, st)

	var clients []*smpp.Client
	for _, sc := range append([]SMPPConfig{cfg.SMPP}, cfg.SMSCs...) {
		st.SetReceiptIDs(sc.Name, sc.ReceiptIDs)
		alphabet, _ := coding.ParseAlphabet(sc.DefaultAlphabet) // validated
		var smppTLS *tls.Config
		if sc.TLS {
			if smppTLS, err = tlsConfig(sc); err != nil {
				return err
			}
		}
		// The SMSC may send a message refused on one bind again on another.
		holds := new(smpp.Holds)
		for b := range sc.Binds {
			client := smpp.NewClient(smpp.Config{
				Addr:        sc.Addr,
				TLS:         smppTLS,
				SystemID:    sc.SystemID,
				Password:    sc.Password,
				SystemType:  sc.SystemType,
				Window:      sc.Window,
				Throughput:  sc.Throughput,
				EnquireLink: sc.EnquireLink.D(),
				RespTimeout: sc.RespTimeout.D(),
				Handler:     gw.Handler(sc.Name),
				Holds:       holds,
				// Receipts and messages from phones wait on a store commit;
				// many at once share it (group commit), so let many wait.
				DispatchWorkers: 4 * max(sc.Window, 16),
				OnResponse:      mx.SMPPResponse(sc.Name),
				Logger:          log.With().Str("smsc_name", sc.Name).Int("bind", b+1).Logger(),
				OnState: func(bound bool) {
					if bound {
						gw.Wake()
					}
				},
			})
			gw.AddLink(smsgw.Link{SMSC: sc.Name, Prefixes: sc.Prefixes, Alphabet: alphabet, Client: client})
			clients = append(clients, client)
			mx.AddSMPP(sc.Name, client)
		}
	}

	var xmppTLS *tls.Config
	if cfg.XMPP.TLS {
		host, _, _ := net.SplitHostPort(cfg.XMPP.Server)
		xmppTLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	comp := component.New(component.Config{
		JID:             compJID,
		SyncTo:          jid.MustParse(cfg.XMPP.Domains[0]),
		Server:          cfg.XMPP.Server,
		Secret:          cfg.XMPP.Secret,
		TLS:             xmppTLS,
		Version:         version(),
		Registrar:       verifier,
		Sessions:        st,
		Archive:         st,
		Presences:       st,
		AddressBook:     book,
		Admins:          admins(cfg.XMPP.Admins),
		Admin:           st,
		FetchPrivate:    ab.FetchPrivate,
		DefaultRegion:   cfg.Phone.DefaultRegion,
		Preferences:     st,
		DefaultFallback: cfg.Routing.SMSFallbackAfter.D(),
		// Several instances connected as one component (ejabberd):
		// answers to one's requests that the server gives another are
		// handed on through PostgreSQL.
		HandOn:    handOnAnswers(st),
		HandOnMax: store.MaxAnswer,
		// At shutdown the stream stays open until what users sent is
		// stored, or answered with an error if the store does not answer.
		BeforeClose: func(ctx context.Context) {
			if rt.Drain(storeWait) {
				return
			}
			n := rt.RefuseUnstored(ctx)
			log.Error().Int("messages", n).Stringer("after", storeWait).
				Msg("shutdown: the store did not store messages from users in time; their senders got an error, to send them again later")
		},
		OnConnect: func() {
			rt.Wake()
			select {
			case connected <- struct{}{}:
			default:
			}
		},
		Logger: log,
	}, rt)
	rt.SetXMPP(comp)
	mx.SetXMPP(comp)
	verifier.SetNotifier(comp)
	book.SetPusher(comp)

	// The SMPP client outlives the gateway, so submissions in flight at
	// shutdown still get their responses, and inbound messages are still
	// stored, before the unbind.
	smppCtx, stopSMPP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSMPP()
	errc := make(chan error, 8+len(clients))
	var wg sync.WaitGroup
	start := func(name string, ctx context.Context, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	var smppDone sync.WaitGroup
	for _, client := range clients {
		smppDone.Add(1)
		go func() {
			defer smppDone.Done()
			if err := client.Run(smppCtx); err != nil {
				errc <- fmt.Errorf("smpp: %w", err)
			}
		}()
	}
	// The router stops after the XMPP session: the component reads until
	// the server has closed its stream, and what it reads meanwhile must
	// still reach the router's intake and be stored.
	routerCtx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouter()
	start("xmpp", ctx, func(ctx context.Context) error {
		defer stopRouter()
		return comp.Run(ctx)
	})
	start("router", routerCtx, rt.Run)
	if st.Shared() {
		start("answers", ctx, func(ctx context.Context) error {
			if err := st.ListenAnswers(ctx, comp.Answer, nil); err != nil {
				log.Error().Err(err).Msg("listening for answers handed on by other instances failed; requests whose answers reach another instance will time out")
			}
			return nil
		})
	}
	start("heartbeat", ctx, func(ctx context.Context) error {
		heartbeat(ctx, st, instance, comp.Connected, connected, log)
		return nil
	})
	start("roster", ctx, book.Run)
	start("smsgw", ctx, func(ctx context.Context) error { return gw.Run(ctx, drainTimeout) })
	if addr := cfg.HTTP.Listen; addr != "" {
		h := mx.Handler(promReg, log)
		start("http", ctx, func(ctx context.Context) error { return metrics.Serve(ctx, addr, h, log) })
	}
	if keep := cfg.Archive.Retention.D(); keep > 0 {
		start("prune", ctx, func(ctx context.Context) error { return prune(ctx, st, keep, time.Hour, log) })
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	case runErr = <-errc:
		log.Error().Err(runErr).Msg("stopping after a fatal error")
	}
	cancel()
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		stopSMPP()
		smppDone.Wait()
		// Messages from phones stored while the binds drained were
		// handed to the router after it stopped: given back, to be
		// claimed at the next start rather than when their lease ends.
		rt.ReleaseHanded(context.WithoutCancel(ctx))
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(stopTimeout):
		// What was stored is taken up again at the next start (a message
		// in flight is leased). What the router read and could not store
		// yet is lost: the stream is closed, no error reaches its sender.
		abandoned = true
		log.Error().Stringer("after", stopTimeout).
			Msg("shutdown did not finish (a store or server that does not answer?); stopping anyway, what was stored is taken up at the next start")
		if n := rt.Unstored(); n > 0 {
			log.Error().Int64("messages", n).
				Msg("messages from users read but not stored (the store did not answer) are lost, and their senders got no error")
		}
		return errors.Join(runErr, fmt.Errorf("shutdown did not finish within %v", stopTimeout))
	}
	log.Info().Msg("stopped")
	return runErr
}

// heartbeatEvery is how often a running instance records that it is
// connected to the XMPP server; check takes one seen within
// 3*heartbeatEvery for running.
const heartbeatEvery = 10 * time.Second

// heartbeat records in the store, every heartbeatEvery and at once when
// the component connects, whether this instance is connected to the XMPP
// server, so that `check` opens no second component connection beside it
// (on ejabberd the end of the second one drops the privileges of both). It
// says it is gone when the connection ends and when ctx does.
func heartbeat(ctx context.Context, st *store.Store, name string, isConnected func() bool, connected <-chan struct{}, log zerolog.Logger) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	seen := false
	for {
		var err error
		switch up := isConnected(); {
		case up:
			err = st.InstanceSeen(ctx, name)
			seen = err == nil
		case seen:
			err = st.InstanceGone(ctx, name)
			seen = err != nil
		}
		if err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("recording the XMPP connection in the store failed")
		}
		select {
		case <-ctx.Done():
			if seen {
				gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_ = st.InstanceGone(gctx, name)
				cancel()
			}
			return
		case <-t.C:
		case <-connected:
		}
	}
}

func instanceName() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

func tlsConfig(c SMPPConfig) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(c.Addr)
	t := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.TLSServer != "" {
		t.ServerName = c.TLSServer
	}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca: %s holds no PEM certificate", c.TLSCA)
		}
		t.RootCAs = pool
	}
	return t, nil
}

// fallbackAfter maps the configuration's 0 (disabled) to the router's negative.
func fallbackAfter(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// prune deletes finished messages older than keep, now and then every
// interval, until ctx ends. A failure is logged and tried again next time.
func prune(ctx context.Context, st *store.Store, keep, interval time.Duration, log zerolog.Logger) error {
	log = log.With().Str("component", "prune").Logger()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		n, err := st.Prune(ctx, time.Now().Add(-keep))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error().Err(err).Msg("pruning the archive failed")
		case n > 0:
			log.Info().Int64("deleted", n).Stringer("retention", keep).Msg("pruned the archive")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func admins(list []string) []jid.JID {
	var out []jid.JID
	for _, a := range list {
		if j, err := jid.Parse(a); err == nil {
			out = append(out, j.Bare())
		}
	}
	return out
}

// handoff passes the router's new SMS to the gateway, which is built after
// the router (it needs the router as its inbox).
type handoff struct{ gw **smsgw.Gateway }

func (h handoff) Reserve(max int) (string, time.Time, int)  { return (*h.gw).Reserve(max) }
func (h handoff) Take(msgs []*store.Outbound, reserved int) { (*h.gw).Take(msgs, reserved) }

// submitSlots is how many messages the gateway submits at once: sixteen
// times what the binds' windows hold together (at least 64), so the window
// is the limit, not the gateway, and the messages that wait for a window
// slot are in memory, handed straight from the router, rather than stored
// queued and claimed back (a transaction and a row update each; the claims
// were 6 % of the CPU at 5,000 msg/s on SQLite, and the costliest
// statement on PostgreSQL, where going from four windows to sixteen took a
// backlog from 2,248 to 2,444 msg/s, mean of three runs each). A bind
// with a throughput limit holds no more waiting than 30 s of its rate;
// and whatever the SMSC's pace, a message not sent by half its 2-minute
// lease goes back to the queue (smpp Submit.SendBy) rather than being sent
// while another claim may take it.
func submitSlots(smscs []SMPPConfig) int {
	n := 0
	for _, sc := range smscs {
		per := 16 * sc.Window
		if sc.Throughput > 0 {
			per = min(per, sc.Window+int(30*sc.Throughput))
		}
		n += per * sc.Binds
	}
	return max(n, 64)
}

// handOnAnswers is what the component hands answers for other instances to
// (see component.Config.HandOn): the store, where it is shared.
func handOnAnswers(st *store.Store) func(context.Context, []byte) error {
	if !st.Shared() {
		return nil
	}
	return st.HandOnAnswer
}
