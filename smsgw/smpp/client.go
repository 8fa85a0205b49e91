package smpp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

var (
	// ErrNotBound is returned by Submit when there is no bound session.
	// Nothing was sent.
	ErrNotBound = errors.New("smpp: not bound")
	// ErrUnknownOutcome is returned by Submit when the submit_sm may have
	// reached the SMSC but no response arrived: none within RespTimeout,
	// the connection dropped, or the caller's context ended after sending.
	// Errors returned for these cases wrap it with the reason.
	ErrUnknownOutcome = errors.New("smpp: no response; outcome unknown")
	// ErrClosed is returned by Submit and WaitBound once Run has returned,
	// and by a second call to Run.
	ErrClosed = errors.New("smpp: client closed")
	// ErrNotSentBy is returned by Submit when the submit_sm could not be
	// sent by its SendBy time (the window stayed full, or the throughput
	// limit held it). Nothing was sent.
	ErrNotSentBy = errors.New("smpp: window or throughput limit busy past the send-by time")
)

// Address is an SMPP address: type of number, numbering plan, digits.
type Address struct {
	TON, NPI byte
	Addr     string
}

// Submit is a submit_sm.
type Submit struct {
	Source, Dest                                                       Address
	ESMClass, DataCoding, RegisteredDelivery, ProtocolID, PriorityFlag byte
	ValidityPeriod                                                     string // SMPP absolute/relative time string or ""
	ShortMessage                                                       []byte // may include UDH (set ESMClass 0x40); at most 254 bytes
	TLVs                                                               map[uint16][]byte
	// SendBy, when set, bounds the wait for a window slot and the
	// throughput limit: past it Submit gives up with ErrNotSentBy, having
	// sent nothing. The wait for the response is bounded by RespTimeout.
	SendBy time.Time
}

// Deliver is an inbound deliver_sm or data_sm.
type Deliver struct {
	Command              uint32 // 0x00000005 deliver_sm or 0x00000103 data_sm
	Seq                  uint32
	Source, Dest         Address
	ESMClass, DataCoding byte
	ShortMessage         []byte // for data_sm: the message_payload TLV (0x0424) value; for deliver_sm: short_message, or message_payload if short_message empty
	TLVs                 map[uint16][]byte
	// Session numbers the bind that carried it, unique in the process: an
	// SMSC that never got the response sends it again on a later bind.
	// Stretch numbers, within the bind, the stretch of responses its own
	// belongs to (see ResponseMayBeUnread).
	Session, Stretch uint64

	arrival uint64 // Holds.stamp
}

