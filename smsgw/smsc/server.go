package smsc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Outcome is what the simulated network does with a submitted message.
type Outcome string

// Outcomes and the receipt stat each one reports.
const (
	OutcomeDelivered Outcome = "delivered" // stat:DELIVRD, message_state 2
	OutcomeFailed    Outcome = "failed"    // stat:UNDELIV, message_state 5
	OutcomeRejected  Outcome = "rejected"  // stat:REJECTD, message_state 8
	OutcomeExpired   Outcome = "expired"   // stat:EXPIRED, message_state 3
	OutcomeNone      Outcome = "none"      // delivered, but no receipt is ever sent
)

// ReceiptMode is how a delivery receipt travels.
type ReceiptMode string

// Receipt modes.
const (
	// ReceiptText: deliver_sm, esm_class 0x04, SMPP 3.4 Appendix B text with 10-digit dates.
	ReceiptText ReceiptMode = "text"
	// ReceiptTLV: as ReceiptText plus receipted_message_id (0x001E) and message_state (0x0427) TLVs.
	ReceiptTLV ReceiptMode = "tlv"
	// ReceiptDataSM: data_sm, esm_class 0x04, with the TLVs only and no text.
	ReceiptDataSM ReceiptMode = "data_sm"
)

// Message id formats.
const (
	IDHex     = "hex"     // upper-case hexadecimal, e.g. 1A2B3C01
	IDDecimal = "decimal" // e.g. 439041025
)

// Config is the simulator's behaviour. Zero values mean the defaults, and
// unknown enumeration values fall back to them; Validate reports them.
type Config struct {
	// SystemID and Password a bind must present. Empty SystemID accepts any credentials.
	SystemID, Password string

	// ReceiptDelay is how long after submit_sm_resp the receipt is sent. Default 0: immediately after.
	ReceiptDelay time.Duration
	// Outcome of every accepted submit. Default OutcomeDelivered.
	Outcome Outcome
	// ReceiptMode is the receipt's form. Default ReceiptText.
	ReceiptMode ReceiptMode
	// IDFormat renders the message_id of submit_sm_resp: IDHex (default) or IDDecimal.
	IDFormat string
	// ReceiptIDOtherForm makes receipts (text and TLV) carry the id in the other
	// form: decimal when submit_sm_resp gave hex, and hex when it gave decimal.
	ReceiptIDOtherForm bool
	// NoMessageID answers an accepted submit_sm with an empty message_id,
	// as some SMSCs do; its receipts still name the id the simulator gave
	// the message (Messages), which the ESME never learnt.
	NoMessageID bool
	// EarlyReceipt sends the receipt before submit_sm_resp (on the same
	// connection the order is guaranteed). ReceiptDelay is then ignored.
	EarlyReceipt bool
	// SubmitStatus, if set, chooses the command_status for each submit_sm
	// (for example 0x58 to throttle). A non-zero status rejects the submit:
	// it is not stored and gets no message id. Nil means 0 for all.
	SubmitStatus func(*Message) uint32

	// Stall makes every session stop reading and answering while it is
	// set, holding its connection open: an SMSC that hangs. A PDU already
	// read waits and is handled once Stall is cleared — even if the ESME
	// gave up and closed the connection meanwhile, as a hung SMSC that
	// recovers works off its backlog. New connections are accepted but
	// their binds go unanswered too.
	Stall bool

	// ResponseTimeout bounds the wait for deliver_sm_resp / data_sm_resp. Default 5s.
	ResponseTimeout time.Duration
	// MaxMessages is how many submits Messages keeps; older ones are dropped. Default 100000.
	MaxMessages int

	// Logger receives the simulator's log; a "component":"smsc" field is added.
	// Message text is logged at debug level only.
	Logger zerolog.Logger
}

