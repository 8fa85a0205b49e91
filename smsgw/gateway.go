// Package smsgw is the SMPP side of Switchboard: it submits stored messages
// over an SMPP 3.4 bind (subpackage smpp), turns delivery receipts into
// message states (subpackage dlr), and reassembles and hands on messages
// from phones. Text encoding and segmentation live in subpackage coding; the
// SMSC simulator in subpackage smsc.
package smsgw

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/failing"
	"switchboard/roster/number"
	"switchboard/smsgw/coding"
	"switchboard/smsgw/dlr"
	"switchboard/smsgw/smpp"
	"switchboard/store"
)

// Outbox is what the gateway needs from the store for messages to phones.
type Outbox interface {
	ClaimOutbound(ctx context.Context, owner string, limit int, lease time.Duration) ([]*store.Outbound, error)
	PartSubmitted(ctx context.Context, msgID int64, seq int, smsc string, forms []string) (final bool, err error)
	Receipt(ctx context.Context, smsc string, forms []string, state, errText string) (store.ReceiptResult, error)
	Retry(ctx context.Context, msgID int64, at time.Time, reason string, refund bool) error
	Replan(ctx context.Context, msgID int64, owner string, parts int) (bool, error)
	FailWith(ctx context.Context, msgID int64, reason, condition string) error
	MessageState(ctx context.Context, id int64) (state, errText string, err error)
	AddFragment(ctx context.Context, f store.Fragment) ([]store.Fragment, error)
	StaleFragments(ctx context.Context, cutoff time.Time) ([][]store.Fragment, error)
	DropFragments(ctx context.Context, k store.FragmentKey) error
	Reassembled(ctx context.Context, k store.FragmentKey, texts []string) (bool, error)
	Sweep(ctx context.Context) (receipts int64, err error)
	EndReceiptWaits(ctx context.Context, cutoff time.Time) (int64, error)
}

// Inbox is where messages from phones go. The router satisfies it.
type Inbox interface {
	// Inbound stores a message; it returns once it is committed, or once
	// the store found it a resend (in.Duplicate), or an error wrapping
	// ErrNoRecipient (tested with errors.Is against Config.NoRecipient)
	// when no user has its number.
	Inbound(ctx context.Context, in *store.Inbound) error
}

// Submitter sends submit_sm. *smpp.Client satisfies it.
type Submitter interface {
	Submit(ctx context.Context, s *smpp.Submit) (string, error)
	Bound() bool
}

// Config configures a Gateway. Zero values mean the defaults.
type Config struct {
	Instance string // lease owner in a shared store; required
	// MaxAttempts is how many times a message is claimed for submission
	// before it fails back to its sender. A claim that sent nothing (no
	// bind up), or whose submit_sm a busy SMSC refused (ESME_RTHROTTLED,
	// ESME_RMSGQFUL) or a bind in the wrong state (ESME_RINVBNDSTS), does
	// not count, for a message with a validity period. Default 8.
	MaxAttempts int
	// Concurrency is how many messages are submitted at once. Default 64.
	Concurrency int
	// MaxParts is the most SMS parts a message planned again at sending
	// may take (see replan), as router.Config.MaxParts is for a new one.
	// Default 10.
	MaxParts int
	// Reassembly is how long parts of a concatenated message from a phone
	// are kept waiting for the rest. Default 2 minutes; then what arrived is
	// delivered with the gaps marked.
	Reassembly time.Duration
	// DefaultRegion is the ISO 3166 region of national numbers (TON 2, or
	// TON 0 not valid as international) in messages from phones.
	DefaultRegion string
	// ReceiptWait is how long a submitted message waits for its carrier's
	// receipts; then it ends as sent, its delivery not confirmed. Default
	// 72 hours.
	ReceiptWait time.Duration
	// NoRecipient is the error Inbox returns for a number nobody has.
	NoRecipient error
	// Unread tells whether the SMSC may not have read the response to a
	// message from a phone that came on this process's bind numbered n, in
	// its stretch of responses numbered stretch (smpp.Deliver's Session and
	// Stretch). Default smpp.ResponseMayBeUnread.
	Unread func(n, stretch uint64) bool
	// OnFinal is called when a message reached a final state and its
	// notice waits to be claimed (it was not handed to the store's notice
	// sink).
	OnFinal func()
	// OnMessage, if set, is called with each outcome of an SMS, for
	// metrics: direction "out", route "sms", outcome "delivered" or
	// "failed"; direction "in", outcome "refused" for a message from a
	// phone to a number nobody has.
	OnMessage func(direction, route, outcome string)
	// OnSubmit, if set, is called for each submit_sm sent, with the SMSC's
	// answer: "ok", "temporary", "permanent", "unknown" (no response) or
	// "error".
	OnSubmit func(status string)
	// OnReceipt, if set, is called for each final receipt that settles a
	// part, with the time since the part's submit_sm_resp was recorded.
	OnReceipt func(latency time.Duration)
	Logger    zerolog.Logger
}

