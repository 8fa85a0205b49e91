// Package component is Switchboard's XEP-0114 (Jabber Component Protocol)
// session to the XMPP server: it connects and reconnects, reads every stanza
// addressed to the component domain, answers service discovery (XEP-0030),
// ping (XEP-0199) and version (XEP-0092), and hands messages to the router.
// No stanza can end the session: every problem is answered with a stanza error.
package component

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	xmppcomponent "mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"switchboard/internal/callctx"
	"switchboard/router"
)

// closeTimeout bounds how long Run waits for the server to close its stream
// after ctx ends.
const closeTimeout = 2 * time.Second

// ErrDisconnected is returned when sending while the session is down.
var ErrDisconnected = errors.New("component: not connected to the XMPP server")

// Router is what the component hands messages to. *router.Router satisfies it.
type Router interface {
	Outbound(ctx context.Context, m router.Message) error
	// Receipt and Bounce take a receipt or an error for a message relayed
	// to a user; false means no relayed message matched.
	Receipt(ctx context.Context, m router.Message, id string, route bool) bool
	Bounce(ctx context.Context, from, to jid.JID, id string, payload []byte) bool
	// Served reports whether a JID belongs to a domain the gateway serves.
	Served(j jid.JID) bool
}

// Config configures a Component. Zero values mean the defaults.
type Config struct {
	JID    jid.JID // the component's domain, e.g. sms.example.com
	Server string  // host:port of the XMPP server's component listener
	Secret string  // the shared secret
	TLS    *tls.Config
	// Version is reported to XEP-0092 queries.
	Version string
	// ReconnectMin and ReconnectMax bound the reconnect backoff. Defaults 500ms and 30s.
	ReconnectMin, ReconnectMax time.Duration
	// PingTimeout bounds the wait for the answer to a ping (see Sync);
	// default 15s. A ping left unanswered that long ends the session: the
	// server is taken to be hung, and the component connects again.
	// KeepAlive is how often the component pings the server, so that a
	// hung one is found while the link is idle too; default 30s.
	PingTimeout, KeepAlive time.Duration
	// SyncTo is where Sync pings: the XMPP server's own domain. Default
	// the component's parent domain is not assumed; set it to a served
	// domain (cmd does). Zero pings the component domain itself.
	SyncTo jid.JID
	// MaxStanza bounds one stanza in bytes; a larger one ends the session.
	// Default 1 MiB (DefaultMaxStanza).
	MaxStanza int
	// Registrar binds users to numbers (commands and XEP-0077); nil
	// disables registration.
	Registrar Registrar
	// Sessions keeps ad-hoc command state; required with Registrar.
	Sessions Sessions
	// AddressBook imports address books and answers who may know what of
	// a number; nil disables address books.
	AddressBook AddressBook
	// FetchPrivate lets address-book URLs point at loopback and private
	// networks (tests, closed deployments). Default false.
	FetchPrivate bool
	// DefaultRegion is for numbers written without a country code.
	DefaultRegion string
	// Admins may run the operators' commands, through Admin.
	Admins []jid.JID
	Admin  Admin
	// Preferences keeps users' settings; nil hides the settings command.
	Preferences Preferences
	// DefaultFallback is the gateway's SMS fallback delay, shown as the
	// default in the settings command (≤ 0: fallback off by default).
	DefaultFallback time.Duration
	// Archive serves users' message history (XEP-0313); nil disables it.
	Archive Archive
	// Presences records users' presence; nil records none, and Available
	// then always reports it unknown.
	Presences Presences
	// OnConnect is called after each successful handshake.
	OnConnect func()
	// BeforeClose, if set, is called at shutdown before the stream is
	// closed, while stanzas can still be sent: the router stores what it
	// took from users, or answers them with errors (see router.Drain). The
	// stream is read meanwhile, as usual.
	BeforeClose func(ctx context.Context)
	// HandOn, if set, takes the answers (IQ results and errors) to
	// requests this instance did not make, up to HandOnMax bytes each:
	// with several instances connected as one component the server gives
	// the answer to any of them. It is called from one goroutine; the
	// others' answers come in through Answer (see answers.go).
	HandOn    func(ctx context.Context, stanza []byte) error
	HandOnMax int
	Logger    zerolog.Logger
}

