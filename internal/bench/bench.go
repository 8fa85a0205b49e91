// Package bench measures Switchboard end to end: it plays the XMPP server
// (XEP-0114, "component" mode) or drives real users through Prosody
// ("prosody" mode), runs a fast in-process SMSC sink (package smsgw/smsc)
// that answers every submit_sm and returns a receipt, starts Switchboard as a
// child process so that its CPU time and peak RSS are its own, and reports
// throughput, latency percentiles and cost per message. It can run Kannel
// against the same sink for comparison.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
	"switchboard/store"
)

// Modes.
const (
	ModeComponent = "component" // the bench is the XMPP server
	ModeProsody   = "prosody"   // users log in to a real Prosody
)

// Domains used by every run.
const (
	UserDomain = "bench.test"
	CompDomain = "sms.bench.test"
)

// Options configure a run. Zero values mean the defaults.
type Options struct {
	Mode   string  // ModeComponent (default) or ModeProsody
	N      int     // messages users send to phones; default 20000
	Users  int     // sending users (K), each with a bound number; default 100
	Rate   float64 // messages per second; 0: as fast as Window allows
	Window int     // messages written whose receipt (or, without receipts, submit_sm) has not come; default 100
	// MO is how many messages phones send to users after the MT phase;
	// default N/10, capped at 2000; negative: none. MORate paces them;
	// default 500/s; negative: as fast as moSenders in flight allow.
	MO     int
	MORate float64
	// MOParts is how many SMS parts each message from a phone takes (the
	// sink sends them concatenated); default 1.
	MOParts int
	// DSN is the store: "" means SQLite in the run's temporary directory.
	DSN string
	// SMPPWindow is Switchboard's smpp.window; default 10 (its own default).
	SMPPWindow int
	// NoReceipts makes the sink send no receipts: messages stay waiting for them.
	NoReceipts bool
	// Relay makes users write to other users' numbers instead of phones':
	// Switchboard relays each over XMPP to the number's owner, played by
	// the bench (a client of Prosody's, in that mode), who acknowledges
	// it at once (XEP-0184),
	// and passes the receipt back to the sender. The sink gets no
	// submit_sm; the relayed message reaching its recipient stands for it.
	Relay bool
	// C2STLS makes Prosody require STARTTLS of its clients, as every
	// deployment does, and the bench's users encrypt their streams
	// (ModeProsody only).
	C2STLS bool
	// ReceiptDelay makes the sink send each receipt that long after its
	// submit_sm_resp, as a carrier's come, instead of at once: an SMSC id
	// and its receipt then never share a group commit.
	ReceiptDelay time.Duration
	// Quotas keeps the SMS limits on as an operator would set them, but
	// too high to refuse anything: every batch pays for counting, and every
	// SMS for its destination's country check (allowed_countries US and
	// CA, which the bench's numbers are in). By default they are off.
	Quotas bool
	// SMSC, when set (host:port), is an SMSC of the caller's to use instead
	// of the built-in sink, reached through the same tap (so every figure
	// is taken the same way). It must accept system_id and password
	// "bench" and return receipts whose id: is the submit_sm_resp's
	// message_id. Phones' messages need the built-in sink: MO is skipped.
	SMSC string
	// Binary and Env start Switchboard: Binary serve -config FILE [ServeArgs].
	Binary    string
	Env       []string
	ServeArgs []string
	// Keep leaves the temporary directory (config, log, SQLite file) in place.
	Keep bool
	// Timeout bounds the whole run; default 2 minutes plus 5 ms per message
	// plus twice ReceiptDelay.
	Timeout time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (o *Options) defaults() {
	if o.Mode == "" {
		o.Mode = ModeComponent
	}
	if o.N <= 0 {
		o.N = 20000
	}
	if o.Users <= 0 {
		o.Users = 100
	}
	if o.Users > 999 {
		o.Users = 999
	}
	if o.Window <= 0 {
		o.Window = 100
	}
	if o.MO == 0 {
		o.MO = min(o.N/10, 2000)
	}
	if o.MO < 0 {
		o.MO = 0
	}
	if o.MORate == 0 {
		o.MORate = 500
	}
	o.MOParts = max(o.MOParts, 1)
	if o.SMPPWindow <= 0 {
		o.SMPPWindow = 10
	}
	if o.Timeout <= 0 {
		o.Timeout = 2*time.Minute + time.Duration(o.N)*5*time.Millisecond + 2*o.ReceiptDelay
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Percentiles of a latency distribution.
type Percentiles struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return Percentiles{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: d[len(d)-1]}
}

// Result is what one run measured.
type Result struct {
	Mode, Store string
	N           int
	Rate        float64 // requested rate; 0: unpaced
	Window      int
	SMPPWindow  int
	// ReceiptDelay is the sink's (see Options).
	ReceiptDelay time.Duration
	Relay        bool
	C2STLS       bool // see Options

	Submitted, Receipts, Errors, DupSubmits int
	SubmitSMs                               int // of the run's messages seen at the sink (none when relayed)
	LastError                               string
	MO, MOGot                               int
	MORate                                  float64 // requested; negative: unpaced
	MOParts                                 int

	// MOPerSec is the phones' messages that reached their users per
	// second, first deliver_sm sent → last one read by the client; MOCPUPer1k
	// is Switchboard's CPU for them, seconds per 1,000.
	MOPerSec, MOCPUPer1k float64

	Stalled     bool          // the run ended because nothing more arrived (receipts lost)
	Elapsed     time.Duration // first stanza written → last submit_sm at the sink
	MsgsPerSec  float64       // Submitted / Elapsed
	Steady      float64       // submits/s between the 10th and 90th percentile of submit times
	ReceiptsEnd time.Duration // first stanza written → last receipt at the client

	ToSubmit, ReceiptToClient, PhoneToClient Percentiles

	CPU      time.Duration // Switchboard, MT phase (write of the first stanza to the last receipt)
	CPUPer1k float64       // seconds per 1,000 messages
	PeakRSS  int64         // VmHWM of Switchboard, bytes

	// Switchboard's disk bytes and write system calls per message, MT
	// phase; zero when /proc/PID/io cannot be read. PostgreSQL's writes
	// are its own processes', not counted here.
	DiskPerMsg, WriteCallsPerMsg float64

	// The store's group commits per 1,000 messages and the writes each
	// held on average (accepts, SMSC ids, receipts, notices done, ...),
	// MT phase, from Switchboard's metrics; zero when they cannot be read.
	CommitsPer1k, WritesPerCommit float64

	// Heap objects and bytes Switchboard allocated per message, MT phase,
	// from its metrics (the Go collector); zero when they cannot be read.
	// Steadier from run to run than the CPU, whose share they drive.
	AllocsPerMsg, AllocBytesPerMsg float64

	// Others is CPU per 1,000 messages of other processes in the path
	// (Prosody), and of the bench itself ("bench": its clients or XMPP
	// server, and the SMSC sink), which shares the machine's cores.
	Others map[string]float64

	LoadStart, LoadEnd float64 // 1-minute load average before and after
}

// Run runs one benchmark.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	if o.Binary == "" {
		return nil, errors.New("bench: no Switchboard binary")
	}
	if o.ReceiptDelay < 0 {
		return nil, errors.New("bench: the receipt delay is negative")
	}
	if o.ReceiptDelay > 0 && (o.SMSC != "" || o.NoReceipts) {
		return nil, errors.New("bench: a receipt delay needs the built-in sink's receipts: not with -smsc or -no-receipts")
	}
	if o.Relay && (o.ReceiptDelay > 0 || o.NoReceipts || o.Users < 2) {
		return nil, errors.New("bench: -relay needs at least two users, and the recipients' receipts: not with -receipt-delay or -no-receipts")
	}
	if o.C2STLS && o.Mode != ModeProsody {
		return nil, errors.New("bench: -c2s-tls is for -mode prosody: in component mode the bench is the server")
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return nil, err
	}
	if o.Keep {
		fmt.Fprintf(o.Log, "bench: keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.Mode == ModeProsody {
		// Prosody runs as its own user and must reach the directory.
		os.Chmod(dir, 0o755)
	}

	dsn := o.DSN
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	if err := bindUsers(ctx, dsn, o.Users); err != nil {
		return nil, err
	}

	var (
		sink      *smsc.Server
		sinkAddr  string
		closeSink func()
		bound     func() int
	)
	if o.SMSC != "" {
		o.MO = 0 // phones' messages need the built-in sink
	}
	rec := newRecorder(o.N, o.MO)
	rec.moLen = moLen(o.MOParts)
	rec.quiet += o.ReceiptDelay
	if o.SMSC != "" {
		sinkAddr, bound, closeSink, err = startProxy(rec, o.SMSC)
	} else {
		outcome := smsc.OutcomeDelivered
		if o.NoReceipts {
			outcome = smsc.OutcomeNone
		}
		sink, sinkAddr, closeSink, err = startSink(rec, outcome, o.ReceiptDelay)
		bound = func() int { return sink.Bound() }
	}
	if err != nil {
		return nil, err
	}
	defer closeSink()

	secret := randomHex(12)
	var drv driver
	switch o.Mode {
	case ModeComponent:
		drv, err = newComponentDriver(rec, o)
	case ModeProsody:
		drv, err = newProsodyDriver(ctx, rec, o, dir, secret)
	default:
		err = fmt.Errorf("bench: unknown mode %q", o.Mode)
	}
	if err != nil {
		return nil, err
	}
	// The writer, once started, ends before the driver is gone: on an early
	// return it is told to stop (it may wait on the window) and waited for
	// after drv.close, which unblocks its writes.
	var writer sync.WaitGroup
	defer func() {
		cancel()
		rec.wake()
		writer.Wait()
	}()
	defer drv.close()

	limit, countries := -1, ""
	if o.Quotas {
		limit, countries = 1_000_000_000, `allowed_countries = ["US", "CA"]`
	}
	// Switchboard's metrics, for its group commits (see commitStats).
	metricsPort, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort))
	cfgPath := filepath.Join(dir, "switchboard.toml")
	cfg := fmt.Sprintf(`[xmpp]
component = %q
server = %q
secret = %q
domains = [%q]

[smpp]
addr = %q
system_id = "bench"
password = "bench"
window = %d
resp_timeout = "30s"

[store]
dsn = %q

[registration]
verification = "none"

[routing]
sms_fallback_after = "0"

[limits]
per_user_minute = %[8]d
per_user_day = %[8]d
global_minute = %[8]d
relays_per_user_minute = %[8]d
%[10]s

[log]
level = "warn"

[http]
listen = %[9]q
`, CompDomain, drv.componentAddr(), secret, UserDomain, sinkAddr, o.SMPPWindow, dsn, limit, metricsAddr, countries)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "switchboard.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Binary, append([]string{"serve", "-config", cfgPath}, o.ServeArgs...)...)
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	sb, err := startChild(cmd, logf)
	if err != nil {
		return nil, fmt.Errorf("bench: start switchboard: %w", err)
	}
	stop := func() { sb.stop(20 * time.Second) }
	defer stop()
	fail := func(err error) (*Result, error) {
		stop()
		return nil, fmt.Errorf("%w (switchboard log: %s)", err, tail(filepath.Join(dir, "switchboard.log"), 5))
	}
	pid := cmd.Process.Pid

	if err := drv.start(ctx, secret, sb); err != nil {
		return fail(err)
	}
	for bound() == 0 {
		select {
		case <-ctx.Done():
			return fail(errors.New("bench: switchboard did not bind to the SMSC sink"))
		case <-sb.done:
			return fail(fmt.Errorf("bench: switchboard exited: %v", sb.err))
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Fprintf(o.Log, "bench: %s mode, %s, %d messages from %d users, rate %s, window %d, smpp window %d\n",
		o.Mode, engine(dsn), o.N, o.Users, rateText(o.Rate), o.Window, o.SMPPWindow)

	res := &Result{Mode: o.Mode, Store: engine(dsn), N: o.N, Rate: o.Rate, Window: o.Window, SMPPWindow: o.SMPPWindow,
		ReceiptDelay: o.ReceiptDelay, Relay: o.Relay, C2STLS: o.C2STLS, MO: o.MO, MORate: o.MORate, MOParts: o.MOParts}
	res.LoadStart = loadAvg()
	cpu0 := cpuTime0(pid)
	io0, ioErr0 := ioCounters(pid)
	// The metrics listener starts beside the SMPP binds, so it may not
	// listen yet.
	commits0, commitsErr0 := readCommits(ctx, metricsAddr)
	for wait := time.Now().Add(5 * time.Second); commitsErr0 != nil && time.Now().Before(wait) && ctx.Err() == nil; {
		time.Sleep(20 * time.Millisecond)
		commits0, commitsErr0 = readCommits(ctx, metricsAddr)
	}
	others0 := drv.otherCPU()
	self0 := cpuTime0(os.Getpid())
	pgPid := postmaster(ctx, dsn)
	pg0, pgOK := postgresCPU(pgPid)

	werr := make(chan error, 1)
	writer.Go(func() { werr <- writeAll(ctx, rec, drv, o) })
	done := func() bool {
		if rec.nSubmit+rec.errors < o.N {
			return false
		}
		return o.NoReceipts || rec.nReceived+rec.errors >= o.N
	}
	waitErr := rec.wait(ctx, done)
	if waitErr != nil && !errors.Is(waitErr, errStalled) {
		err := waitErr
		rec.mu.Lock()
		s, r, e := rec.nSubmit, rec.nReceived, rec.errors
		rec.mu.Unlock()
		return fail(fmt.Errorf("bench: %d submitted, %d receipts, %d errors of %d: %w", s, r, e, o.N, err))
	}
	if waitErr != nil {
		cancel() // the writer may be blocked on the window
		rec.wake()
		fmt.Fprintf(o.Log, "bench: %v: reporting what arrived\n", waitErr)
		res.Stalled = true
	}
	if err := <-werr; err != nil && waitErr == nil {
		return fail(err)
	}
	cpu1 := cpuTime0(pid)
	io1, ioErr1 := ioCounters(pid)
	commits1, commitsErr1 := readCommits(ctx, metricsAddr)
	others1 := drv.otherCPU()
	self1 := cpuTime0(os.Getpid())
	pg1, _ := postgresCPU(pgPid)
	res.LoadEnd = loadAvg()

	if o.MO > 0 && !res.Stalled {
		if err := sendMO(ctx, rec, sink, o); err != nil {
			return fail(err)
		}
		res.MOCPUPer1k = (cpuTime0(pid) - cpu1).Seconds() / float64(o.MO) * 1000
	}
	res.PeakRSS, _ = peakRSS(pid)
	stop()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	res.Submitted, res.Receipts, res.Errors, res.DupSubmits, res.LastError = rec.nSubmit, rec.nReceived, rec.errors, rec.dupSubmit, rec.lastErr
	res.MOGot = rec.nMO
	res.SubmitSMs = int(rec.submitSM.Load())
	first := slices.Min(rec.written)
	var toSubmit, toClient, moLat []time.Duration
	var submits []int64
	var lastSubmit, lastReceipt int64
	for i := range o.N {
		if rec.submit[i] != 0 {
			toSubmit = append(toSubmit, time.Duration(rec.submit[i]-rec.written[i]))
			submits = append(submits, rec.submit[i])
			lastSubmit = max(lastSubmit, rec.submit[i])
		}
		if rec.received[i] != 0 && rec.receipt[i] != 0 {
			toClient = append(toClient, time.Duration(rec.received[i]-rec.receipt[i]))
		}
		lastReceipt = max(lastReceipt, rec.received[i])
	}
	var moLast int64
	for i := range o.MO {
		if rec.moGot[i] != 0 {
			moLat = append(moLat, time.Duration(rec.moGot[i]-rec.mo[i]))
			moLast = max(moLast, rec.moGot[i])
		}
	}
	if len(moLat) > 0 && moLast > rec.mo[0] {
		res.MOPerSec = float64(len(moLat)) / time.Duration(moLast-rec.mo[0]).Seconds()
	}
	res.Elapsed = time.Duration(lastSubmit - first)
	if res.Elapsed > 0 {
		res.MsgsPerSec = float64(res.Submitted) / res.Elapsed.Seconds()
	}
	if lastReceipt > 0 {
		res.ReceiptsEnd = time.Duration(lastReceipt - first)
	}
	slices.Sort(submits)
	if len(submits) >= 10 {
		a, b := submits[len(submits)/10], submits[len(submits)*9/10]
		if b > a {
			res.Steady = float64(len(submits)*9/10-len(submits)/10) / time.Duration(b-a).Seconds()
		}
	}
	res.ToSubmit, res.ReceiptToClient, res.PhoneToClient = percentiles(toSubmit), percentiles(toClient), percentiles(moLat)
	res.CPU = cpu1 - cpu0
	res.CPUPer1k = res.CPU.Seconds() / float64(o.N) * 1000
	if ioErr0 == nil && ioErr1 == nil {
		res.DiskPerMsg = float64(io1.DiskBytes-io0.DiskBytes) / float64(o.N)
		res.WriteCallsPerMsg = float64(io1.WriteCalls-io0.WriteCalls) / float64(o.N)
	}
	if err := errors.Join(commitsErr0, commitsErr1); err != nil {
		fmt.Fprintf(o.Log, "bench: no group commit figures: %v\n", err)
	} else {
		res.CommitsPer1k = (commits1.commits - commits0.commits) / float64(o.N) * 1000
		if n := commits1.commits - commits0.commits; n > 0 {
			res.WritesPerCommit = (commits1.writes - commits0.writes) / n
		}
		if commits0.mallocs > 0 {
			res.AllocsPerMsg = (commits1.mallocs - commits0.mallocs) / float64(o.N)
			res.AllocBytesPerMsg = (commits1.allocBytes - commits0.allocBytes) / float64(o.N)
		}
	}
	res.Others = map[string]float64{"bench": (self1 - self0).Seconds() / float64(o.N) * 1000}
	for k, v := range others1 {
		res.Others[k] = (v - others0[k]).Seconds() / float64(o.N) * 1000
	}
	if pgOK {
		res.Others["postgres"] = (pg1 - pg0).Seconds() / float64(o.N) * 1000
	}
	return res, nil
}

func cpuTime0(pid int) time.Duration {
	d, _ := cpuTime(pid)
	return d
}

// errStalled means nothing arrived for a while (the recorder's quiet):
// something was lost.
var errStalled = errors.New("bench: no progress")

const stallAfter = 10 * time.Second

// wait blocks until cond (called with rec.mu held) holds, ctx ends, or
// nothing happened for r.quiet.
func (r *recorder) wait(ctx context.Context, cond func() bool) error {
	var ticker sync.WaitGroup
	defer ticker.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ticker.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r.wake()
		}
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = r.now()
	for !cond() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Duration(r.now()-r.progress) > r.quiet {
			return fmt.Errorf("%w for %v", errStalled, r.quiet)
		}
		r.cond.Wait()
	}
	return nil
}