// Handler handles inbound deliver_sm/data_sm. The returned Status is sent in
// the response PDU; the response is sent only after HandleDeliver returns
// (callers store the message durably first). Called from a bounded pool of
// goroutines (not the read loop), so a slow handler never stalls
// submit_sm_resp processing. PDUs with the same source and destination
// addresses (a phone's messages to one number) are handled one at a time,
// in the order the SMSC sent them; others concurrently. Once one of them is
// answered ESME_RX_T_APPN, the later ones are too, without a call, until it
// comes back (see Holds).
//
// ctx is cancelled when the session ends; the response can then no longer
// be sent and the SMSC will deliver the message again.
type Handler interface {
	HandleDeliver(ctx context.Context, d *Deliver) Status
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(context.Context, *Deliver) Status

// HandleDeliver calls f.
func (f HandlerFunc) HandleDeliver(ctx context.Context, d *Deliver) Status { return f(ctx, d) }

// Config configures a Client. Zero values mean the defaults given.
type Config struct {
	Addr string      // host:port of the SMSC; required
	TLS  *tls.Config // nil = plain TCP

	SystemID   string // required
	Password   string // never logged
	SystemType string

	// Window is the maximum number of outstanding submit_sm; default 10.
	// Submit waits (ctx-aware) for a free slot and never fails because the
	// window is full.
	Window int
	// Throughput is the maximum submit_sm per second; 0 = unlimited.
	Throughput float64
	// EnquireLink is how long the link may be idle (nothing received)
	// before we send enquire_link; default 30s. A missing
	// enquire_link_resp within RespTimeout drops the connection.
	EnquireLink time.Duration
	// ConfirmDelay is how soon after an OK response to a message from a
	// phone the session makes sure the SMSC read it, by an enquire_link
	// unless a submit_sm's response shows it first; default 100ms. A bind
	// lost before that leaves the message's response possibly unread (see
	// ResponseMayBeUnread).
	ConfirmDelay time.Duration
	// RespTimeout bounds the wait for any response, and the wait for
	// unbind_resp at shutdown; default 10s. It is also the write timeout.
	// A request left unanswered that long ends the session (the SMSC is
	// taken to be hung) and the client binds again.
	RespTimeout time.Duration
	// BindTimeout bounds connect plus bind_transceiver; default 10s.
	BindTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff, which
	// doubles from ReconnectMin after each failure, with jitter (a wait
	// is between half the backoff and all of it); defaults 500ms and 30s.
	// Only a session that stayed bound ReconnectMax or longer resets it:
	// one the SMSC drops sooner counts as a failure, so an SMSC that
	// accepts binds and drops them is bound about once per ReconnectMax,
	// not in a loop (carriers lock accounts for that).
	ReconnectMin, ReconnectMax time.Duration

	// Handler receives deliver_sm and data_sm. If nil, every one is
	// answered with ESME_RX_T_APPN, so the SMSC keeps it.
	Handler Handler
	// Holds keeps a phone's messages in order when one is answered
	// ESME_RX_T_APPN. Give the Clients bound to one SMSC the same; nil =
	// the Client's own, with the defaults.
	Holds *Holds
	// Logger receives the client's logs, with "component":"smpp" added.
	Logger zerolog.Logger
	// OnState, if set, is called with true after a bind succeeds and with
	// false when that session ends. It runs on Run's goroutine and must not
	// block.
	OnState func(bound bool)
	// OnResponse, if set, is called when a submit_sm gets its response (any
	// command_status, generic_nack included; not when none comes), with the
	// time since it was queued for writing. It runs on the session's read
	// loop and must not block.
	OnResponse func(time.Duration)
	// DispatchWorkers is the number of concurrent Handler calls; default 16.
	// Up to 8 times as many PDUs wait for a worker; beyond that an inbound
	// PDU is answered ESME_RX_T_APPN at once, so the SMSC retries it later
	// (and, for a message from a phone, holds its later ones; see Holds).
	DispatchWorkers int

	// throttleMin and throttleMax bound the pause of submits after
	// ESME_RTHROTTLED (see throttle); defaults 1s and 30s. Set by tests.
	throttleMin, throttleMax time.Duration
}

func (cfg *Config) setDefaults() {
	if cfg.Window <= 0 {
		cfg.Window = 10
	}
	if cfg.ConfirmDelay <= 0 {
		cfg.ConfirmDelay = 100 * time.Millisecond
	}
	if cfg.EnquireLink <= 0 {
		cfg.EnquireLink = 30 * time.Second
	}
	if cfg.RespTimeout <= 0 {
		cfg.RespTimeout = 10 * time.Second
	}
	if cfg.BindTimeout <= 0 {
		cfg.BindTimeout = 10 * time.Second
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 500 * time.Millisecond
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 30 * time.Second
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = cfg.ReconnectMin
	}
	if cfg.DispatchWorkers <= 0 {
		cfg.DispatchWorkers = 16
	}
	if cfg.throttleMin <= 0 {
		cfg.throttleMin = time.Second
	}
	if cfg.throttleMax <= 0 {
		cfg.throttleMax = 30 * time.Second
	}
	cfg.throttleMax = max(cfg.throttleMax, cfg.throttleMin)
}

func (cfg *Config) validate() error {
	var errs []error
	if cfg.Addr == "" {
		errs = append(errs, errors.New("smpp: Addr is required"))
	}
	if cfg.SystemID == "" {
		errs = append(errs, errors.New("smpp: SystemID is required"))
	}
	errs = append(errs,
		checkCString("SystemID", cfg.SystemID, 0),
		checkCString("Password", cfg.Password, 0),
		checkCString("SystemType", cfg.SystemType, 0),
	)
	return errors.Join(errs...)
}

// Client is an ESME bound as transceiver to one SMSC. Create it with
// NewClient, start it with Run; its other methods are safe for concurrent use.
type Client struct {
	cfg     Config
	log     zerolog.Logger
	limiter *rate.Limiter // nil if unlimited
	window  chan struct{} // one token per outstanding submit_sm
	holds   *Holds
	thr     throttle

	mu      sync.Mutex
	sess    *session      // non-nil while bound
	changed chan struct{} // closed and replaced on every state change
	started bool
	closed  bool
}

// NewClient returns a client for cfg. It does not connect; call Run.
func NewClient(cfg Config) *Client {
	cfg.setDefaults()
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "smpp").Str("smsc", cfg.Addr).Logger(),
		window:  make(chan struct{}, cfg.Window),
		holds:   cfg.Holds,
		changed: make(chan struct{}),
	}
	if c.holds == nil {
		c.holds = new(Holds)
	}
	c.thr.epoch, c.thr.min, c.thr.max, c.thr.log = time.Now(), cfg.throttleMin, cfg.throttleMax, c.log
	if cfg.Throughput > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(cfg.Throughput), 1)
	}
	return c
}