// Component is the session to the XMPP server. Create it with New and Run it.
type Component struct {
	cfg    Config
	router Router
	log    zerolog.Logger

	mu   sync.RWMutex
	sess *xmpp.Session

	priv    privState     // XEP-0356 grants of the current session (privilege.go)
	presq   presenceQueue // users' presence on its way to the record (presence.go)
	checkMu sync.Mutex
	checkWG sync.WaitGroup            // the roster reads of checks, waited for by Run
	checks  map[string][]unavailCheck // by full JID: unavailable to numbers, waiting for a roster read (presence.go)

	capped atomic.Pointer[capConn] // the current connection's stanza size bound (limit.go)

	waiters answerWaiters // the component's own requests waiting for answers (answers.go)
	handOn  chan []byte   // answers to hand on (Config.HandOn); nil without

	connected atomic.Bool
	stanzas   atomic.Uint64

	fetcher  *http.Client // address-book downloads (addressbook.go)
	fetching fetching     // address-book commands waiting for a download (addressbook.go)
}

// New returns a component handing messages to r.
func New(cfg Config, r Router) *Component {
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 500 * time.Millisecond
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 30 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 15 * time.Second
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.OnConnect == nil {
		cfg.OnConnect = func() {}
	}
	c := &Component{cfg: cfg, router: r, log: cfg.Logger.With().Str("component", "xmpp").Logger(), fetcher: newFetchClient(cfg.FetchPrivate)}
	if cfg.HandOn != nil && cfg.HandOnMax > 0 {
		c.handOn = make(chan []byte, 256)
	}
	c.presq.init()
	return c
}

// Connected reports whether the session is up.
func (c *Component) Connected() bool { return c.connected.Load() }

// Run connects, serves, and reconnects with backoff until ctx ends; then it
// closes the stream and writes the users' presence still queued. It returns
// nil when ctx ends.
func (c *Component) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if c.handOn != nil {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case b := <-c.handOn:
					if err := c.cfg.HandOn(ctx, b); err != nil && ctx.Err() == nil {
						c.log.Warn().Err(err).Msg("handing an answer on to the other instances failed")
					}
				}
			}
		})
	}
	defer c.fetching.run(ctx)() // address books still downloading (addressbook.go)
	wg.Go(func() { c.presq.run(ctx, c.applyPresence) })
	defer c.checkWG.Wait() // roster reads still on their way (presence.go)
	delay := c.cfg.ReconnectMin
	for {
		start := time.Now()
		up, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			delay = c.cfg.ReconnectMin
		}
		c.logEnd(up, err, delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, c.cfg.ReconnectMax)
		delay = delay/2 + rand.N(delay/2+1)
	}
}

// logEnd logs why a session ended, or why none started (up is false),
// and when the next attempt is.
func (c *Component) logEnd(up bool, err error, retry time.Duration) {
	ev, msg := c.log.Warn(), "XMPP session ended"
	var hint string // what a refused handshake means
	if !up {
		hint = HandshakeProblem(err, c.cfg.JID.Domain().String())
	}
	switch {
	case !up && errors.Is(err, stream.NotAuthorized):
		// Not a network problem: the server's configuration and ours
		// disagree. Retrying is still right (the operator may fix the
		// server's side); the backoff soon makes this a line every
		// ReconnectMax (30 s).
		ev, msg = c.log.Error().Str("hint", c.notAuthorizedHint()), "the XMPP server refused the component secret"
	case !up && hint != "":
		// The same: the server says what, the hint what to do about it.
		ev, msg = c.log.Error().Str("hint", hint), "the XMPP server refused the component"
	case !up:
		msg = "connecting to the XMPP server failed"
	case closedMidStream(err):
		// What a server shutting down (or its host going away) leaves:
		// not a parse error of ours.
		err = errors.New("the XMPP server closed the connection")
	}
	ev.Err(err).Stringer("retry_in", retry.Round(time.Millisecond)).Str("server", c.cfg.Server).Msg(msg)
}