// Gateway moves messages between the store and an SMPP bind.
type Gateway struct {
	cfg    Config
	claims failing.Log // failures to claim messages (a store that is down)
	outbox Outbox
	inbox  Inbox
	links  []*Link
	narrow bool // some SMSC's data coding 0 is not GSM 03.38
	rr     atomic.Uint64
	noIDs  sync.Map // SMSCs warned about for accepting messages without an id
	log    zerolog.Logger
	wake   chan struct{}
	sem    chan struct{}
	wg     sync.WaitGroup
	order  order // a sender's messages to one number, submitted in turn

	mu   sync.Mutex      // guards work, and wg.Add against Run ending
	work context.Context // Run's submission context; nil when Run is not running
}

// New returns a gateway; Run it. Set the SMPP client with SetSubmitter before Run.
func New(cfg Config, outbox Outbox, inbox Inbox) *Gateway {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.MaxParts <= 0 {
		cfg.MaxParts = 10
	}
	if cfg.ReceiptWait <= 0 {
		cfg.ReceiptWait = 72 * time.Hour
	}
	if cfg.Reassembly <= 0 {
		cfg.Reassembly = 2 * time.Minute
	}
	if cfg.OnFinal == nil {
		cfg.OnFinal = func() {}
	}
	if cfg.Unread == nil {
		cfg.Unread = smpp.ResponseMayBeUnread
	}
	if cfg.OnMessage == nil {
		cfg.OnMessage = func(string, string, string) {}
	}
	if cfg.OnSubmit == nil {
		cfg.OnSubmit = func(string) {}
	}
	if cfg.OnReceipt == nil {
		cfg.OnReceipt = func(time.Duration) {}
	}
	return &Gateway{
		cfg:    cfg,
		outbox: outbox,
		inbox:  inbox,
		log:    cfg.Logger.With().Str("component", "smsgw").Logger(),
		wake:   make(chan struct{}, 1),
		sem:    make(chan struct{}, cfg.Concurrency),
	}
}

// Link is one bind to an SMSC.
type Link struct {
	// SMSC names the SMSC; SMSC message ids are compared only within one.
	// Binds to the same SMSC share the name. "" is the default SMSC.
	SMSC string
	// Prefixes are the E.164 destination prefixes this SMSC takes, such
	// as "+1" or "+4477"; none means any destination.
	Prefixes []string
	// Alphabet is what data coding 0 means on this SMSC (the same for
	// all its binds): how text sent so is written, and how text from
	// phones is read. Default GSM 03.38.
	Alphabet coding.Alphabet
	Client   Submitter
}

// match is how long a prefix of l matches dest: 0 for an SMSC that takes
// any destination, -1 for none.
func (l *Link) match(dest string) int {
	n := -1
	if len(l.Prefixes) == 0 {
		n = 0
	}
	for _, p := range l.Prefixes {
		if strings.HasPrefix(dest, p) && len(p) > n {
			n = len(p)
		}
	}
	return n
}

// AddLink adds a bind. Its client's Handler should be g.Handler(l.SMSC).
// Call before Run, and before the bind's client runs.
func (g *Gateway) AddLink(l Link) {
	g.links = append(g.links, &l)
	if l.Alphabet != coding.GSM {
		g.narrow = true
	}
}

// Parts is how many SMS parts text to dest (E.164) takes, as the gateway
// will submit it: the router and the verifier store it with the message.
// It depends on the SMSCs that may carry the message (see planAlphabet).
func (g *Gateway) Parts(dest, text string) int {
	_, n := g.planAlphabet(dest).Count(text)
	return n
}

// planAlphabet is the alphabet that plans a message to dest: the narrowest
// of the SMSCs whose prefixes match dest, failover included (for a short
// code, of every SMSC), so that the message takes the same parts whichever
// of them sends it (text one of them cannot write as data coding 0 goes as
// UCS-2 on all).
func (g *Gateway) planAlphabet(dest string) coding.Alphabet {
	a := coding.GSM
	if !g.narrow {
		return a
	}
	for _, l := range g.links {
		// A short code goes through the SMSC it came from: any of them.
		if l.match(dest) >= 0 || number.IsShortCode(dest) {
			a = max(a, l.Alphabet)
		}
	}
	return a
}