// Run connects, binds as transceiver, serves the session, and reconnects
// with backoff until ctx ends; then it sends unbind, waits up to RespTimeout
// for unbind_resp, and closes. All goroutines it started have ended when it
// returns.
//
// Run returns nil when ctx ends. It returns an error at once, without
// connecting, only for an invalid Config. Every bind failure is retried,
// including rejections such as ESME_RINVPASWD or ESME_RINVSYSID (credentials
// can be fixed on the SMSC side while we keep trying); those are logged at
// error level, other failures at warn.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.started:
		c.mu.Unlock()
		return errors.New("smpp: Run called twice")
	}
	c.started = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.closed = true
		c.broadcastLocked()
		c.mu.Unlock()
	}()
	if err := c.cfg.validate(); err != nil {
		return err
	}

	backoff := c.cfg.ReconnectMin
	for {
		s, err := c.connect(ctx)
		msg := "connecting to the SMSC failed"
		if err == nil {
			bound := time.Now()
			err = c.serve(ctx, s)
			msg = "smpp session ended"
			// A session shorter than the longest wait does not reset the
			// backoff: whatever the SMSC does, binds then come at most
			// about once per ReconnectMax/2 once the backoff has grown.
			if time.Since(bound) >= c.cfg.ReconnectMax {
				backoff = c.cfg.ReconnectMin
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		ev := c.log.Warn()
		var st Status
		if errors.As(err, &st) {
			ev = c.log.Error()
		}
		wait := jitter(backoff)
		ev.Err(err).Stringer("retry_in", wait.Round(time.Millisecond)).Msg(msg)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, c.cfg.ReconnectMax)
	}
}