// closedMidStream tells whether err is the end of the connection in the
// middle of the stream, as the XML decoder reports it.
func closedMidStream(err error) bool {
	var se *xml.SyntaxError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &se) && se.Msg == "unexpected EOF"
}

// notAuthorizedHint says, in each server's terms, what a not-authorized
// answer to the handshake means.
func (c *Component) notAuthorizedHint() string {
	d := c.cfg.JID.Domain().String()
	return fmt.Sprintf("xmpp.secret must equal the XMPP server's secret for %[1]s: "+
		"Prosody's component_secret under Component %[1]q, "+
		"ejabberd's listen → ejabberd_service → hosts → %[1]q: password. "+
		"ejabberd also answers not-authorized when the listener at xmpp.server has no %[1]s in its hosts (check xmpp.component)",
		d)
}

// HandshakeProblem says, for an operator, what a stream error the XMPP
// server answered the handshake of component with means, in each server's
// terms, and what to do about it; "" for any other error, and for
// not-authorized, which needs the secret's setting named (switchboard serve
// logs notAuthorizedHint, check its own).
func HandshakeProblem(err error, component string) string {
	var se stream.Error
	if !errors.As(err, &se) {
		return ""
	}
	text := ""
	for _, t := range se.Text {
		text = t.Value
	}
	switch se.Err {
	case "host-unknown", "improper-addressing":
		if text != "" && !strings.Contains(text, "component") {
			// Prosody's client port: "This server does not serve sms.example.com".
			return fmt.Sprintf("the server answered %s (%q): is this a client port rather than the component port?", se.Err, text)
		}
		return fmt.Sprintf("the XMPP server has no component %s (add Component %q to Prosody's configuration, "+
			"or %q to the hosts of ejabberd's ejabberd_service listener, or set xmpp.component to the one it has)", component, component, component)
	case "conflict":
		if strings.Contains(text, "local domain") {
			// ejabberd, at the stream's start: "Unable to register
			// route on existing local domain".
			return fmt.Sprintf("the XMPP server serves %s itself (%q): the component needs a domain nothing else on the server uses", component, text)
		}
		// Prosody checks the secret, then refuses a second connection.
		return fmt.Sprintf("another connection already holds the component %s on this server: is another switchboard running with it? "+
			"(Prosody takes one connection for a component; ejabberd takes several, for instances sharing PostgreSQL)", component)
	case "invalid-namespace":
		return "not a component port (the server wants another stream namespace; a client port? Prosody's component port is 5347)"
	}
	return ""
}

// session connects, performs the handshake and serves the stream until it
// ends. up reports whether the handshake succeeded.
func (c *Component) session(ctx context.Context) (up bool, err error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Server)
	if err != nil {
		return false, err
	}
	if c.cfg.TLS != nil {
		conn = tls.Client(conn, c.cfg.TLS)
	}
	limit := int64(c.cfg.MaxStanza)
	if limit <= 0 {
		limit = DefaultMaxStanza
	}
	capped := &capConn{Conn: conn, max: limit}
	conn = capped
	c.capped.Store(capped)
	hsCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	callCtx, release := callContext(hsCtx)
	s, err := xmppcomponent.NewSession(callCtx, c.cfg.JID.Domain(), []byte(c.cfg.Secret), conn)
	release()
	cancel()
	if err != nil {
		conn.Close()
		return false, fmt.Errorf("component handshake: %w", err)
	}
	c.priv.reset()
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	c.connected.Store(true)
	c.log.Info().Str("server", c.cfg.Server).Str("jid", c.cfg.JID.String()).Msg("connected to XMPP server")
	c.cfg.OnConnect()

	// Close the stream when ctx ends; that makes Serve return once the server
	// closes its stream, or at the deadline if it never does.
	stop := context.AfterFunc(ctx, func() {
		if c.cfg.BeforeClose != nil {
			c.cfg.BeforeClose(context.WithoutCancel(ctx))
		}
		c.log.Info().Msg("closing XMPP stream")
		_ = conn.SetDeadline(time.Now().Add(closeTimeout))
		_ = s.Close()
	})
	// The session's own requests: a ping while idle, the server's uptime.
	kctx, kcancel := context.WithCancel(ctx)
	var own sync.WaitGroup
	own.Go(func() { c.keepalive(kctx) })
	own.Go(func() { c.serverRestarts(kctx) })
	err = s.Serve(xmpp.HandlerFunc(c.handle))
	kcancel()
	own.Wait()
	stop()
	c.priv.end()
	c.connected.Store(false)
	c.mu.Lock()
	c.sess = nil
	c.mu.Unlock()
	_ = s.Close()
	_ = conn.Close()
	if err == nil {
		err = errors.New("stream closed by server")
	}
	return true, err
}