// smscAlphabet is what data coding 0 means on SMSC smsc.
func (g *Gateway) smscAlphabet(smsc string) coding.Alphabet {
	if g.narrow {
		for _, l := range g.links {
			if l.SMSC == smsc {
				return l.Alphabet
			}
		}
	}
	return coding.GSM
}

// SetSubmitter adds the one bind of a single-SMSC setup.
func (g *Gateway) SetSubmitter(s Submitter) { g.AddLink(Link{Client: s}) }

// Handler returns the handler for deliver_sm and data_sm from SMSC smsc.
// Text in data coding 0 is read in the Alphabet of smsc's links.
func (g *Gateway) Handler(smsc string) smpp.Handler {
	return smpp.HandlerFunc(func(ctx context.Context, d *smpp.Deliver) smpp.Status { return g.handleDeliver(ctx, smsc, d) })
}

// anyBound reports whether some bind is up.
func (g *Gateway) anyBound() bool {
	for _, l := range g.links {
		if l.Client.Bound() {
			return true
		}
	}
	return false
}

// pick chooses the bind for a destination: among the SMSCs whose prefixes
// match, the longest match wins; its binds that are up take turns; when
// none is up, the next-best matching SMSC takes over (failover). nil means
// no matching bind is up.
func (g *Gateway) pick(dest string) *Link {
	// Called per message: keep the candidates in one small slice rather
	// than a map of every match length.
	top := -1
	var cands []*Link
	for _, l := range g.links {
		n := l.match(dest)
		if n < 0 || n < top || !l.Client.Bound() {
			continue
		}
		if n > top {
			top, cands = n, cands[:0]
		}
		cands = append(cands, l)
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[int(g.rr.Add(1)%uint64(len(cands)))]
}

// pickSMSC chooses a bind of SMSC name that is up, the binds taking
// turns; nil when none is. known tells whether any bind of that SMSC is
// configured at all.
func (g *Gateway) pickSMSC(name string) (l *Link, known bool) {
	var cands []*Link
	for _, l := range g.links {
		if l.SMSC != name {
			continue
		}
		known = true
		if l.Client.Bound() {
			cands = append(cands, l)
		}
	}
	if len(cands) == 0 {
		return nil, known
	}
	return cands[int(g.rr.Add(1)%uint64(len(cands)))], true
}

// route chooses the bind for m: by destination prefix (pick), or, for a
// short code, one of the SMSC it wrote through, with no failover: its
// digits name a service only in that SMSC's network. known is false when
// that SMSC is not configured any more.
func (g *Gateway) route(m *store.Outbound) (l *Link, known bool) {
	if number.IsShortCode(m.Dest) {
		return g.pickSMSC(m.SMSC)
	}
	return g.pick(m.Dest), true
}

// Wake makes the gateway look for queued messages now.
func (g *Gateway) Wake() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

const (
	claimLease = 2 * time.Minute
	claimPoll  = time.Second
)

// Run submits queued messages and sweeps stale fragments until ctx ends;
// then it waits up to drain for the submissions in flight to get their
// responses (after that they end with an unknown outcome and are resubmitted
// after the restart).
func (g *Gateway) Run(ctx context.Context, drain time.Duration) error {
	if len(g.links) == 0 {
		return errors.New("smsgw: no SMPP bind set")
	}
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(drain, cancel) })
	defer stop()
	defer g.wg.Wait()
	g.mu.Lock()
	g.work = work
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.work = nil
		g.mu.Unlock()
	}()
	t := time.NewTicker(claimPoll)
	defer t.Stop()
	sweep := time.NewTicker(min(g.cfg.Reassembly/4, 15*time.Second))
	defer sweep.Stop()
	for {
		if g.anyBound() {
			for g.claim(ctx, work) {
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-g.wake:
		case <-t.C:
		case <-sweep.C:
			g.sweepFragments(ctx)
			g.sweepStore(ctx)
		}
	}
}

// claim takes one batch of due messages and starts submitting them. It
// reports whether a full batch was claimed (so there may be more).
func (g *Gateway) claim(ctx, work context.Context) bool {
	limit := cap(g.sem)
	msgs, err := g.outbox.ClaimOutbound(ctx, g.cfg.Instance, limit, claimLease)
	if err != nil {
		if ctx.Err() == nil {
			g.claims.Fail(g.log, err, "claiming messages to send as SMS failed; retrying (the store?)")
		}
		return false
	}
	g.claims.OK(g.log, "claiming messages to send as SMS works again")
	for _, m := range msgs {
		select {
		case g.sem <- struct{}{}:
		case <-ctx.Done():
			// Not started: give it back at once rather than waiting for the lease.
			_ = g.outbox.Retry(context.WithoutCancel(ctx), m.ID, time.Now(), "shutting down", true)
			continue
		}
		g.start(work, m)
	}
	return len(msgs) == limit
}