// Sender and destination numbers: users have +1201555 9000+k; phones
// written to and texting back are +1201555 0100… (never bound). The append
// forms build the driver's stanzas without allocating.
func userNumber(k int) string  { return string(appendNumber(nil, 9000+k)) }
func phoneNumber(i int) string { return string(appendPhoneNumber(nil, i)) }
func userJID(k int) string     { return string(appendUserJID(nil, k)) }

func appendPhoneNumber(b []byte, i int) []byte { return appendNumber(b, 100+i%8000) }

// appendNumber appends +1201555 and n (≥ 0) in at least four digits.
func appendNumber(b []byte, n int) []byte {
	b = append(b, "+1201555"...)
	for d := 1000; d > 1 && n < d; d /= 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(n), 10)
}

func appendUserJID(b []byte, k int) []byte {
	b = append(b, "user"...)
	b = strconv.AppendInt(b, int64(k), 10)
	return append(b, "@"+UserDomain...)
}

// bindUsers binds K numbers to K users, as an operator would, before Switchboard starts.
func bindUsers(ctx context.Context, dsn string, k int) error {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range k {
		if _, err := st.Bind(ctx, userNumber(i), userJID(i), "operator"); err != nil {
			return fmt.Errorf("bench: bind %s: %w", userNumber(i), err)
		}
	}
	return nil
}