// Validate reports every unknown enumeration value.
func (c *Config) Validate() error {
	var errs []error
	switch c.Outcome {
	case "", OutcomeDelivered, OutcomeFailed, OutcomeRejected, OutcomeExpired, OutcomeNone:
	default:
		errs = append(errs, fmt.Errorf("smsc: outcome: unknown value %q", c.Outcome))
	}
	switch c.ReceiptMode {
	case "", ReceiptText, ReceiptTLV, ReceiptDataSM:
	default:
		errs = append(errs, fmt.Errorf("smsc: receipt_mode: unknown value %q", c.ReceiptMode))
	}
	switch c.IDFormat {
	case "", IDHex, IDDecimal:
	default:
		errs = append(errs, fmt.Errorf("smsc: id_format: unknown value %q", c.IDFormat))
	}
	if c.ReceiptDelay < 0 {
		errs = append(errs, errors.New("smsc: receipt_delay: negative"))
	}
	return errors.Join(errs...)
}

// settings is a Config with defaults applied and the derived logger.
type settings struct {
	Config
	log zerolog.Logger
}

func newSettings(c Config) *settings {
	switch c.Outcome {
	case OutcomeDelivered, OutcomeFailed, OutcomeRejected, OutcomeExpired, OutcomeNone:
	default:
		c.Outcome = OutcomeDelivered
	}
	switch c.ReceiptMode {
	case ReceiptText, ReceiptTLV, ReceiptDataSM:
	default:
		c.ReceiptMode = ReceiptText
	}
	if c.IDFormat != IDDecimal {
		c.IDFormat = IDHex
	}
	if c.ReceiptDelay < 0 {
		c.ReceiptDelay = 0
	}
	if c.ResponseTimeout <= 0 {
		c.ResponseTimeout = 5 * time.Second
	}
	if c.MaxMessages <= 0 {
		c.MaxMessages = 100000
	}
	return &settings{Config: c, log: c.Logger.With().Str("component", "smsc").Logger()}
}

// Concat is a part's place in a concatenated message (UDH IEI 0x00 or 0x08, or SAR TLVs).
type Concat struct {
	Ref   uint16 `json:"ref"`
	Total uint8  `json:"total"`
	Seq   uint8  `json:"seq"`
}

// Message is one submit_sm (or data_sm) as received: one per part.
type Message struct {
	ID       string `json:"id"`
	SystemID string `json:"system_id"`

	Source    string `json:"source"`
	Dest      string `json:"dest"`
	SourceTON byte   `json:"source_ton"`
	SourceNPI byte   `json:"source_npi"`
	DestTON   byte   `json:"dest_ton"`
	DestNPI   byte   `json:"dest_npi"`

	ESMClass           byte              `json:"esm_class"`
	DataCoding         byte              `json:"data_coding"`
	RegisteredDelivery byte              `json:"registered_delivery"`
	ShortMessage       []byte            `json:"short_message"` // as sent, UDH included; message_payload when short_message was empty
	TLVs               map[uint16][]byte `json:"tlvs,omitempty"`

	// Text is this part's text, decoded best-effort: UDH stripped, GSM 03.38, UCS-2 or Latin-1.
	Text string `json:"text"`
	// FullText is the whole message's text: Text for a single part, the
	// reassembled text on every part once all parts of a concatenated message are in.
	FullText string  `json:"full_text"`
	Concat   *Concat `json:"concat,omitempty"`

	Received time.Time `json:"received"`
	Outcome  Outcome   `json:"outcome"`
	// State is the final state (DELIVRD, UNDELIV, REJECTD, EXPIRED) once the
	// simulated network has decided, "" while a delayed receipt is pending.
	State string `json:"state"`
}

func (m *Message) clone() *Message {
	c := *m
	if m.Concat != nil {
		cc := *m.Concat
		c.Concat = &cc
	}
	return &c
}

// InboxMessage is a complete message as a virtual phone received it.
type InboxMessage struct {
	From     string    `json:"from"`
	To       string    `json:"to"`
	Text     string    `json:"text"`
	IDs      []string  `json:"ids"` // SMSC message ids of the parts, in part order
	Received time.Time `json:"received"`
}

// Errors.
var (
	ErrClosed    = errors.New("smsc: server closed")
	ErrNoSession = errors.New("smsc: no receiver or transceiver bound")
)