// start submits m on a slot it holds, in a goroutine of its own, after the
// messages from its sender to its number started before it: a user's
// messages to a phone leave in the order they came (the claim and the
// router's batches take them in that order), as a phone's come to the
// user. It is called in that order, from one goroutine at a time. (Not
// kept: a message retried after a temporary failure; one left queued
// while every slot was taken, which a later one, handed off once slots
// were free, may pass.)
func (g *Gateway) start(work context.Context, m *store.Outbound) {
	prev, done := g.order.next([2]string{m.SenderNumber, m.Dest})
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() { <-g.sem }()
		defer done()
		if prev != nil {
			<-prev // ends: the one before is submitted, or failed, or given back
		}
		g.submit(work, m)
	}()
}

// order chains the submissions of messages with one sender and number.
type order struct {
	mu   sync.Mutex
	tail map[[2]string]chan struct{} // closed when the pair's last message started is done
}

// next returns what a message of key waits for before its submission (nil:
// nothing) and the func that ends its turn.
func (o *order) next(key [2]string) (prev <-chan struct{}, done func()) {
	ch := make(chan struct{})
	o.mu.Lock()
	if o.tail == nil {
		o.tail = make(map[[2]string]chan struct{})
	}
	prev, o.tail[key] = o.tail[key], ch
	o.mu.Unlock()
	return prev, func() {
		close(ch)
		o.mu.Lock()
		if o.tail[key] == ch {
			delete(o.tail, key)
		}
		o.mu.Unlock()
	}
}

// Hand-off: the router stores a new SMS already leased to this instance
// and passes it straight here, instead of storing it queued and the gateway
// claiming it back (a transaction and a row update per message saved, and
// the claim's wait). Only as many messages as there are free submission
// slots are taken, reserved before they are stored, so none waits in memory
// for a slot while its lease runs out. After a crash the lease expires and
// ClaimOutbound takes them, as for any claimed message.

// Reserve reserves up to max submission slots for messages the caller will
// store leased to owner until until, then pass to Take. n is how many were
// reserved: 0 when Run is not running or no bind is up.
func (g *Gateway) Reserve(max int) (owner string, until time.Time, n int) {
	g.mu.Lock()
	running := g.work != nil
	g.mu.Unlock()
	if !running || !g.anyBound() {
		return "", time.Time{}, 0
	}
	for n < max {
		select {
		case g.sem <- struct{}{}:
			n++
		default:
			return g.cfg.Instance, time.Now().Add(claimLease), n
		}
	}
	return g.cfg.Instance, time.Now().Add(claimLease), n
}

// Take starts submitting msgs, stored with the lease Reserve gave, each on
// one of the reserved slots; the slots msgs do not use are released.
func (g *Gateway) Take(msgs []*store.Outbound, reserved int) {
	for range reserved - len(msgs) {
		<-g.sem
	}
	if len(msgs) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.work == nil {
		// Run ended after Reserve: give them back at once rather than
		// waiting for the lease.
		for _, m := range msgs {
			_ = g.outbox.Retry(context.Background(), m.ID, time.Now(), "shutting down", true)
			<-g.sem
		}
		return
	}
	work := g.work
	for _, m := range msgs {
		g.start(work, m)
	}
}