// send writes a stanza on the current session, or into the batch ctx
// carries (see Batch).
func (c *Component) send(ctx context.Context, r xml.TokenReader) error {
	if b, ok := ctx.Value(batchKey{}).(*batch); ok && b.c == c {
		if b.err == nil {
			_, b.err = xmlstream.Copy(b.w, r)
		}
		return b.err
	}
	s, err := c.live()
	if err != nil {
		return err
	}
	callCtx, release := callContext(ctx)
	defer release()
	return s.Send(callCtx, r)
}

// callContext is callctx.For: see there why every mellium call that writes
// goes through it.
var callContext = callctx.For

type batchKey struct{}

type batch struct {
	c   *Component
	w   xmlstream.TokenWriteFlushCloser
	err error // the first write error; later writes are skipped
}

// live returns the session the component is connected on, or
// ErrDisconnected.
func (c *Component) live() (*xmpp.Session, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.sess == nil {
		return nil, ErrDisconnected
	}
	return c.sess, nil
}

// Batch returns a context whose sends through c are written one after the
// other and flushed together by end, which returns the first error: one
// write(2) for many stanzas instead of one each. Nothing else is written on
// the session until end is called, so the batch must not wait on anything
// but its own writes. Not safe for concurrent use of the returned context.
func (c *Component) Batch(ctx context.Context) (context.Context, func() error) {
	s, err := c.live()
	if err != nil {
		return ctx, func() error { return nil } // sends report ErrDisconnected
	}
	b := &batch{c: c, w: s.TokenWriter()}
	return context.WithValue(ctx, batchKey{}, b), func() error {
		if err := b.w.Flush(); b.err == nil {
			b.err = err
		}
		if err := b.w.Close(); b.err == nil {
			b.err = err
		}
		return b.err
	}
}

// SendText sends a chat message. A written time, when not zero, is given
// in an XEP-0203 delay element from the component.
func (c *Component) SendText(ctx context.Context, from, to jid.JID, id, body string, written time.Time) error {
	inner := []xml.TokenReader{
		textElem(xml.Name{Local: "body"}, body),
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsHints, Local: "store"}}),
	}
	if !written.IsZero() {
		inner = append(inner, delay(written, c.cfg.JID))
	}
	return c.send(ctx, stanza.Message{From: from, To: to, ID: id, Type: stanza.ChatMessage}.Wrap(xmlstream.MultiReader(inner...)))
}

