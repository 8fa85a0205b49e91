package smpp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"switchboard/smsgw/dlr"
)

const maxSeq = 0x7FFFFFFF

var (
	errShutdown   = errors.New("smpp: shutting down")
	errPeerUnbind = errors.New("smpp: SMSC sent unbind")
	// errNotSent is returned by session.write when the connection was
	// already closed: none of the bytes went out.
	errNotSent = errors.New("smpp: connection closed before sending")
)

type result struct {
	messageID string
	err       error
}

// pending is a request awaiting its response.
type pending struct {
	cmd   uint32
	slot  bool        // holds a Client.window token
	ch    chan result // buffered; receives exactly one result
	timer *time.Timer
	sent  time.Time // when it was queued for writing, for Config.OnResponse
	// w is the request's place among the PDUs the session wrote (see
	// session.wcount), set as it is written: once it is answered, the SMSC
	// has read every PDU written before it.
	w atomic.Uint64
}

// session is one bound connection. Its goroutines (read loop, keepalive,
// dispatch workers) are tracked by wg; fail ends them all.
type session struct {
	c    *Client
	conn net.Conn
	log  zerolog.Logger
	br   *bufio.Reader

	wmu      sync.Mutex
	bw       *bufio.Writer
	wclosed  atomic.Bool
	wwaiting atomic.Int32 // writers queued on wmu; the last one flushes
	wcount   uint64       // PDUs written so far; guarded by wmu

	// Whether the SMSC has read our responses to the messages it sent (see
	// ResponseMayBeUnread): a response is known read once a request of
	// ours written after it is answered, TCP and the SMSC reading in order.
	// Guarded by cmu.
	cmu     sync.Mutex
	respW   uint64 // place of the last OK response to a message from a phone
	acked   uint64 // place of the last request answered; below respW, responses are not known read
	stretch uint64 // counts the stretches of responses closed by an answer
	// handling counts, by stretch, the messages from phones handed to the
	// Handler and not answered yet: if the session ends meanwhile, no
	// response is ever written, and the SMSC sends them again.
	handling   map[uint64]int
	confirming atomic.Bool

	// draining: the session is ending (see drain); no request is sent.
	draining atomic.Bool

	pmu     sync.Mutex
	pending map[uint32]*pending // by sequence number; nil once dead
	seq     uint32
	// Generic_nacks with sequence 0 not yet matched to a timeout, and when
	// the last came: each excuses one request sent before it from ending
	// the session when it goes unanswered.
	nack0   int
	nack0At time.Time

	lastRx atomic.Int64 // UnixNano of the last PDU received

	done     chan struct{}
	failOnce sync.Once
	cause    error // set before done is closed

	id       uint64 // Deliver.Session
	dispatch chan *Deliver
	queued   atomic.Int32 // inbound PDUs taken and not yet answered
	order    sync.Mutex
	running  map[pair][]*Deliver // pairs being handled, with the PDUs waiting behind
	hctx     context.Context
	hcancel  context.CancelFunc

	// wg counts the session's goroutines, which wait waits for. Those
	// started once it may have begun — by a request's timer, or by the
	// handler answering from a goroutine of its own — go through spawn:
	// gmu orders their Add before wait's Wait (a WaitGroup's Add at a zero
	// count must not race its Wait).
	wg      sync.WaitGroup
	gmu     sync.Mutex
	waiting bool // guarded by gmu: wait has begun, spawn starts nothing
}

// sessions numbers the process's sessions; live holds the numbers of those
// bound and not failed; unread, the sessions that ended before the SMSC was
// known to have read their last responses (number → unreadEnd).
var (
	sessions atomic.Uint64
	live     sync.Map
	unread   sync.Map
)

// unreadEnd is how a session ended with responses not known read: from
// stretch on (noStretch: none), and in the stretches of handled, where
// messages were being handled, at at.
type unreadEnd struct {
	stretch uint64
	handled []uint64
	at      time.Time
}

const noStretch = math.MaxUint64

// unreadKept is how long an ended session's unread responses are
// remembered: an SMSC sends again what it had no answer for on its next
// bind, minutes later at most.
const unreadKept = time.Hour