// submit sends the parts of one message that have no SMSC id yet.
func (g *Gateway) submit(ctx context.Context, m *store.Outbound) {
	claimed := time.Now()
	bg := context.WithoutCancel(ctx)
	if !m.ExpiresAt.IsZero() && time.Now().After(m.ExpiresAt) {
		g.fail(bg, m, "it could not be handed to the carrier within its validity period")
		return
	}
	if m.Attempts > g.cfg.MaxAttempts {
		g.fail(bg, m, fmt.Sprintf("the carrier did not accept it after %d attempts", m.Attempts-1))
		return
	}
	src, ok := sourceAddr(m.SenderNumber)
	if !ok {
		g.fail(bg, m, "the sender's number is not valid")
		return
	}
	dst, ok := destAddr(m)
	if !ok {
		g.fail(bg, m, "the destination number is not valid")
		return
	}
	plan := g.planAlphabet(m.Dest)
	unwritable := "the text could not be encoded as SMS"
	// The concatenation reference: 8 bits (IE 0x00; every handset joins
	// those, not all the 16-bit IE 0x08), and the message id's low byte, so
	// that a part sent again after a restart or by another instance
	// carries the same one. Two long messages from one sender to one phone
	// share it only when their ids are a multiple of 256 apart, which no
	// function of the id avoids; a reference chosen to differ from the
	// pair's other messages in flight would have to be stored with the
	// message (a column and a read per long message) and is not.
	dc, parts, err := plan.Segment(m.Body, uint8(m.ID), 255)
	if err == nil && len(parts) != m.Parts {
		was := plan
		var ok bool
		if plan, ok = g.replan(bg, m, plan, len(parts)); !ok {
			return
		}
		if len(m.Done) > 0 {
			unwritable = "part of it was sent before the SMSC's alphabet changed, and the rest cannot be sent in the same parts"
		}
		if plan != was {
			dc, parts, err = plan.Segment(m.Body, uint8(m.ID), 255)
		}
	}
	if err != nil || len(parts) != m.Parts {
		g.fail(bg, m, "the text could not be encoded as SMS")
		return
	}
	esm := byte(0)
	if len(parts) > 1 {
		esm = coding.ESMClassUDHI
	}
	written := plan // the alphabet of parts' octets
	link, known := g.route(m)
	if !known {
		g.fail(bg, m, "the SMSC that carried the short code's message is no longer configured")
		return
	}
	for i := range parts {
		seq := i + 1
		if m.Done[seq] {
			continue
		}
		if link == nil || !link.Client.Bound() {
			if link, _ = g.route(m); link == nil {
				g.retry(bg, m, time.Second, "no bind to an SMSC for "+m.Dest+" is up", true)
				return
			}
		}
		if dc == coding.DCDefault && link.Alphabet != written {
			// The same parts (plan is the narrowest alphabet of the
			// SMSCs for m.Dest), written in this SMSC's alphabet.
			d, p, err := link.Alphabet.Segment(m.Body, uint8(m.ID), 255)
			if err != nil || d != dc || len(p) != len(parts) {
				g.fail(bg, m, unwritable)
				return
			}
			parts, written = p, link.Alphabet
		}
		id, err := link.Client.Submit(ctx, &smpp.Submit{
			Source:             src,
			Dest:               dst,
			ESMClass:           esm,
			DataCoding:         dc,
			RegisteredDelivery: 1,
			ShortMessage:       parts[i],
			// A part not sent by half its lease goes back to the queue
			// rather than being sent while another claim may take it.
			SendBy: claimed.Add(claimLease / 2),
		})
		if err != nil {
			g.submitError(bg, m, seq, err)
			return
		}
		g.cfg.OnSubmit("ok")
		final, err := g.record(ctx, claimed, m, seq, link.SMSC, id)
		if err != nil {
			return
		}
		g.log.Debug().Int64("msg", m.ID).Int("part", seq).Str("smsc", link.SMSC).Str("smsc_id", id).Msg("submitted")
		if final {
			// A receipt that came before this submit_sm_resp settled it.
			if state, _, err := g.outbox.MessageState(bg, m.ID); err == nil {
				g.cfg.OnMessage(store.Out, store.RouteSMS, state)
			}
			g.cfg.OnFinal()
		}
	}
}