// Server is an SMPP SMSC simulator. Its methods are safe for concurrent use.
type Server struct {
	cfg atomic.Pointer[settings]

	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	nextID  atomic.Uint64
	nextRef atomic.Uint32
	nextSID atomic.Uint64

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	sessions  []*session // open connections, in accept order
	rr        int
	bindCh    chan struct{} // closed and replaced at every bind
	msgs      []*Message
	received  int
	waiters   []*waiter
	partials  map[partKey]*partial
	inbox     map[string][]InboxMessage
}

type waiter struct {
	n  int
	ch chan struct{}
}

type partKey struct {
	systemID, source, dest string
	ref                    uint16
	total                  uint8
}

type partial struct {
	parts []*Message
	got   int
}

// NewServer returns a Server with cfg; it serves nothing until Serve or Start.
func NewServer(cfg Config) *Server {
	s := &Server{
		listeners: make(map[net.Listener]struct{}),
		bindCh:    make(chan struct{}),
		partials:  make(map[partKey]*partial),
		inbox:     make(map[string][]InboxMessage),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cfg.Store(newSettings(cfg))
	s.nextID.Store(0x1A2B3C00) // so hex ids have letters and differ from decimal ones
	return s
}

func (s *Server) settings() *settings { return s.cfg.Load() }

// SetConfig changes the behaviour while the server runs; fn edits a copy.
// Sessions already bound keep their credentials.
func (s *Server) SetConfig(fn func(*Config)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cfg.Load().Config
	fn(&c)
	s.cfg.Store(newSettings(c))
}

// Config returns the current configuration, defaults filled in.
func (s *Server) Config() Config { return s.cfg.Load().Config }

// Start listens on addr ("" means 127.0.0.1 on a free port), serves in a
// goroutine that Close ends, and returns the listening address.
func (s *Server) Start(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("smsc: %w", err)
	}
	if !s.goOwned(func() { s.Serve(ln) }) {
		ln.Close()
		return "", ErrClosed
	}
	return ln.Addr().String(), nil
}

// goOwned runs fn in a goroutine that Close waits for, unless the server is closed.
func (s *Server) goOwned(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// Serve accepts SMPP connections on ln until Close, which closes ln. It
// always returns a non-nil error: ErrClosed after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-s.ctx.Done():
					return ErrClosed
				}
			}
			return fmt.Errorf("smsc: accept: %w", err)
		}
		delay = 0
		s.startSession(conn)
	}
}

func (s *Server) startSession(conn net.Conn) {
	st := s.settings()
	ss := newSession(s, conn, s.nextSID.Add(1), st.log)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.sessions = append(s.sessions, ss)
	s.wg.Add(2)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		ss.writeLoop()
	}()
	go func() {
		defer s.wg.Done()
		ss.readLoop()
	}()
}

func (s *Server) removeSession(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.sessions {
		if x == ss {
			s.sessions = append(s.sessions[:i], s.sessions[i+1:]...)
			break
		}
	}
}

func (s *Server) notifyBind() {
	s.mu.Lock()
	close(s.bindCh)
	s.bindCh = make(chan struct{})
	s.mu.Unlock()
}

// Close closes the listeners and every session abruptly, stops pending
// receipts and waits for all of the server's goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	s.cancel()
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	sessions := append([]*session(nil), s.sessions...)
	for _, w := range s.waiters {
		close(w.ch)
	}
	s.waiters = nil
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, ss := range sessions {
		ss.close()
	}
	s.wg.Wait()
	return nil
}

// Shutdown unbinds every bound session, waits until the ESMEs answer with
// unbind_resp (or ctx ends), then closes the server.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	sessions := append([]*session(nil), s.sessions...)
	s.mu.Unlock()
	for _, ss := range sessions {
		if ss.bound() != bindNone {
			ss.unbind()
		} else {
			ss.close()
		}
	}
	var err error
	for _, ss := range sessions {
		select {
		case <-ss.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
	}
	s.Close()
	return err
}

// DropSessions closes every connection abruptly, without unbind, to test
// an ESME's reconnect. The listeners stay open.
func (s *Server) DropSessions() {
	s.mu.Lock()
	sessions := append([]*session(nil), s.sessions...)
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.close()
	}
}

// Bound returns the number of bound sessions.
func (s *Server) Bound() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ss := range s.sessions {
		if ss.bound() != bindNone {
			n++
		}
	}
	return n
}