// ResponseMayBeUnread reports whether the response to a message of session
// id (see Deliver.Session) handled in stretch (Deliver.Stretch) may not
// have reached the SMSC: the session has ended, and no request of ours
// written after that response was answered before it did. Such a message
// may come again, as a resend, on a later bind; one whose response the SMSC
// is known to have read comes again only because it was sent again (a
// person repeating "Yes"). After each OK response to a message the session
// makes sure the SMSC answers a request written after it (an enquire_link
// within ConfirmDelay, unless a submit_sm_resp does it first), so the
// uncertain stretch is short.
func ResponseMayBeUnread(id, stretch uint64) bool {
	if _, up := live.Load(id); up {
		return false
	}
	v, ok := unread.Load(id)
	if !ok {
		return false
	}
	e := v.(unreadEnd)
	return stretch >= e.stretch || slices.Contains(e.handled, stretch)
}

// Live reports whether the session numbered id (see Deliver.Session) is
// still up.
func Live(id uint64) bool {
	_, ok := live.Load(id)
	return ok
}

func newSession(c *Client, conn net.Conn) *session {
	return &session{
		c:        c,
		id:       sessions.Add(1),
		conn:     conn,
		log:      c.log,
		br:       bufio.NewReaderSize(conn, 16<<10),
		bw:       bufio.NewWriterSize(conn, 16<<10),
		pending:  make(map[uint32]*pending),
		done:     make(chan struct{}),
		dispatch: make(chan *Deliver, 9*c.cfg.DispatchWorkers),
		running:  make(map[pair][]*Deliver),
		handling: make(map[uint64]int),
		hcancel:  func() {},
	}
}

// bind sends bind_transceiver and waits for bind_transceiver_resp, before
// any of the session's goroutines run.
func (s *session) bind(ctx context.Context) error {
	if d, ok := ctx.Deadline(); ok {
		s.conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Now()) })
	defer stop()
	defer s.conn.SetDeadline(time.Time{})

	cfg := &s.c.cfg
	s.seq = 1
	b, err := encodeBindTransceiver(s.seq, cfg.SystemID, cfg.Password, cfg.SystemType)
	if err != nil {
		return err
	}
	if _, err := s.conn.Write(b); err != nil {
		return fmt.Errorf("smpp: bind: %w", err)
	}
	for {
		h, _, err := readPDU(s.br)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return fmt.Errorf("smpp: bind: %w", err)
		}
		switch {
		case h.ID == cmdBindTransceiver|respBit && h.Seq == s.seq,
			h.ID == cmdGenericNack && h.Seq == s.seq:
			if h.Status != 0 {
				return fmt.Errorf("%w: bind_transceiver rejected", Status(h.Status))
			}
			if h.ID == cmdGenericNack {
				return errors.New("smpp: bind_transceiver answered with generic_nack")
			}
			return nil
		case h.ID == cmdEnquireLink:
			if _, err := s.conn.Write(encodeHeaderOnly(cmdEnquireLink|respBit, 0, h.Seq)); err != nil {
				return fmt.Errorf("smpp: bind: %w", err)
			}
		default:
			s.log.Warn().Uint32("command_id", h.ID).Uint32("seq", h.Seq).Msg("smpp: PDU before bind_transceiver_resp ignored")
		}
	}
}

// start launches the session's goroutines. ctx supplies values (not
// cancellation) to Handler calls.
func (s *session) start(ctx context.Context) {
	live.Store(s.id, struct{}{}) // until fail
	s.hctx, s.hcancel = context.WithCancel(context.WithoutCancel(ctx))
	s.lastRx.Store(time.Now().UnixNano())
	s.wg.Add(2 + s.c.cfg.DispatchWorkers)
	go s.readLoop()
	go s.keepalive()
	for range s.c.cfg.DispatchWorkers {
		go s.worker()
	}
}

func (s *session) wait() {
	s.gmu.Lock()
	s.waiting = true
	s.gmu.Unlock()
	s.wg.Wait()
}