// record records the SMSC id of part seq of m, which SMSC smsc accepted
// (an OK submit_sm_resp) with message_id id. An OK response is the SMSC's
// final acceptance (SMPP 3.4 §4.4.2): whatever happens here, the part is
// not submitted again. So an id the store cannot take (none at all) is
// recorded as noID; a store outage is retried while the lease holds; and
// on an error the part's message is left alone (gone, or refused twice).
// The error is logged.
func (g *Gateway) record(ctx context.Context, claimed time.Time, m *store.Outbound, seq int, smsc, id string) (final bool, err error) {
	bg := context.WithoutCancel(ctx)
	none := []string{noID(m.ID, seq)}
	forms := dlr.IDForms(id)
	given := len(forms) > 0
	if !given {
		if _, warned := g.noIDs.LoadOrStore(smsc, true); !warned {
			g.log.Warn().Str("smsc", smsc).Msg("the SMSC accepts messages without a message_id: their receipts cannot be matched, so they end as sent after sms.receipt_wait, their delivery not confirmed")
		}
		forms = none
	}
	final, err = g.outbox.PartSubmitted(bg, m.ID, seq, smsc, forms)
	if errors.Is(err, store.ErrInvalid) && given {
		g.log.Error().Int64("msg", m.ID).Int("part", seq).Err(err).Str("smsc_id", id).Msg("the store refused the SMSC id; recorded as none, so the part is not sent again")
		forms = none
		final, err = g.outbox.PartSubmitted(bg, m.ID, seq, smsc, forms)
	}
	// A store outage must not make the SMSC send the part again. Keep
	// trying to record the id while the lease holds.
	for wait := 250 * time.Millisecond; outage(err) && time.Since(claimed) < claimLease/2 && ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
		g.log.Warn().Int64("msg", m.ID).Err(err).Str("smsc_id", id).Stringer("retry_in", wait).Msg("recording SMSC id failed; retrying")
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		final, err = g.outbox.PartSubmitted(bg, m.ID, seq, smsc, forms)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		g.log.Warn().Int64("msg", m.ID).Int("part", seq).Str("smsc_id", id).Msg("message deleted while it was being submitted")
	case err != nil && !outage(err):
		g.log.Error().Int64("msg", m.ID).Int("part", seq).Err(err).Str("smsc_id", id).Msg("recording SMSC id refused")
	case err != nil:
		// Its receipt will be kept as early, and the lease will expire
		// and resubmit. Log loudly; this is a long store outage.
		g.log.Error().Int64("msg", m.ID).Err(err).Str("smsc_id", id).Msg("recording SMSC id failed")
	}
	return final, err
}

// outage tells whether err, from the store, may go away if the call is
// made again: an error of the database, not a refusal of the request.
func outage(err error) bool {
	return err != nil && !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound)
}

// noID is the SMSC id recorded for part seq of message msg when its SMSC
// gave none: unique, and matched by no receipt. Receipts are matched by
// the forms dlr.IDForms gives, which, for an id of 64 characters or
// fewer, are in lower case; this one is shorter, with upper case letters.
func noID(msg int64, seq int) string {
	return "NOID/" + strconv.FormatInt(msg, 10) + "/" + strconv.Itoa(seq)
}

// replan deals with a message whose text takes n parts as the gateway
// plans it now (in alphabet now), not the m.Parts it was accepted with:
// the alphabets of the SMSCs for its destination changed since
// (smpp.default_alphabet, or an SMSC added or removed, across a restart).
// It returns the alphabet to cut the parts with; false when it has failed
// the message or left it to another instance.
//
// When none of its parts was submitted, the message takes the n parts:
// the store records the count, which decides when every part has an SMSC
// id, and sms.max_parts holds for it as for a new message. The limits on
// sending count messages, not parts, so its sender's counts stay as they
// are.
//
// When some were, the rest must be cut as they were: the phone joins parts
// by their UDH's total and sequence numbers, and parts cut another way
// would repeat or lose text. A text has two cuts, as GSM 03.38 (data coding
// 0 in any alphabet, written in the SMSC's octets) and as UCS-2; as the
// counts differ the cut differs, and the known alphabet whose plan has
// m.Parts parts cuts the text as it was. Its parts as UCS-2 go on any SMSC;
// as data coding 0 only on one whose alphabet has every character of the
// text (UCS-2 or 8-bit parts hold fewer characters), else submit fails the
// message, saying so. Had the cut changed with the count the same (text of
// many GSM extension characters), it goes unseen: the store keeps counts,
// not cuts.
func (g *Gateway) replan(ctx context.Context, m *store.Outbound, now coding.Alphabet, n int) (coding.Alphabet, bool) {
	if len(m.Done) == 0 {
		if n > g.cfg.MaxParts {
			g.fail(ctx, m, fmt.Sprintf("the SMSC's alphabet changed since it was accepted: it would now take %d SMS, and at most %d are allowed", n, g.cfg.MaxParts))
			return 0, false
		}
		ok, err := g.outbox.Replan(ctx, m.ID, g.cfg.Instance, n)
		if err != nil {
			g.log.Error().Int64("msg", m.ID).Err(err).Msg("recording the parts planned again failed")
			g.retry(ctx, m, backoff(m.Attempts), "recording its parts failed", false)
			return 0, false
		}
		if !ok {
			// Another instance holds it now: its lease ran out.
			return 0, false
		}
		g.log.Info().Int64("msg", m.ID).Int("parts_before", m.Parts).Int("parts", n).Msg("parts planned again: the SMSC's alphabet changed")
		m.Parts = n
		return now, true
	}
	for _, a := range []coding.Alphabet{coding.GSM, coding.Latin1, coding.ASCII} {
		if _, k := a.Count(m.Body); k == m.Parts {
			g.log.Info().Int64("msg", m.ID).Int("parts", m.Parts).Stringer("cut_as", a).Msg("the rest of a message cut as before the SMSC's alphabet changed")
			return a, true
		}
	}
	g.fail(ctx, m, fmt.Sprintf("part of it was sent before the SMSC's alphabet changed, and no alphabet makes its %d parts any more", m.Parts))
	return 0, false
}