// Messages returns copies of the kept submits, in arrival order. ShortMessage
// and TLVs are shared with the server's copy and must not be modified.
func (s *Server) Messages() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = m.clone()
	}
	return out
}

// WaitMessages blocks until at least n submits have been accepted since the
// server started, then returns Messages. It fails when ctx ends or the server closes.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]*Message, error) {
	s.mu.Lock()
	if s.received >= n {
		s.mu.Unlock()
		return s.Messages(), nil
	}
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	w := &waiter{n: n, ch: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ch:
		s.mu.Lock()
		ok := s.received >= n
		s.mu.Unlock()
		if !ok {
			return nil, ErrClosed
		}
		return s.Messages(), nil
	case <-ctx.Done():
		s.mu.Lock()
		for i, x := range s.waiters {
			if x == w {
				s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
				break
			}
		}
		got := s.received
		s.mu.Unlock()
		return s.Messages(), fmt.Errorf("smsc: %d of %d messages: %w", got, n, ctx.Err())
	}
}

// Inbox returns the complete messages phone has received (reassembled, in
// the order their last part arrived). A leading '+' is ignored. Messages
// whose outcome is failed, rejected or expired never reach an inbox.
func (s *Server) Inbox(phone string) []InboxMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.inbox[normPhone(phone)]
	out := make([]InboxMessage, len(in))
	for i, m := range in {
		out[i] = m
		out[i].IDs = append([]string(nil), m.IDs...)
	}
	return out
}

func normPhone(p string) string { return strings.TrimPrefix(strings.TrimSpace(p), "+") }

const maxInbox = 1000

// store records an accepted submit; it reassembles concatenated messages and
// fills inboxes. It returns the message's parts when m completed a message.
func (s *Server) store(m *Message, max int) []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	if len(s.msgs) > 2*max {
		s.msgs = append([]*Message(nil), s.msgs[len(s.msgs)-max:]...)
	}
	s.received++
	if len(s.waiters) > 0 {
		kept := s.waiters[:0]
		for _, w := range s.waiters {
			if s.received >= w.n {
				close(w.ch)
			} else {
				kept = append(kept, w)
			}
		}
		s.waiters = kept
	}

	var parts []*Message
	if c := m.Concat; c != nil && c.Total > 1 && c.Seq >= 1 && c.Seq <= c.Total {
		k := partKey{m.SystemID, m.Source, m.Dest, c.Ref, c.Total}
		p := s.partials[k]
		if p == nil {
			p = &partial{parts: make([]*Message, c.Total)}
			s.partials[k] = p
		}
		if p.parts[c.Seq-1] == nil {
			p.got++
		}
		p.parts[c.Seq-1] = m
		if p.got < int(c.Total) {
			return nil
		}
		delete(s.partials, k)
		parts = p.parts
		var sb strings.Builder
		for _, x := range parts {
			sb.WriteString(x.Text)
		}
		for _, x := range parts {
			x.FullText = sb.String()
		}
	} else {
		m.FullText = m.Text
		parts = []*Message{m}
	}

	for _, x := range parts {
		if x.Outcome != OutcomeDelivered && x.Outcome != OutcomeNone {
			return parts
		}
	}
	ids := make([]string, len(parts))
	for i, x := range parts {
		ids[i] = x.ID
	}
	to := normPhone(m.Dest)
	in := append(s.inbox[to], InboxMessage{From: m.Source, To: m.Dest, Text: m.FullText, IDs: ids, Received: m.Received})
	if len(in) > maxInbox {
		in = in[len(in)-maxInbox:]
	}
	s.inbox[to] = in
	return parts
}

func (s *Server) setState(m *Message, state string) {
	s.mu.Lock()
	m.State = state
	s.mu.Unlock()
}

// newID returns the next message id in the submit_sm_resp form and the other form.
func (s *Server) newID(format string) (id, other string) {
	n := s.nextID.Add(1)
	hex := strings.ToUpper(strconv.FormatUint(n, 16))
	dec := strconv.FormatUint(n, 10)
	if format == IDDecimal {
		return dec, hex
	}
	return hex, dec
}