// spawn runs f in a goroutine of the session's, which wait waits for, and
// reports true; once wait has begun (the session is over) it starts
// nothing and reports false. Any goroutine may call it.
func (s *session) spawn(f func()) bool {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	if s.waiting {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func (s *session) err() error {
	<-s.done
	return s.cause
}

// fail ends the session: it closes the connection, and every pending
// request gets ErrUnknownOutcome at once. Safe to call many times, from any
// goroutine that does not hold pmu.
func (s *session) fail(cause error) {
	s.failOnce.Do(func() {
		s.cmu.Lock()
		e := unreadEnd{stretch: noStretch, at: time.Now()}
		if s.respW > s.acked {
			e.stretch = s.stretch
		}
		// A message being stored as the session ends gets no response:
		// the SMSC, which has not read one, sends it again.
		for k := range s.handling {
			e.handled = append(e.handled, k)
		}
		if e.stretch != noStretch || len(e.handled) > 0 {
			now := e.at
			unread.Store(s.id, e)
			unread.Range(func(k, v any) bool {
				if now.Sub(v.(unreadEnd).at) > unreadKept {
					unread.Delete(k)
				}
				return true
			})
		}
		s.cmu.Unlock()
		live.Delete(s.id)
		s.cause = cause
		s.wclosed.Store(true)
		close(s.done)
		s.conn.Close()
		s.hcancel()
		s.pmu.Lock()
		ps := s.pending
		s.pending = nil
		s.pmu.Unlock()
		if len(ps) > 0 {
			s.log.Warn().Err(cause).Int("in_flight", len(ps)).Msg("smpp: connection lost with requests in flight")
		}
		for _, p := range ps {
			s.finish(p, result{err: fmt.Errorf("%w: connection lost (%v)", ErrUnknownOutcome, cause)})
		}
	})
}

func (s *session) finish(p *pending, r result) {
	p.timer.Stop()
	if p.slot {
		<-s.c.window
	}
	p.ch <- r
}

// write sends one encoded PDU. Writers queue on wmu; the last one in the
// queue flushes, so bursts share TCP segments. It returns errNotSent if the
// connection was closed before any byte of b was written. Any other error
// fails the session.
func (s *session) write(b []byte) error { return s.writeFlush(b, false, nil) }

// writeLast writes a PDU after which the session ends (unbind_resp, a
// generic_nack before dropping the connection) and flushes at once: the
// writer waiting behind it, which would otherwise flush, finds the
// connection closed.
func (s *session) writeLast(b []byte) error { return s.writeFlush(b, true, nil) }

// writeFlush writes b, flushing if always or if no writer waits, and
// stores in w (if not nil) b's place among the PDUs written.
func (s *session) writeFlush(b []byte, always bool, w *atomic.Uint64) error {
	s.wwaiting.Add(1)
	s.wmu.Lock()
	s.wwaiting.Add(-1)
	defer s.wmu.Unlock()
	if s.wclosed.Load() {
		return errNotSent
	}
	s.wcount++
	if w != nil {
		w.Store(s.wcount)
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.c.cfg.RespTimeout))
	_, err := s.bw.Write(b)
	if err == nil && (always || s.wwaiting.Load() == 0) {
		err = s.bw.Flush()
	}
	if err != nil {
		s.fail(fmt.Errorf("smpp: write: %w", err))
	}
	return err
}

func (s *session) nextSeqLocked() uint32 {
	for {
		s.seq++
		if s.seq > maxSeq {
			s.seq = 1
		}
		if _, busy := s.pending[s.seq]; !busy {
			return s.seq
		}
	}
}

// request registers a pending request, encodes it with its sequence number
// and sends it. If slot is set the caller holds a window token, which the
// session now releases when the request completes (or here, on error).
//
// An error means nothing was sent: ErrNotBound if the session is dead, or
// the encoder's error. Otherwise exactly one result arrives on p.ch: the
// response, ErrUnknownOutcome after RespTimeout, or ErrUnknownOutcome when
// the connection is lost.
func (s *session) request(cmd uint32, slot bool, encode func(seq uint32) ([]byte, error)) (*pending, error) {
	p := &pending{cmd: cmd, slot: slot, ch: make(chan result, 1)}
	s.pmu.Lock()
	if s.pending == nil || s.draining.Load() {
		s.pmu.Unlock()
		if slot {
			<-s.c.window
		}
		return nil, ErrNotBound
	}
	seq := s.nextSeqLocked()
	p.sent = time.Now() // before p is shared: the read loop reads it
	s.pending[seq] = p
	p.timer = time.AfterFunc(s.c.cfg.RespTimeout, func() { s.timeout(seq, p) })
	s.pmu.Unlock()

	b, err := encode(seq)
	if err == nil {
		err = s.writeFlush(b, false, &p.w)
		if err != nil && !errors.Is(err, errNotSent) {
			return p, nil // fail has given p its ErrUnknownOutcome
		}
		if err != nil {
			err = ErrNotBound
		}
	}
	if err != nil {
		s.pmu.Lock()
		mine := s.pending != nil && s.pending[seq] == p
		if mine {
			delete(s.pending, seq)
		}
		s.pmu.Unlock()
		if mine {
			p.timer.Stop()
			if slot {
				<-s.c.window
			}
		} // else fail or the timer finished p and released the slot
		return nil, err
	}
	return p, nil
}

// timeout ends the request p, sent with sequence number seq, that has had
// no response within RespTimeout.
//
// An SMSC that leaves a request unanswered is hung or gone, or lost one
// answer: the session sends no more requests (every request sent into a
// hung SMSC would end with an unknown outcome and be sent again), but waits
// for the answers to those in flight before it drops the connection (see
// drain), so that one lost answer does not make every message of the
// window go twice. The client binds again with backoff. Except when a
// generic_nack with sequence 0 came after p was sent: the SMSC could not
// decode a PDU of ours and said so, which may have been p's answer; the
// SMSC is not hung. One such generic_nack excuses one request.
func (s *session) timeout(seq uint32, p *pending) {
	s.pmu.Lock()
	if s.pending == nil || s.pending[seq] != p {
		s.pmu.Unlock()
		return // answered, or the session failed, as the timer fired
	}
	delete(s.pending, seq)
	excused := s.nack0 > 0 && p.sent.Before(s.nack0At)
	if excused {
		s.nack0--
	}
	s.pmu.Unlock()
	d := s.c.cfg.RespTimeout
	if excused {
		s.log.Warn().Uint32("command_id", p.cmd).Uint32("seq", seq).Stringer("timeout", d).
			Msg("smpp: no response to a request; taken as the one the generic_nack with sequence 0 answered")
		s.finish(p, result{err: fmt.Errorf("%w: no response within %v (a generic_nack with sequence 0 may have answered it)", ErrUnknownOutcome, d)})
		return
	}
	s.finish(p, result{err: fmt.Errorf("%w: no response within %v", ErrUnknownOutcome, d)})
	s.drain(fmt.Errorf("no response to a request within %v", d), nil)
}

// drain ends the session with cause once the requests in flight are
// answered (or RespTimeout passes) and the messages from phones being
// handled are answered, sending no request meanwhile; last, if not nil, is
// written just before (the unbind_resp to the SMSC's unbind). The client
// counts as unbound from the start, so nothing is submitted on it.
func (s *session) drain(cause error, last []byte) {
	if !s.draining.CompareAndSwap(false, true) {
		return
	}
	s.pmu.Lock()
	n := len(s.pending)
	s.pmu.Unlock()
	s.log.Info().Err(cause).Int("in_flight", n).Int32("handling", s.queued.Load()).
		Msg("smpp: ending the session once the requests in flight are answered")
	if s.c.current() == s {
		s.c.setSession(nil)
	}
	started := s.spawn(func() {
		deadline := time.Now().Add(s.c.cfg.RespTimeout)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for time.Now().Before(deadline) {
			s.pmu.Lock()
			n, dead := len(s.pending), s.pending == nil
			s.pmu.Unlock()
			if dead {
				return
			}
			if n == 0 && s.queued.Load() == 0 {
				break
			}
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
		if last != nil {
			s.writeLast(last)
		}
		s.fail(cause)
	})
	if !started {
		s.fail(cause) // over already: nothing to wait for
	}
}

// complete delivers r to the request with sequence number seq. respID is
// the response's command_id: it must be the request's response or
// generic_nack; status is its command_status. It reports whether a request
// matched.
func (s *session) complete(seq, respID uint32, status Status, r result) bool {
	s.pmu.Lock()
	p := s.pending[seq]
	if p == nil || respID != p.cmd|respBit && respID != cmdGenericNack {
		s.pmu.Unlock()
		return false
	}
	delete(s.pending, seq)
	s.pmu.Unlock()
	s.answered(p.w.Load())
	if p.cmd == cmdSubmitSM {
		if s.c.cfg.OnResponse != nil {
			s.c.cfg.OnResponse(time.Since(p.sent))
		}
		// Before the Submit returns, so that its caller's next submit
		// sees the pause.
		switch {
		case status == StatusThrottled, status == StatusMsgQFul:
			s.c.thr.throttled(p.sent, status)
		case status == StatusOK && respID != cmdGenericNack && s.c.thr.until.Load() != 0:
			s.c.thr.accepted(p.sent)
		}
	}
	s.finish(p, r)
	return true
}

func (s *session) readLoop() {
	defer s.wg.Done()
	defer close(s.dispatch)
	for {
		h, body, err := readPDU(s.br)
		if err != nil {
			if le := (*lengthError)(nil); errors.As(err, &le) {
				s.log.Error().Uint32("command_length", h.Len).Uint32("command_id", h.ID).Uint32("seq", h.Seq).
					Msg("smpp: invalid command_length; sending generic_nack and dropping the connection")
				s.writeLast(encodeGenericNack(h.Seq, StatusInvCmdLen))
			}
			s.fail(fmt.Errorf("smpp: read: %w", err))
			return
		}
		s.lastRx.Store(time.Now().UnixNano())
		if h.ID&respBit != 0 {
			s.handleResp(h, body)
			continue
		}
		switch h.ID {
		case cmdEnquireLink:
			s.write(encodeHeaderOnly(cmdEnquireLink|respBit, 0, h.Seq))
		case cmdDeliverSM, cmdDataSM:
			s.handleDeliver(h, body)
		case cmdUnbind:
			// Answered once the submits in flight have their answers and
			// the messages being handled theirs, which the SMSC may still
			// send (else they would go again on the next bind, and the
			// phones get them twice); meanwhile nothing new is sent.
			s.log.Info().Msg("smpp: SMSC sent unbind")
			s.drain(errPeerUnbind, encodeHeaderOnly(cmdUnbind|respBit, 0, h.Seq))
		case cmdAlertNotification:
			s.log.Debug().Msg("smpp: alert_notification ignored")
		default:
			s.log.Warn().Uint32("command_id", h.ID).Uint32("seq", h.Seq).Msg("smpp: unsupported command; generic_nack")
			s.write(encodeGenericNack(h.Seq, StatusInvCmdID))
		}
	}
}

func (s *session) handleResp(h header, body []byte) {
	if h.ID == cmdGenericNack && h.Seq == 0 {
		s.handleNack0(h)
		return
	}
	var r result
	switch {
	case h.Status != 0:
		r.err = Status(h.Status)
	case h.ID == cmdGenericNack:
		r.err = StatusUnknownErr // a generic_nack must carry an error status
	case h.ID == cmdSubmitSM|respBit:
		r.messageID = decodeMessageID(body)
	}
	if !s.complete(h.Seq, h.ID, Status(h.Status), r) {
		ev := s.log.Warn().Uint32("command_id", h.ID).Uint32("seq", h.Seq).Uint32("status", h.Status)
		if h.ID == cmdSubmitSM|respBit {
			ev = ev.Str("message_id", r.messageID)
		}
		ev.Msg("smpp: response matches no request in flight (late or unsolicited)")
	}
	// ESME_RINVBNDSTS: the SMSC has lost our bind but kept the connection,
	// and will answer everything so. The request gets the status (above);
	// the session ends, and the client binds again.
	if Status(h.Status) == StatusInvBnd {
		s.fail(fmt.Errorf("smpp: the SMSC no longer has our bind: %w in a response (command_id 0x%08X)", StatusInvBnd, h.ID))
	}
}

// handleNack0 handles a generic_nack with sequence 0: the SMSC could not
// decode a PDU of ours far enough to read its sequence number (SMPP 3.4
// section 4.3). It cannot be matched to a request, so none is ended by it:
// the request it answered times out in its turn, with an unknown outcome,
// and that timeout does not end the session (see timeout). Our PDUs are
// well framed, so this is a defect on one side, logged at error level; an
// SMSC whose stream is truly lost closes the connection or stops
// answering, and the timeouts of the requests sent after it end the
// session.
func (s *session) handleNack0(h header) {
	s.pmu.Lock()
	s.nack0++
	s.nack0At = time.Now()
	s.pmu.Unlock()
	s.log.Error().Stringer("status", Status(h.Status)).
		Msg("smpp: generic_nack with sequence 0: the SMSC could not decode a PDU of ours; the request it answers will time out")
	if Status(h.Status) == StatusInvBnd {
		s.fail(fmt.Errorf("smpp: the SMSC no longer has our bind: %w in a generic_nack", StatusInvBnd))
	}
}

func (s *session) handleDeliver(h header, body []byte) {
	var d *Deliver
	var err error
	if h.ID == cmdDataSM {
		d, err = decodeDataSM(h, body)
	} else {
		d, err = decodeDeliverSM(h, body)
	}
	if err != nil {
		st := StatusInvCmdLen // the mandatory fields do not fit command_length
		errors.As(err, &st)   // or the decoder says what else is wrong
		s.log.Warn().Err(err).Uint32("command_id", h.ID).Uint32("seq", h.Seq).Stringer("status", st).Msg("smpp: malformed inbound PDU rejected")
		s.write(encodeDeliverResp(h.ID, h.Seq, st))
		return
	}
	d.Session = s.id
	if s.c.cfg.Handler == nil {
		s.write(encodeDeliverResp(h.ID, h.Seq, StatusRxTAppn))
		return
	}
	receipt := isReceipt(d)
	k := pair{d.Source.Addr, d.Dest.Addr}
	if !receipt {
		s.c.holds.stamp(d)
		if !s.c.holds.admit(s.log, k, d) {
			s.write(encodeDeliverResp(h.ID, h.Seq, StatusRxTAppn))
			return
		}
	}
	// DispatchWorkers PDUs are handled at once and eight times as many
	// wait; the channel has room for them all, so the send never blocks.
	if s.queued.Add(1) > int32(cap(s.dispatch)) {
		s.queued.Add(-1)
		s.log.Warn().Uint32("seq", h.Seq).Msg("smpp: dispatch queue full; answering ESME_RX_T_APPN")
		if !receipt {
			s.c.holds.refused(s.log, k, d)
		}
		s.write(encodeDeliverResp(h.ID, h.Seq, StatusRxTAppn))
		return
	}
	// Receipts need no order among them (each names its message): they go
	// straight to the workers.
	if receipt {
		s.dispatch <- d
		return
	}
	// The read loop alone starts pairs, so their PDUs keep the order they
	// came in.
	s.order.Lock()
	if q, busy := s.running[k]; busy {
		s.running[k] = append(q, d)
		s.order.Unlock()
		return
	}
	s.running[k] = nil
	s.order.Unlock()
	s.dispatch <- d
}

// worker handles inbound PDUs. Those between one pair of addresses (a
// phone's messages to a user; not receipts) are handled one at a time, in
// the order they came: the read loop queues a PDU whose pair is being
// handled behind it, and the worker handling the pair takes it next.
// Pairs run side by side. The read loop admits a pair's PDUs (Holds), but
// one refused while another of its pair waited behind it holds that one
// too: the worker asks again before it handles each.
func (s *session) worker() {
	defer s.wg.Done()
	for d := range s.dispatch {
		if isReceipt(d) {
			s.handle(d, nil)
			continue
		}
		k := pair{d.Source.Addr, d.Dest.Addr}
		for d != nil {
			if s.c.holds.admit(s.log, k, d) {
				s.handle(d, &k)
			} else {
				s.refuse(d)
			}
			s.order.Lock()
			if q := s.running[k]; len(q) > 0 {
				d, s.running[k] = q[0], q[1:]
			} else {
				d = nil
				delete(s.running, k)
			}
			s.order.Unlock()
		}
	}
}

// isReceipt tells whether d is a delivery receipt: by esm_class, or by the
// receipted_message_id TLV.
func isReceipt(d *Deliver) bool {
	_, tlv := d.TLVs[0x001E]
	return tlv || dlr.IsReceipt(d.ESMClass)
}

// pair is the source and destination addresses of an inbound PDU.
type pair struct{ src, dst string }

// handle calls the Handler for d and answers it. For a message from a
// phone to k (nil for a receipt), the answer is told to the holds first, so
// that they are up to date for the PDUs the SMSC sends after it.
func (s *session) handle(d *Deliver, k *pair) {
	defer s.queued.Add(-1)
	select {
	case <-s.done:
		return // the response could not be sent; the SMSC will redeliver
	default:
	}
	s.cmu.Lock()
	d.Stretch = s.stretch
	if k != nil {
		s.handling[d.Stretch]++
	}
	s.cmu.Unlock()
	handled := false // answered, or the answer written (see handling)
	defer func() {
		if k != nil && !handled {
			s.cmu.Lock()
			s.handled(d.Stretch)
			s.cmu.Unlock()
		}
	}()
	st := s.c.cfg.Handler.HandleDeliver(s.hctx, d)
	s.log.Debug().Uint32("command_id", d.Command).Uint32("seq", d.Seq).Stringer("status", st).Msg("smpp: inbound handled")
	switch {
	case k == nil:
	case st == StatusRxTAppn:
		s.c.holds.refused(s.log, *k, d)
	default:
		s.c.holds.taken(s.log, *k, d)
	}
	if k == nil || st != StatusOK {
		s.write(encodeDeliverResp(d.Command, d.Seq, st))
		return
	}
	// A message taken: the SMSC must be known to have read this response
	// (see ResponseMayBeUnread).
	var w atomic.Uint64
	if s.writeFlush(encodeDeliverResp(d.Command, d.Seq, st), false, &w) == nil {
		s.cmu.Lock()
		s.respW = max(s.respW, w.Load())
		s.handled(d.Stretch) // with respW: fail sees one or the other
		handled = true
		s.cmu.Unlock()
		s.confirm()
	}
}

// handled takes a message of stretch k off handling; cmu held.
func (s *session) handled(k uint64) {
	if s.handling[k]--; s.handling[k] <= 0 {
		delete(s.handling, k)
	}
}

// answered records that the SMSC answered the request written at place w
// (0: not written): it has read every response written before it, and a
// stretch of responses not known read ends.
func (s *session) answered(w uint64) {
	if w == 0 {
		return
	}
	s.cmu.Lock()
	if s.respW > s.acked && w > s.respW {
		s.stretch++
	}
	s.acked = max(s.acked, w)
	s.cmu.Unlock()
}

// unconfirmed tells whether responses written are not known read yet.
func (s *session) unconfirmed() bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.respW > s.acked
}

// enquireLink sends enquire_link, as a request whose answer is awaited on
// the returned pending.
func (s *session) enquireLink() (*pending, error) {
	return s.request(cmdEnquireLink, false, func(seq uint32) ([]byte, error) {
		return encodeHeaderOnly(cmdEnquireLink, 0, seq), nil
	})
}

// confirm makes sure, unless it is already under way, that a request is
// written after the responses not known read and answered: after
// ConfirmDelay, an enquire_link if nothing else (a submit_sm's response)
// has done it meanwhile, and again while responses written since are not
// known read. Its answer not coming within RespTimeout ends the session,
// as the keepalive's does.
func (s *session) confirm() {
	if !s.confirming.CompareAndSwap(false, true) {
		return
	}
	s.spawn(func() {
		t := time.NewTimer(s.c.cfg.ConfirmDelay)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				s.confirming.Store(false)
				return
			case <-t.C:
			}
			if s.unconfirmed() {
				p, err := s.enquireLink()
				if err != nil {
					s.confirming.Store(false)
					return
				}
				select {
				case <-p.ch:
				case <-s.done:
					s.confirming.Store(false)
					return
				}
			}
			// A response written as the flag is cleared finds it set and
			// leaves the confirming to this loop: look once more.
			s.confirming.Store(false)
			if !s.unconfirmed() || !s.confirming.CompareAndSwap(false, true) {
				return
			}
			t.Reset(s.c.cfg.ConfirmDelay)
		}
	})
}