func (g *Gateway) submitError(ctx context.Context, m *store.Outbound, seq int, err error) {
	var st smpp.Status
	switch {
	case errors.Is(err, smpp.ErrNotBound), errors.Is(err, context.Canceled), errors.Is(err, smpp.ErrNotSentBy):
		// Nothing was sent: back in the queue, not counted as an attempt.
		g.retry(ctx, m, 0, "waiting for the SMSC", true)
	case errors.Is(err, smpp.ErrUnknownOutcome):
		// The SMSC may or may not have the part. Rule: resubmit
		// (at-least-once), bounded by MaxAttempts.
		g.log.Warn().Int64("msg", m.ID).Int("part", seq).Msg("no submit_sm_resp: outcome unknown, will resubmit")
		g.cfg.OnSubmit("unknown")
		g.retry(ctx, m, backoff(m.Attempts), "the SMSC did not answer", false)
	case errors.As(err, &st) && (st == smpp.StatusThrottled || st == smpp.StatusMsgQFul):
		// The SMSC is busy, not refusing the message: back in the queue
		// without counting an attempt (steady throttling would use them
		// up in minutes), until its validity period ends (submit then
		// fails it). A message without one counts its attempts, to end
		// somewhere.
		g.log.Info().Int64("msg", m.ID).Int("part", seq).Stringer("status", st).Msg("SMSC busy; will resubmit")
		g.cfg.OnSubmit("temporary")
		g.retry(ctx, m, backoff(m.Attempts), st.Error(), !m.ExpiresAt.IsZero())
	case errors.As(err, &st) && st == smpp.StatusInvBnd:
		// ESME_RINVBNDSTS speaks of the bind, not of the message: the
		// session binds again (smpp), and the message waits for it
		// without counting an attempt, as when no bind is up.
		g.log.Warn().Int64("msg", m.ID).Int("part", seq).Stringer("status", st).Msg("SMSC says the bind is in the wrong state; will resubmit")
		g.cfg.OnSubmit("temporary")
		g.retry(ctx, m, time.Second, "waiting for the SMSC", !m.ExpiresAt.IsZero())
	case errors.As(err, &st) && st.Temporary():
		g.log.Info().Int64("msg", m.ID).Int("part", seq).Stringer("status", st).Msg("temporary SMSC error")
		g.cfg.OnSubmit("temporary")
		g.retry(ctx, m, backoff(m.Attempts), st.Error(), false)
	case errors.As(err, &st):
		g.cfg.OnSubmit("permanent")
		words, cond := refusal(st)
		if cond == "" {
			// A status about our PDUs or the bind, not about this
			// message: every message may fail so until an operator looks.
			g.log.Error().Int64("msg", m.ID).Int("part", seq).Stringer("status", st).
				Msg("the SMSC refused a submit_sm as malformed or not allowed on this bind; check the SMSC settings")
		}
		reason := words + " (" + strings.TrimPrefix(st.Error(), "smpp: ") + ")"
		if seq > 1 {
			reason = fmt.Sprintf("part %d of %d: %s; the parts before it were sent", seq, m.Parts, reason)
		}
		g.failWith(ctx, m, reason, cond)
	default:
		g.cfg.OnSubmit("error")
		g.retry(ctx, m, backoff(m.Attempts), err.Error(), false)
	}
}

func (g *Gateway) retry(ctx context.Context, m *store.Outbound, after time.Duration, reason string, refund bool) {
	if err := g.outbox.Retry(ctx, m.ID, time.Now().Add(after), reason, refund); err != nil {
		g.log.Error().Int64("msg", m.ID).Err(err).Msg("requeueing failed; the lease will expire and requeue it")
	}
}