// SendReceipt sends an XEP-0184 receipt for message id, with a hint to
// store it (XEP-0334). One goes out for nearly every message: its tokens
// are a fixed list (tokenSlice), not readers wrapped in readers (a third
// of the allocations of the notices' path).
func (c *Component) SendReceipt(ctx context.Context, from, to jid.JID, id string) error {
	attr := []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: string(stanza.ChatMessage)},
		{Name: xml.Name{Local: "to"}, Value: to.String()},
		{Name: xml.Name{Local: "from"}, Value: from.String()},
		{Name: xml.Name{Local: "id"}, Value: "rcpt-" + id},
		{Name: xml.Name{Local: "id"}, Value: id},
	}
	msg, received, hint := xml.Name{Local: "message"}, xml.Name{Space: nsReceipts, Local: "received"}, xml.Name{Space: nsHints, Local: "store"}
	return c.send(ctx, &tokenSlice{toks: []xml.Token{
		xml.StartElement{Name: msg, Attr: attr[:4]},
		xml.StartElement{Name: received, Attr: attr[4:]}, xml.EndElement{Name: received},
		xml.StartElement{Name: hint}, xml.EndElement{Name: hint},
		xml.EndElement{Name: msg},
	}})
}

// SendError sends a message error about message id.
func (c *Component) SendError(ctx context.Context, from, to jid.JID, id string, e stanza.Error) error {
	return c.send(ctx, stanza.Message{From: from, To: to, ID: id, Type: stanza.ErrorMessage}.Wrap(e.TokenReader()))
}

// SendRelay sends a chat message carrying payload (children captured from
// another user's stanza), asking for a receipt when requestReceipt.
func (c *Component) SendRelay(ctx context.Context, from, to jid.JID, id string, payload []byte, requestReceipt bool) error {
	inner := []xml.TokenReader{payloadTokens(payload)}
	if requestReceipt {
		inner = append(inner, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsReceipts, Local: "request"}}))
	}
	return c.send(ctx, stanza.Message{From: from, To: to, ID: id, Type: stanza.ChatMessage}.Wrap(xmlstream.MultiReader(inner...)))
}

// SendRelayError sends a message error carrying payload.
func (c *Component) SendRelayError(ctx context.Context, from, to jid.JID, id string, payload []byte) error {
	return c.send(ctx, stanza.Message{From: from, To: to, ID: id, Type: stanza.ErrorMessage}.Wrap(payloadTokens(payload)))
}

// Sync returns once the XMPP server has processed every stanza sent before
// it: it sends a ping to the server and waits for any answer (the server
// handles a connection's stanzas in order). XEP-0114 has no acknowledgements,
// so this is how a sender learns that stanzas were not lost in a connection
// that died. It must not be called from a stanza handler.
//
// A ping left unanswered for PingTimeout ends the session: a server that
// takes the connection but answers nothing (stopped, swapping, behind a
// dead link) is hung, and the component connects again rather than keep
// writing into it, counted as connected.
func (c *Component) Sync(ctx context.Context) error {
	s, err := c.live()
	if err != nil {
		return err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PingTimeout)
	defer cancel()
	resp, err := c.sendIQ(ctx, s, stanza.IQ{Type: stanza.GetIQ, From: c.cfg.JID, To: c.server()},
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsPing, Local: "ping"}}))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			c.hung(s)
		}
		return fmt.Errorf("component: sync: %w", err)
	}
	return resp.Close()
}

// server is the address the component's own requests to the XMPP server
// go to (pings, its uptime): SyncTo, else the component's domain.
func (c *Component) server() jid.JID {
	if c.cfg.SyncTo.Domainpart() != "" {
		return c.cfg.SyncTo
	}
	return c.cfg.JID.Domain()
}

// hung ends session s, whose server left a ping unanswered for
// PingTimeout: its connection is closed, Serve returns, and Run connects
// again with backoff.
func (c *Component) hung(s *xmpp.Session) {
	c.mu.RLock()
	current := c.sess == s
	c.mu.RUnlock()
	cc := c.capped.Load()
	if !current || cc == nil {
		return
	}
	c.log.Warn().Stringer("timeout", c.cfg.PingTimeout).Msg("the XMPP server answered no ping: taken as hung; connecting again")
	_ = cc.Close()
}

// keepalive pings the server every KeepAlive until ctx ends, so that a hung
// one is found while nothing else is sent (see Sync).
func (c *Component) keepalive(ctx context.Context) {
	t := time.NewTicker(c.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.Sync(ctx)
		}
	}
}