// body is a message of a typical length carrying its index after '#'.
func body(i int) string { return string(appendBody(nil, i)) }

func appendBody(b []byte, i int) []byte {
	b = append(b, "bench #"...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, ": a message of a typical length, sixty-odd characters."...)
}

// writeAll sends the N messages through drv, paced by o.Rate and bounded by o.Window.
func writeAll(ctx context.Context, rec *recorder, drv driver, o Options) error {
	start := time.Now()
	const batch = 64
	pending := 0
	for i := range o.N {
		if o.Rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))); d > 0 {
				if pending > 0 {
					if err := drv.flush(); err != nil {
						return err
					}
					pending = 0
				}
				time.Sleep(d)
			}
		}
		rec.mu.Lock()
		for {
			acked := rec.nReceived
			if o.NoReceipts {
				acked = rec.nSubmit
			}
			if i-acked-rec.errors < o.Window || ctx.Err() != nil {
				break
			}
			if pending > 0 {
				rec.mu.Unlock()
				if err := drv.flush(); err != nil {
					return err
				}
				pending = 0
				rec.mu.Lock()
				continue
			}
			rec.cond.Wait()
		}
		rec.written[i] = rec.now()
		rec.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := drv.send(i); err != nil {
			return err
		}
		pending++
		if pending >= batch || o.Rate > 0 {
			if err := drv.flush(); err != nil {
				return err
			}
			pending = 0
		}
	}
	return drv.flush()
}