// refusal puts an SMSC's permanent refusal of a submit_sm in words for the
// sender, with the XMPP stanza error condition it calls for: "" for the
// statuses that speak of our PDUs or the bind rather than of the message
// (the sender gets the default, recipient-unavailable, and the operator an
// error in the log).
func refusal(st smpp.Status) (words, condition string) {
	switch st {
	case smpp.StatusInvDstAdr, smpp.StatusInvDstTON, smpp.StatusInvDstNPI:
		return "the carrier does not know this number", "item-not-found"
	case smpp.StatusInvSrcAdr, smpp.StatusInvSrcTON, smpp.StatusInvSrcNPI:
		return "the carrier does not accept your number as the sender", "not-allowed"
	case smpp.StatusInvMsgLen:
		return "the carrier says the text is too long", "not-acceptable"
	case smpp.StatusInvDCS:
		return "the carrier does not take text in this alphabet", "not-acceptable"
	case smpp.StatusInvCmdLen, smpp.StatusInvCmdID, smpp.StatusInvEsmClass, smpp.StatusInvSerTyp,
		smpp.StatusInvRegDlvFlg, smpp.StatusInvOptParStream, smpp.StatusOptParNotAllwd, smpp.StatusInvParLen,
		smpp.StatusMissingOptParam, smpp.StatusInvOptParamVal:
		return "the gateway and the carrier disagree on how to send it; the operator has been told", ""
	}
	return "the carrier refused it", "recipient-unavailable"
}

func (g *Gateway) fail(ctx context.Context, m *store.Outbound, reason string) {
	g.failWith(ctx, m, reason, "")
}

// failWith fails m with reason and the stanza error condition condition
// ("" the default, recipient-unavailable).
func (g *Gateway) failWith(ctx context.Context, m *store.Outbound, reason, condition string) {
	g.log.Info().Int64("msg", m.ID).Str("reason", reason).Msg("message failed")
	if err := g.outbox.FailWith(ctx, m.ID, reason, condition); err != nil {
		g.log.Error().Int64("msg", m.ID).Err(err).Msg("recording failure failed")
		return
	}
	g.cfg.OnMessage(store.Out, store.RouteSMS, store.StateFailed)
	g.cfg.OnFinal()
}

// backoff is the wait before attempt n+1: 1s, 2s, 4s … up to 5 minutes, with jitter.
func backoff(n int) time.Duration {
	d := time.Second << min(max(n-1, 0), 9)
	d = min(d, 5*time.Minute)
	return d/2 + rand.N(d/2+1)
}

// destAddr renders an SMS's destination: an E.164 number as TON 1 / NPI 1
// without the "+"; a short code (an answer to one that wrote: see
// store.ShortCodeWrote) by shortCodeAddr.
func destAddr(m *store.Outbound) (smpp.Address, bool) {
	if number.IsShortCode(m.Dest) {
		return shortCodeAddr(m.Dest, m.DestTON, m.DestNPI), true
	}
	n, err := number.FromDigits(m.Dest)
	if err != nil {
		return smpp.Address{}, false
	}
	return smpp.Address{TON: 1, NPI: 1, Addr: n.Digits()}, true
}

// shortCodeAddr is the SMPP address of a short code an SMS answers, given
// the TON and NPI its SMSC gave it when it wrote. A short code is no E.164
// number: its digits name a service only in that SMSC's network, and
// carriers mark one in different ways (TON 3 network specific with NPI 0,
// TON 0 unknown with NPI 1, TON 6 abbreviated, TON 2 national). So the
// answer goes back as the SMSC itself wrote the short code, which is how it
// routes it; no single setting would suit every carrier. Except TON 1
// (international) and 5 (alphanumeric), which some SMSCs put on every
// sender, and the reserved values: they would have the SMSC read the
// digits as a country code and number, or as a name. Those go as TON 0
// (unknown: the SMSC reads the digits itself) with NPI 1 (ISDN), the form
// carriers' guides commonly ask for a short code.
func shortCodeAddr(code string, ton, npi byte) smpp.Address {
	switch ton {
	case 0, 2, 3, 4, 6:
		return smpp.Address{TON: ton, NPI: npi, Addr: code}
	}
	return smpp.Address{TON: 0, NPI: 1, Addr: code}
}

// sourceAddr renders a sender: an E.164 number as TON 1 / NPI 1 without the
// "+", an alphanumeric sender ID (at most 11 GSM characters) as TON 5 / NPI 0.
func sourceAddr(s string) (smpp.Address, bool) {
	if strings.HasPrefix(s, "+") {
		n, err := number.FromDigits(s)
		if err != nil {
			return smpp.Address{}, false
		}
		return smpp.Address{TON: 1, NPI: 1, Addr: n.Digits()}, true
	}
	if s == "" || len(s) > 11 {
		return smpp.Address{}, false
	}
	if _, ok := coding.EncodeGSM(s); !ok {
		return smpp.Address{}, false
	}
	return smpp.Address{TON: 5, NPI: 0, Addr: s}, true
}