// refuse answers d ESME_RX_T_APPN without handling it: its pair is held.
func (s *session) refuse(d *Deliver) {
	defer s.queued.Add(-1)
	s.write(encodeDeliverResp(d.Command, d.Seq, StatusRxTAppn))
}

// keepalive sends enquire_link when nothing has been received for
// EnquireLink, and fails the session if it goes unanswered.
func (s *session) keepalive() {
	defer s.wg.Done()
	every := s.c.cfg.EnquireLink
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		if idle := time.Since(time.Unix(0, s.lastRx.Load())); idle < every {
			t.Reset(every - idle)
			continue
		}
		p, err := s.enquireLink()
		if err != nil {
			return
		}
		select {
		case r := <-p.ch:
			if errors.Is(r.err, ErrUnknownOutcome) {
				s.fail(fmt.Errorf("smpp: enquire_link: %w", r.err))
				return
			}
		case <-s.done:
			return
		}
		t.Reset(every)
	}
}

// unbind sends unbind and waits for unbind_resp, at most RespTimeout.
func (s *session) unbind() {
	p, err := s.request(cmdUnbind, false, func(seq uint32) ([]byte, error) {
		return encodeHeaderOnly(cmdUnbind, 0, seq), nil
	})
	if err != nil {
		return
	}
	select {
	case r := <-p.ch:
		if r.err != nil {
			s.log.Warn().Err(r.err).Msg("smpp: no unbind_resp")
		}
	case <-s.done:
	}
}