// jitter returns a duration uniformly in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// connect dials and binds. The returned session is bound but not yet served.
func (c *Client) connect(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.BindTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if c.cfg.TLS != nil {
		d := tls.Dialer{Config: c.cfg.TLS}
		conn, err = d.DialContext(ctx, "tcp", c.cfg.Addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", c.cfg.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("smpp: connect: %w", err)
	}
	s := newSession(c, conn)
	if err := s.bind(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// serve runs a bound session until it fails or ctx ends, then waits for all
// of its goroutines.
func (c *Client) serve(ctx context.Context, s *session) error {
	c.setSession(s)
	s.start(ctx)
	select {
	case <-s.done:
	case <-ctx.Done():
		c.setSession(nil)
		s.unbind()
		s.fail(errShutdown)
	}
	c.setSession(nil)
	s.wait()
	return s.err()
}

func (c *Client) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// setSession records the bound session (nil: unbound) and reports
// transitions to OnState.
func (c *Client) setSession(s *session) {
	c.mu.Lock()
	was := c.sess != nil
	c.sess = s
	c.broadcastLocked()
	c.mu.Unlock()
	if now := s != nil; now != was {
		if now {
			c.log.Info().Str("system_id", c.cfg.SystemID).Msg("smpp bound")
		} else {
			c.log.Info().Msg("smpp bind down") // unbound, dropped, or ending (see drain)
		}
		if c.cfg.OnState != nil {
			c.cfg.OnState(now)
		}
	}
}

// current is the bound session, or nil.
func (c *Client) current() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

func (c *Client) session() (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil {
		return c.sess, nil
	}
	if c.closed {
		return nil, ErrClosed
	}
	return nil, ErrNotBound
}

// Bound reports whether a session is bound now.
func (c *Client) Bound() bool {
	_, err := c.session()
	return err == nil
}

// WaitBound blocks until bound or ctx ends. It returns ErrClosed once Run
// has returned.
func (c *Client) WaitBound(ctx context.Context) error {
	for {
		c.mu.Lock()
		bound, closed, ch := c.sess != nil, c.closed, c.changed
		c.mu.Unlock()
		switch {
		case bound:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// InFlight returns the number of submit_sm awaiting a response (the window
// in use; a Submit that took its slot just as a throttling pause began
// holds it through the pause).
func (c *Client) InFlight() int {
	return len(c.window)
}

// Submit sends submit_sm and waits for submit_sm_resp. It returns the SMSC
// message_id. Errors:
//   - a Status: the SMSC answered with command_status != 0 (or generic_nack);
//   - ErrNotBound: not connected, nothing was sent; ErrClosed after Run
//     returned;
//   - an error wrapping ErrUnknownOutcome: sent, but no response within
//     RespTimeout, or the connection dropped after sending, or ctx ended
//     after sending;
//   - ctx.Err(): ctx ended before sending (waiting for the window, the
//     throughput limit or a throttling pause), nothing was sent;
//   - ErrNotSentBy: s.SendBy passed before sending, or would pass during a
//     throttling pause, nothing was sent;
//   - a validation error (e.g. short_message over 254 bytes), nothing sent.
//
// After a response ESME_RTHROTTLED the Client sends no submit_sm for a
// while (1s, doubling while the SMSC goes on throttling, at most 30s,
// until a submit_sm sent after the pause is accepted); Submit waits for
// the pause like for the window.
func (c *Client) Submit(ctx context.Context, s *Submit) (messageID string, err error) {
	if _, err := c.session(); err != nil {
		return "", err
	}
	wctx := ctx // the wait before sending
	if !s.SendBy.IsZero() {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, s.SendBy)
		defer cancel()
	}
	waitErr := func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return ErrNotSentBy
	}
	pause := func() error {
		if c.thr.until.Load() == 0 {
			return nil
		}
		if err := c.thr.wait(wctx, s.SendBy); err == ErrNotSentBy {
			return err
		} else if err != nil {
			return waitErr()
		}
		return nil
	}
	if err := pause(); err != nil {
		return "", err
	}
	select {
	case c.window <- struct{}{}:
	case <-wctx.Done():
		return "", waitErr()
	}
	held := true
	defer func() {
		if held {
			<-c.window
		}
	}()
	if err := pause(); err != nil { // one that began while we waited for the slot
		return "", err
	}
	if c.limiter != nil {
		if err := c.limiter.Wait(wctx); err != nil {
			if wctx.Err() != nil {
				return "", waitErr()
			}
			if !s.SendBy.IsZero() {
				return "", ErrNotSentBy // the limiter saw the deadline coming
			}
			return "", err
		}
	}
	sess, err := c.session()
	if err != nil {
		return "", err
	}
	held = false // from here the session releases the slot
	p, err := sess.request(cmdSubmitSM, true, func(seq uint32) ([]byte, error) { return encodeSubmitSM(seq, s) })
	if err != nil {
		return "", err
	}
	select {
	case r := <-p.ch:
		return r.messageID, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %v after sending", ErrUnknownOutcome, ctx.Err())
	}
}