// moSenders is how many messages from phones the sink has in flight at
// most: deliver_sm sent, deliver_sm_resp not yet back.
const moSenders = 64

// moText is the text of message j from a phone, in parts SMS parts (GSM
// 03.38, 153 characters each when concatenated): of moLen(parts)
// characters when more than one.
func moText(j, parts int) string {
	t := fmt.Sprintf("mo #%d from a phone", j)
	if n := moLen(parts); n > 0 {
		t += strings.Repeat(".", n-len(t))
	}
	return t
}

// moLen is the length of a message from a phone in parts SMS parts; 0 for
// one part, whose length varies.
func moLen(parts int) int {
	if parts <= 1 {
		return 0
	}
	return 153*(parts-1) + 100
}

// sendMO has phones text the users, paced by o.MORate (unpaced when
// negative).
func sendMO(ctx context.Context, rec *recorder, sink *smsc.Server, o Options) error {
	// The senders end with sendMO: those still waiting for an answer are
	// cancelled once the outcome is known.
	var senders sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer senders.Wait()
	defer cancel()
	start := time.Now()
	sem := make(chan struct{}, moSenders)
	errc := make(chan error, 1)
	for j := range o.MO {
		if o.MORate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(j) / o.MORate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		rec.mu.Lock()
		rec.mo[j] = rec.now()
		rec.mu.Unlock()
		senders.Go(func() {
			defer func() { <-sem }()
			if err := sink.SendMO(ctx, phoneNumber(j), userNumber(j%o.Users), moText(j, o.MOParts)); err != nil {
				select {
				case errc <- err:
				default:
				}
				rec.wake()
			}
		})
	}
	if err := rec.wait(ctx, func() bool { return rec.nMO >= o.MO || len(errc) > 0 }); err != nil {
		rec.mu.Lock()
		got := rec.nMO
		rec.mu.Unlock()
		return fmt.Errorf("bench: %d of %d messages from phones arrived: %w", got, o.MO, err)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("bench: phone → user: %w", err)
	default:
		return nil
	}
}

func engine(dsn string) string {
	if strings.HasPrefix(dsn, "postgres") {
		return "postgres"
	}
	return "sqlite"
}

func rateText(r float64) string {
	if r <= 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%.0f/s", r)
}

// tail returns the last n lines of a file, joined with " | ".
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// startSink starts the SMSC sink on a loopback port behind the tap that
// timestamps its traffic in rec, sending receipts delay after their
// submit_sm_resp. stop closes it and waits for its Serve.
func startSink(rec *recorder, outcome smsc.Outcome, delay time.Duration) (sink *smsc.Server, addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	sink = smsc.NewServer(smsc.Config{
		SystemID: "bench", Password: "bench",
		Outcome:      outcome,
		ReceiptDelay: delay,
		MaxMessages:  1000,
		Logger:       zerolog.Nop(),
	})
	served := make(chan struct{})
	go func() {
		defer close(served)
		sink.Serve(&tapListener{Listener: ln, rec: rec})
	}()
	return sink, ln.Addr().String(), func() { sink.Close(); <-served }, nil
}
