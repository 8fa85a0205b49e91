// Package router is the heart of Switchboard: it decides how each message
// travels, accepts it into the store, and tells senders and recipients what
// happened. It knows numbers, JIDs and message states, and nothing of the
// SMPP or XMPP wire: the component hands it messages from users, the SMS
// gateway hands it messages from phones, and it hands notices back through
// the small interfaces it declares.
package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/internal/failing"
	"switchboard/internal/memo"
	"switchboard/roster/number"
	"switchboard/smsgw/coding"
	"switchboard/store"
)

// Store is what the router needs from persistence. *store.Store satisfies it.
type Store interface {
	NumbersOf(ctx context.Context, jids []string) (map[string]string, error)
	RoutingOf(ctx context.Context, jids, dests []string) (store.Routing, error)
	SMSSent(ctx context.Context, jids []string, minute, day time.Time) (map[string]store.SMSCounts, int, error)
	CountSMSPerUser(on bool)
	DueRelays(ctx context.Context, now time.Time, limit int) ([]*store.Outbound, error)
	FallBackIDs(ctx context.Context, ids []int64, now time.Time) ([]*store.Outbound, error)
	FailRelay(ctx context.Context, id int64, reason, condition string) (bool, error)
	FindRelay(ctx context.Context, senderNumber, peerNumber, stanzaID string) (store.Relay, error)
	FindRelays(ctx context.Context, keys []store.RelayKey) (map[store.RelayKey]store.Relay, error)
	AckRelays(ctx context.Context, ids []int64) (map[int64]bool, error)
	BounceRelay(ctx context.Context, id int64, reason string) (bool, error)
	ShortCodeWrote(ctx context.Context, user, number, code string, since time.Time) (store.ShortCode, error)
	AcceptOutbound(ctx context.Context, msgs []*store.Outbound) error
	Withdraw(ctx context.Context, ids []int64, reason string) error
	RaiseNotices(ctx context.Context, ids []int64) (int64, error)
	RefuseInbound(ctx context.Context, id int64, user, reason string) (bool, error)
	AcceptInbound(ctx context.Context, in *store.Inbound) error
	ClaimNotices(ctx context.Context, owner string, limit int, lease time.Duration) ([]store.Notice, error)
	NoticesDone(ctx context.Context, ids []int64) error
	ReleaseNotices(ctx context.Context, owner string, ids []int64) error
	MessageBody(ctx context.Context, id int64) (string, error)
	ReceivedText(ctx context.Context, id int64, user, peer string) (string, error)
}

// XMPP is what the router needs from the XMPP side: sending to users.
// The component satisfies it.
type XMPP interface {
	// Connected reports whether stanzas can be sent now.
	Connected() bool
	// SendText sends a chat message with body from → to. A written time
	// (not zero) is when it was written, for a message that waited: the
	// stanza says so (XEP-0203), and clients show it at that time.
	SendText(ctx context.Context, from, to jid.JID, id, body string, written time.Time) error
	// SendReceipt sends an XEP-0184 receipt for the message id.
	SendReceipt(ctx context.Context, from, to jid.JID, id string) error
	// SendError sends a message error for the message id.
	SendError(ctx context.Context, from, to jid.JID, id string, e stanza.Error) error
	// SendRelay sends a chat message whose children are payload (XML as
	// the component captured it), asking for a receipt when requestReceipt.
	SendRelay(ctx context.Context, from, to jid.JID, id string, payload []byte, requestReceipt bool) error
	// SendRelayError sends a message error whose children are payload.
	SendRelayError(ctx context.Context, from, to jid.JID, id string, payload []byte) error
	// Batch returns a context whose sends are written together and flushed
	// by end, which returns the first write error.
	Batch(ctx context.Context) (bctx context.Context, end func() error)
	// Sync returns once the server has processed everything sent before.
	Sync(ctx context.Context) error
	// Available tells whether a user (a bare JID: any of its resources; a
	// full JID: that resource) is available; known is false when the
	// component cannot see the user's presence.
	Available(user jid.JID) (known, available bool)
	// Reachable asks a user's client (a full JID) whether it is there,
	// for when Available cannot tell; known is false without an answer.
	Reachable(ctx context.Context, user jid.JID) (known, reachable bool)
}

// Handoff is the SMS gateway's side of passing new SMS on without a
// claim: Reserve reserves up to max submission slots and says whose lease
// to store the messages under; after they are stored, Take starts them and
// releases the slots they do not use (all of them when msgs is nil).
type Handoff interface {
	Reserve(max int) (owner string, until time.Time, n int)
	Take(msgs []*store.Outbound, reserved int)
}

// Config configures a Router. Zero values mean the defaults.
type Config struct {
	Component     jid.JID  // the component's domain, e.g. sms.example.com
	Domains       []string // XMPP domains whose users may use the gateway
	DefaultRegion string   // ISO 3166 region for numbers written without a country code
	// Validity is how long an accepted SMS may wait for the SMSC before it
	// fails back to its sender. Default 48h.
	Validity time.Duration
	// MaxParts is the most SMS parts one message may need. Default 10.
	MaxParts int
	// Parts, if set, says how many SMS parts text to dest (E.164) takes,
	// which depends on the SMSCs that carry it (smsgw.Gateway.Parts).
	// Default coding.Count's, as on SMSCs whose data coding 0 is GSM 03.38.
	Parts func(dest, text string) int
	// FallbackAfter is how long a message relayed over XMPP waits for the
	// recipient's receipt before it is sent as SMS too; users may change
	// it for themselves. Default 30s; negative disables the fallback.
	FallbackAfter time.Duration
	// Limits guard against SMS pumping and toll fraud.
	Limits Limits
	// Instance names this process for leases in a shared store. Required.
	Instance string
	Logger   zerolog.Logger
	// WakeSMS is called after messages were queued for SMS.
	WakeSMS func()
	// Handoff, when set, takes new SMS straight from the intake (see
	// Handoff); the others are queued and WakeSMS is called.
	Handoff Handoff
	// OnRefused, if set, is called for each message from a user refused
	// before it was stored, and for each relay whose fallback to SMS the
	// limits refused, with a short reason for metrics: "country",
	// "prefix", "quota_global", "quota_user_minute", "quota_user_day",
	// "too_long", "short_code" (an answer to a short code that did not
	// write to the sender within Limits.ShortCodeReply), "relay_limit" (a
	// message to a registered number too long, or over
	// Limits.RelaysPerUserMinute), "unregistered"
	// (the sender has no number) or "internal" (the store failed).
	OnRefused func(reason string)
	// OnMessage, if set, is called for each outcome of a message the router
	// sees, for metrics: direction "out" or "in", route "sms" or "xmpp", and
	// outcome "accepted" (stored), "refused" (also counted by OnRefused),
	// "fallback" (relayed over XMPP, then queued for SMS), "delivered" (an
	// XMPP receipt for a relayed message; a message from a phone handed to
	// the XMPP server) or "failed" (an error for a relayed message, passed to
	// its sender), and for messages from phones "duplicate" (an SMSC's
	// resend after a new bind, not delivered twice). The SMS gateway
	// reports the outcomes of SMS.
	OnMessage func(direction, route, outcome string)
}

// Limits bound where and how much users may send by SMS. Zero values mean
// no limit. Messages relayed over XMPP cost nothing and are not limited.
type Limits struct {
	// AllowedRegions lists the ISO 3166 regions SMS may go to; empty
	// allows every region.
	AllowedRegions []string
	// BlockedPrefixes lists E.164 prefixes (premium-rate ranges) SMS may
	// never go to, such as "+1900".
	BlockedPrefixes []string
	// PerUserMinute and PerUserDay cap each user's SMS; GlobalMinute caps
	// everyone's together. 0 sets no limit; with neither of the first two
	// set, users' SMS are not counted at all (store.CountSMSPerUser).
	PerUserMinute, PerUserDay, GlobalMinute int
	// ShortCodeReply is how long after a short code (3 to 6 digits: a
	// service's sender) last wrote to a user, at the number they have, the
	// user may answer it by SMS. Short codes may be premium-rate, so none
	// other is reached: a user, or a stolen account, cannot send to one of
	// its choosing. Such an answer counts against the quotas like any SMS;
	// the region and prefix limits do not apply (a short code has neither:
	// it is reached only in the network of the SMSC it wrote through). 0,
	// unlike the others, means no short code may be answered at all.
	ShortCodeReply time.Duration
	// RelaysPerUserMinute caps the messages each user sends to registered
	// numbers (relayed over XMPP: no SMS, nothing billed, but each is
	// stored and archived), in this instance, with as many at once; 0
	// sets no limit.
	RelaysPerUserMinute int
}

// Router routes messages. Create it with New, then Run it.
type Router struct {
	cfg   Config
	store Store
	xmpp  XMPP
	log   zerolog.Logger
	// policyLog logs policy refusals, at most policyLines a minute: any
	// user can cause them at will (switchboard_refused_total counts all).
	policyLog zerolog.Logger
	// Failures of the loops that poll the store (one that is down fails
	// them all, every second or two).
	claims, fallbacks failing.Log
	domains           map[string]bool

	intake chan *pending
	acks   chan relayAck // receipts for relayed messages, to record (ackLoop)
	wake   chan struct{}
	// claimDue: claimable notices may be waiting (see notifyLoop); set by
	// Wake and the poll, not by handed notices, which need no claim.
	claimDue atomic.Bool

	handedMu sync.Mutex
	handed   []handedNotice // notices the store leased to this instance (HandNotices)
	dropped  []int64        // handed notices not kept, to give back (releaseDropped)

	recording sync.WaitGroup // notices done being recorded (sendNotices); Run waits

	resent *memo.Map[resendKey, taken] // messages taken lately, to know one sent again (resendOf)
	// resentDone are stored messages sent again, whose outcome, if they
	// have one already, notifyLoop raises anew (see raiseResent).
	resentDone chan int64
	// unstored counts the messages taken by Outbound and neither stored
	// nor refused yet (see Unstored); taken holds them (see Drain).
	unstored atomic.Int64
	takenMu  sync.Mutex
	taken    map[*pending]struct{}
	// relays are the users' relay limiters (Limits.RelaysPerUserMinute),
	// used by storeBatch alone; relaysPruned is when those at rest were
	// last dropped.
	relays       map[string]*rate.Limiter
	relaysPruned time.Time
	// refusing: the store did not store what was taken in time at
	// shutdown; Outbound refuses every message (see RefuseUnstored).
	refusing atomic.Bool
}

// handedNotice is a notice handed over by the store, to be sent before
// its lease runs out.
type handedNotice struct {
	n        store.Notice
	deadline time.Time
}

// pending is a message from a user that passed the checks that need no
// store, waiting for the batch that routes it.
type pending struct {
	from, to jid.JID
	dest     string // E.164, or a short code (short)
	owner    string // bare JID the destination number belongs to, if routed over XMPP
	short    bool   // dest is a short code, answered by SMS (see Limits.ShortCodeReply)
	m        Message
	msg      *store.Outbound // nil for a body-less stanza (never stored)
	resend   *resendKey      // how a resend of it would be known; nil: not looked for
	settled  atomic.Bool     // stored or refused (see settle)
}

// resendKey is what tells a message sent again (a client resending what it
// is not sure went, after a reconnection: XEP-0198) from a new one: a hash
// (FNV-1a, 128 bits) of its sender and addressee, its id, and its text.
// A hash holds no pointer: the map of the last 16,384 (resentMax) keeps
// none of the messages' strings alive, and the collector does not scan it.
type resendKey [16]byte

// taken is when a message was taken (Unix ns), and its id once stored.
type taken struct{ at, id int64 }

// resendWindow is how long a message's resend is known as one.
const resendWindow = 10 * time.Minute

// resentMax bounds the messages remembered (resendWindow's worth up to
// 27 msg/s). The peak RSS with 100,000 messages waiting for receipts:
// 78–79 MB remembering none, 82–83 with 16,384, 94–96 with 65,536 (and
// 152 when the keys held the messages' strings).
const resentMax = 1 << 14

// resendOf is m's resendKey, or nil for a message without an id or text
// (chat states, markers: nothing is sent twice).
func resendOf(m *Message) *resendKey {
	if m.ID == "" || m.smsText() == "" {
		return nil
	}
	h := fnv.New128a()
	for _, part := range []string{m.From.Bare().String(), m.To.Bare().String(), m.ID, m.Body, m.SMSText} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var k resendKey
	h.Sum(k[:0])
	return &k
}

// New returns a router. Call SetXMPP before Run.
func New(cfg Config, st Store) *Router {
	if cfg.Validity <= 0 {
		cfg.Validity = 48 * time.Hour
	}
	if cfg.MaxParts <= 0 {
		cfg.MaxParts = 10
	}
	if cfg.Parts == nil {
		cfg.Parts = coding.Parts
	}
	if cfg.FallbackAfter == 0 {
		cfg.FallbackAfter = 30 * time.Second
	}
	if cfg.WakeSMS == nil {
		cfg.WakeSMS = func() {}
	}
	if cfg.OnRefused == nil {
		cfg.OnRefused = func(string) {}
	}
	if cfg.OnMessage == nil {
		cfg.OnMessage = func(string, string, string) {}
	}
	r := &Router{
		cfg:        cfg,
		store:      st,
		log:        cfg.Logger.With().Str("component", "router").Logger(),
		domains:    make(map[string]bool),
		resent:     memo.New[resendKey, taken](resentMax),
		resentDone: make(chan int64, 256),
		relays:     make(map[string]*rate.Limiter),
		intake:     make(chan *pending, 4096),
		taken:      make(map[*pending]struct{}),
		acks:       make(chan relayAck, 4096),
		wake:       make(chan struct{}, 1),
	}
	r.policyLog = r.log.Sample(&zerolog.BurstSampler{Burst: policyLines, Period: time.Minute})
	for _, d := range cfg.Domains {
		r.domains[strings.ToLower(d)] = true
	}
	// Users' SMS are counted only for a limit that reads them.
	st.CountSMSPerUser(cfg.Limits.PerUserMinute > 0 || cfg.Limits.PerUserDay > 0)
	r.claimDue.Store(true)
	return r
}

// SetXMPP sets the XMPP side. It must be called before Run.
func (r *Router) SetXMPP(x XMPP) { r.xmpp = x }

// Wake makes the router look for notices now (an outcome was recorded, or
// the XMPP connection came back).
func (r *Router) Wake() {
	r.claimDue.Store(true)
	r.signal()
}

// signal wakes the notice loop without asking for a claim.
func (r *Router) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Message is a message from an XMPP user to a number JID.
type Message struct {
	From, To jid.JID
	ID       string
	// Body is the message's text.
	Body string
	// SMSText is what an SMS carries: the body with links, locations and
	// the like turned into text. Empty means the same as Body. A stanza
	// with neither (chat states, markers), or only a blank body, is
	// relayed to registered users and never becomes an SMS.
	SMSText string
	// Payload is the stanza's children, relayed as they are over XMPP.
	Payload []byte
	// Rich: the stanza carries more than its text (a correction, a
	// reaction, a reply, a link): an SMS keeps its Payload too, for the
	// archive to give back as it was written.
	Rich        bool
	WantReceipt bool
	// Reaction, when set, is what the message is: reactions (XEP-0444)
	// to an earlier one. Its SMSText is ReactionText without a quote; the
	// router adds the start of the message reacted to, when that is one
	// the user received from the same number.
	Reaction *Reaction
}

// Reaction is a message's reactions to an earlier message.
type Reaction struct {
	ID     string   // the id of the message reacted to
	Emojis []string // at least one, for an SMS
}

// ReplyText is how an SMS carries a reply (XEP-0461): the start of the
// message replied to, then the reply, `Reply to "See you at 8": On my way`
// — not the whole quote the client put in the body, which would cost parts.
// The quotation marks and the "..." of a cut quote are ASCII: curly ones
// and an ellipsis are not in the GSM alphabet, and alone made a text of
// plain letters go as UCS-2, in twice the parts.
func ReplyText(quote, reply string) string {
	if q := smsQuote(quote); q != "" {
		return `Reply to "` + q + `": ` + reply
	}
	return reply
}

// ReactionText is how an SMS carries reactions, the way phones write them:
// `Reacted 👍 to "See you at 8"`; without the quote when quote is "" (see
// smsQuote).
func ReactionText(emojis []string, quote string) string {
	t := "Reacted " + strings.Join(emojis, " ")
	if quote != "" {
		t += ` to "` + quote + `"`
	}
	return t
}

// smsQuote is the start of s an SMS quotes (see quoteStart), a cut marked
// "..." in the GSM alphabet.
func smsQuote(s string) string { return quoteStart(s, reactionQuote, "...") }

func (m *Message) smsText() string {
	if m.SMSText != "" {
		return m.SMSText
	}
	if strings.TrimSpace(m.Body) == "" {
		return "" // blank: nothing to send
	}
	return m.Body
}

func stanzaErr(typ stanza.ErrorType, cond stanza.Condition, text string) stanza.Error {
	return stanza.Error{Type: typ, Condition: cond, Text: map[string]string{"": text}}
}

// errEmpty answers a message with no text that asks for a receipt.
var errEmpty = stanzaErr(stanza.Modify, stanza.NotAcceptable, "The message is empty: there is no text to send.")

// Served reports whether j belongs to a domain the gateway serves.
func (r *Router) Served(j jid.JID) bool { return r.domains[strings.ToLower(j.Domainpart())] }

// Outbound takes a message from a user. A returned error is a stanza.Error
// to send back to the sender at once. A nil error means the message will be
// routed: stored and relayed over XMPP to the number's owner, or stored and
// sent as SMS, and its sender will learn the outcome (a receipt or an
// error). Outbound never blocks on the store: messages are routed in batches.
func (r *Router) Outbound(ctx context.Context, m Message) error {
	if !r.Served(m.From) {
		return stanzaErr(stanza.Cancel, stanza.Forbidden, "This gateway serves only users of "+strings.Join(r.cfg.Domains, ", ")+".")
	}
	n, err := number.FromJID(m.To, r.cfg.DefaultRegion)
	dest, short := n.String(), false
	if err != nil {
		if m.smsText() == "" {
			if m.WantReceipt {
				// As for a number (see storeBatch): the sender would
				// otherwise wait for a receipt that never comes.
				return errEmpty
			}
			return nil // a chat state or a marker to nobody
		}
		code := m.To.Localpart()
		if number.HasExtension(code) {
			return stanzaErr(stanza.Modify, stanza.JIDMalformed,
				fmt.Sprintf("%q has an extension, which no SMS can reach: write to the phone number alone, e.g. +12015550123@%s.",
					code, r.cfg.Component.Domainpart()))
		}
		if number.IsName(code) {
			// A sender name (a bank's, say), or a name written by mistake.
			return stanzaErr(stanza.Modify, stanza.JIDMalformed,
				fmt.Sprintf("%q is a name, not a phone number: an SMS goes only to a number, so an SMS from a sender name cannot be answered. "+
					"To write to a phone, use its number in international form, e.g. +12015550123@%s.", code, r.cfg.Component.Domainpart()))
		}
		var invalid *number.InvalidError
		if strings.HasPrefix(code, "+") && errors.As(err, &invalid) {
			// In international form already: say what is wrong with it.
			return stanzaErr(stanza.Modify, stanza.JIDMalformed,
				fmt.Sprintf("%q is not a phone number this gateway can reach: %s.", code, invalid.Why))
		}
		if !number.IsShortCode(code) {
			return stanzaErr(stanza.Modify, stanza.JIDMalformed,
				fmt.Sprintf("%q is not a phone number this gateway can reach: write it in international form, e.g. +12015550123@%s.",
					code, r.cfg.Component.Domainpart()))
		}
		if r.cfg.Limits.ShortCodeReply <= 0 {
			// A service that texted the user from a short code: answers
			// are off (some short codes charge the sender).
			return stanzaErr(stanza.Cancel, stanza.ServiceUnavailable,
				fmt.Sprintf("%s is a short code: this gateway sends no SMS to short codes, so it cannot be answered from here.", code))
		}
		// Whether it wrote to the sender is for the batch to look up.
		dest, short = code, true
	}
	p := &pending{from: m.From, to: m.To, dest: dest, short: short, m: m}
	if m.smsText() != "" {
		var local string // the form of the number written to, when not dest
		if l := m.To.Localpart(); l != dest {
			local = l
		}
		p.msg = &store.Outbound{
			SenderJID:   m.From.String(),
			Dest:        dest,
			PeerLocal:   local,
			StanzaID:    m.ID,
			WantReceipt: m.WantReceipt,
			Body:        m.smsText(),
			Parts:       r.cfg.Parts(p.dest, m.smsText()),
			ExpiresAt:   time.Now().Add(r.cfg.Validity),
		}
	}
	if k := resendOf(&m); k != nil {
		if t, ok := r.resent.Get(*k); ok && time.Since(time.Unix(0, t.at)) < resendWindow {
			// Accepted already: its receipt or error answers this one
			// too (same id). Sent twice, it would reach the phone twice.
			// One that has its outcome already gets it again: the client
			// sends again what it saw no outcome for.
			r.log.Info().Str("from", m.From.Bare().String()).Str("to", m.To.Bare().String()).Str("stanza_id", m.ID).
				Msg("a message sent again (same id and text within 10 minutes) taken once")
			if t.id != 0 {
				select {
				case r.resentDone <- t.id:
					r.signal()
				default: // a flood of resends: the outcome is not sent again
				}
			}
			return nil
		}
		r.resent.Put(*k, taken{at: time.Now().UnixNano()})
		p.resend = k
	}
	if r.refusing.Load() {
		if p.resend != nil {
			r.resent.Delete(*p.resend)
		}
		return errShuttingDown
	}
	r.takenMu.Lock()
	r.taken[p] = struct{}{}
	r.takenMu.Unlock()
	r.unstored.Add(1)
	select {
	case r.intake <- p:
		return nil
	case <-ctx.Done():
		r.settle([]*pending{p})
		if p.resend != nil {
			r.resent.Delete(*p.resend)
		}
		return errShuttingDown
	}
}

var errShuttingDown = stanzaErr(stanza.Wait, stanza.ResourceConstraint, "The gateway is shutting down; send the message again later.")

// settle marks messages stored or refused, and returns those that were
// not already (by RefuseUnstored).
func (r *Router) settle(ps []*pending) []*pending {
	out := ps[:0:0]
	r.takenMu.Lock()
	for _, p := range ps {
		if p.settled.CompareAndSwap(false, true) {
			delete(r.taken, p)
			out = append(out, p)
		}
	}
	r.takenMu.Unlock()
	r.unstored.Add(-int64(len(out)))
	return out
}

// Unstored returns how many messages from users Outbound took that are
// neither stored nor refused yet: at a shutdown that cannot wait for a
// store that does not answer, those are lost, their senders unanswered
// (see Drain and RefuseUnstored for what comes before).
func (r *Router) Unstored() int64 { return r.unstored.Load() }

// Drain waits, up to wait, until every message Outbound took before the
// call is stored or refused, and reports whether they all were. Messages
// taken meanwhile are stored as usual. The component calls it at shutdown
// before it closes its stream, so that an error can still reach their
// senders (see RefuseUnstored).
func (r *Router) Drain(wait time.Duration) bool {
	r.takenMu.Lock()
	before := make([]*pending, 0, len(r.taken))
	for p := range r.taken {
		before = append(before, p)
	}
	r.takenMu.Unlock()
	deadline := time.Now().Add(wait)
	for _, p := range before {
		for !p.settled.Load() {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return true
}

// RefuseUnstored sends an error to the sender of every message taken and
// not stored yet, and refuses every message Outbound is given from now
// on: for a shutdown whose store does not answer (Drain timed out), while
// the stream is still open. It returns how many it refused. Should the
// store answer after all, a message it stored is sent at the next start
// though refused: a sender that sends it again may reach the phone twice,
// which is better than a message lost without a word.
func (r *Router) RefuseUnstored(ctx context.Context) int {
	r.refusing.Store(true)
	r.takenMu.Lock()
	ps := make([]*pending, 0, len(r.taken))
	for p := range r.taken {
		ps = append(ps, p)
	}
	r.takenMu.Unlock()
	ps = r.settle(ps)
	r.refuse(ctx, ps, "internal", stanzaErr(stanza.Wait, stanza.InternalServerError,
		"The gateway is shutting down and could not store the message in time; send it again later."))
	return len(ps)
}

// Run stores incoming messages in batches and sends notices until ctx ends.
// On the way out it stores what is already in the intake, and what the
// acknowledgements still waiting route through it.
func (r *Router) Run(ctx context.Context) error {
	if r.xmpp == nil {
		return errors.New("router: no XMPP side set")
	}
	// The intake stops after the acknowledgements: a receipt that matches
	// no relayed message is routed through it.
	intakeCtx, stopIntake := context.WithCancel(context.WithoutCancel(ctx))
	defer stopIntake()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		r.notifyLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		defer stopIntake()
		r.ackLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		r.fallbackLoop(ctx)
	}()
	r.intakeLoop(intakeCtx)
	wg.Wait()
	r.recording.Wait()
	r.ReleaseHanded(context.WithoutCancel(ctx))
	return nil
}

const batchMax = 512

// intakeLoop stores and routes the messages the component hands over, in
// batches (see batches).
func (r *Router) intakeLoop(ctx context.Context) { batches(ctx, r.intake, batchMax, r.storeBatch) }

// batches calls fn with what arrives on ch, up to max at a time: each
// batch is what waits when its first arrives. Once ctx ends, it hands fn
// what still waits and returns. fn's context is never cancelled: what it
// gets was read from the stream, and at shutdown an error could no longer
// reach its sender.
func batches[T any](ctx context.Context, ch <-chan T, max int, fn func(context.Context, []T)) {
	batch := make([]T, 0, max)
	run := func() {
		if len(batch) > 0 {
			fn(context.WithoutCancel(ctx), batch)
		}
		batch = batch[:0]
	}
	for {
		select {
		case x := <-ch:
			batch = append(batch, x)
		case <-ctx.Done():
			for {
				select {
				case x := <-ch:
					if batch = append(batch, x); len(batch) == max {
						run()
					}
				default:
					run()
					return
				}
			}
		}
	fill:
		for len(batch) < max {
			select {
			case x := <-ch:
				batch = append(batch, x)
			default:
				break fill
			}
		}
		run()
	}
}

// storeBatch resolves the senders' numbers, the destinations' owners and
// the senders' settings (one lookup), stores the messages with a body in
// one transaction (relayed over XMPP when the destination number is
// registered, else queued for SMS), then relays in arrival order.
func (r *Router) storeBatch(ctx context.Context, batch []*pending) {
	if len(batch) == 0 {
		return
	}
	// What RefuseUnstored answered already is not stored.
	batch = slices.DeleteFunc(batch, func(p *pending) bool { return p.settled.Load() })
	if len(batch) == 0 {
		return
	}
	defer r.settle(batch)
	var jids, dests []string
	seen := make(map[string]bool, 2*len(batch))
	for _, p := range batch {
		if b := p.from.Bare().String(); !seen[b] {
			seen[b] = true
			jids = append(jids, b)
		}
		if !seen[p.dest] && !p.short { // a short code is nobody's number
			seen[p.dest] = true
			dests = append(dests, p.dest)
		}
	}
	internal := stanzaErr(stanza.Wait, stanza.InternalServerError, "The gateway could not store the message; send it again later.")
	routing, err := r.store.RoutingOf(ctx, jids, dests)
	if err != nil {
		r.log.Error().Err(err).Int("messages", len(batch)).Msg("looking up senders and recipients failed")
		r.refuse(ctx, batch, "internal", internal)
		return
	}
	numbers, owners, settings, forms := routing.Numbers, routing.Owners, routing.Settings, routing.Forms
	if forms == nil {
		forms = make(map[store.Form]string)
	}
	quota, err := r.newQuota(ctx, jids)
	if err != nil {
		r.log.Error().Err(err).Msg("counting SMS failed")
		r.refuse(ctx, batch, "internal", internal)
		return
	}
	now := time.Now()
	accepted := make([]*store.Outbound, 0, len(batch))
	acceptedP := make([]*pending, 0, len(batch))
	var ok []*pending             // in arrival order, the ones to relay or count
	present := make(presenceSeen) // presence read once per owner and batch
	for _, p := range batch {
		bare := p.from.Bare().String()
		num, has := numbers[bare]
		if !has {
			if p.msg != nil {
				r.refuse(ctx, []*pending{p}, "unregistered", stanzaErr(stanza.Auth, stanza.RegistrationRequired,
					"You have no phone number on this gateway yet: register one with the gateway first."))
			}
			continue
		}
		owner := owners[p.dest]
		if owner == bare {
			// To one's own number: a text to one's phone, not a relay
			// back to oneself (which would fall back to that SMS anyway);
			// chat states and markers go nowhere.
			owner = ""
		}
		if owner != "" && p.msg != nil && r.unreachable(owner, settings[bare], present) {
			// The recipient has no available resource (seen through the
			// presence privilege): straight to SMS.
			r.log.Debug().Str("to", owner).Msg("recipient unavailable: routing as SMS")
			owner = ""
		}
		p.owner = owner
		if p.msg == nil {
			if p.m.WantReceipt {
				// Content is what asks for a receipt (XEP-0184), but
				// there is none: say so rather than leave the sender
				// waiting for one. Whoever has the number: the same
				// answer for all, or it would tell, for free and without
				// a word to anyone, which numbers are registered.
				if err := r.xmpp.SendError(ctx, p.to, p.from, p.m.ID, errEmpty); err != nil {
					r.log.Warn().Err(err).Str("to", p.from.String()).Msg("could not send error to sender")
				}
			} else if owner != "" {
				ok = append(ok, p) // chat states and markers: relayed, never stored
			}
			continue
		}
		p.msg.SenderNumber = num
		if owner == "" && p.m.Reaction != nil {
			r.quoteReacted(ctx, p, bare)
		}
		tooLong := p.msg.Parts > r.cfg.MaxParts
		if owner == "" && p.m.Rich && len(p.m.Payload) <= maxRelayBytes {
			p.msg.Extra = string(p.m.Payload) // for the archive (store.ArchiveItem.Payload)
		}
		if owner == "" {
			if tooLong {
				r.refused(ctx, p, "too_long",
					fmt.Sprintf("The message is too long: it would take %d SMS, and at most %d are allowed.", p.msg.Parts, r.cfg.MaxParts))
				continue
			}
			if p.short {
				if !r.shortCodeWrote(ctx, p, num, internal) {
					continue
				}
			} else if reason, why := r.forbidden(p.dest); why != "" {
				r.refused(ctx, p, reason, why)
				continue
			}
			if reason, why := quota.take(bare, p.msg.Parts); why != "" {
				r.refused(ctx, p, reason, why)
				continue
			}
		} else {
			p.msg.PeerJID = owner // counted as a relay, refused or not
			if why := r.relayRefused(bare, p, now); why != "" {
				r.refused(ctx, p, "relay_limit", why)
				continue
			}
			p.msg.Extra = string(p.m.Payload)
			after := r.cfg.FallbackAfter
			if st, ok := settings[bare]; ok {
				after = st.FallbackAfter
				if !st.Fallback {
					after = -1
				}
			}
			if after > 0 && !tooLong {
				p.msg.FallbackAt = now.Add(after)
			}
		}
		// The form of the number its sender last wrote to it in is
		// recorded when it changes: most messages write nothing more.
		if k := (store.Form{User: bare, Number: p.dest}); forms[k] != p.msg.PeerLocal {
			p.msg.SetForm = true
			if p.msg.PeerLocal == "" {
				delete(forms, k)
			} else {
				forms[k] = p.msg.PeerLocal
			}
		}
		accepted = append(accepted, p.msg)
		acceptedP = append(acceptedP, p)
		ok = append(ok, p)
	}
	var (
		handed   []*store.Outbound
		reserved int
		nSMS     int
	)
	for _, m := range accepted {
		if m.PeerJID == "" {
			nSMS++
		}
	}
	if h := r.cfg.Handoff; h != nil && nSMS > 0 {
		var (
			owner string
			until time.Time
		)
		if owner, until, reserved = h.Reserve(nSMS); reserved > 0 {
			for _, m := range accepted {
				if m.PeerJID == "" && len(handed) < reserved {
					m.LeaseOwner, m.LeaseUntil = owner, until
					handed = append(handed, m)
				}
			}
		}
	}
	if len(accepted) > 0 {
		if err := r.store.AcceptOutbound(ctx, accepted); err != nil {
			if reserved > 0 {
				r.cfg.Handoff.Take(nil, reserved)
			}
			r.log.Error().Err(err).Int("messages", len(accepted)).Msg("storing messages failed")
			r.refuse(ctx, acceptedP, "internal", internal)
			return
		}
	}
	if r.refusing.Load() {
		// RefuseUnstored may have answered some of these while the store
		// did not answer: stored after all, they are withdrawn, neither
		// sent nor relayed.
		handed, accepted, ok = r.withdrawRefused(ctx, handed, accepted, ok)
	}
	if reserved > 0 {
		r.cfg.Handoff.Take(handed, reserved)
	}
	for _, p := range acceptedP {
		if p.resend != nil && !p.settled.Load() {
			r.resent.Put(*p.resend, taken{at: time.Now().UnixNano(), id: p.msg.ID})
		}
	}
	for _, m := range accepted {
		r.cfg.OnMessage(store.Out, routeOf(m), "accepted")
	}
	for _, p := range ok {
		if p.owner == "" {
			r.log.Debug().Int64("msg", p.msg.ID).Str("stanza_id", p.msg.StanzaID).Int("parts", p.msg.Parts).Msg("accepted for SMS")
			continue
		}
		r.relay(ctx, p, numbers[p.from.Bare().String()], forms)
	}
	if len(handed) < nSMS {
		r.cfg.WakeSMS()
	}
}

// Bounds of a relayed message: its text, and all it carries (text and
// other elements, stored whole to relay and archive). Far above what a
// person writes; without them one client filled the disk at 6 MB/s with
// 200,000-character messages to a registered number.
const (
	maxRelayText  = 10_000 // characters
	maxRelayBytes = 64 << 10
)

// relayRefused says why p, to a registered number, may not be relayed
// (too long, or over its sender's Limits.RelaysPerUserMinute), or "".
func (r *Router) relayRefused(bare string, p *pending, now time.Time) string {
	if n := utf8.RuneCountInString(p.msg.Body); n > maxRelayText || len(p.m.Payload) > maxRelayBytes {
		return fmt.Sprintf("The message is too long: at most %d characters (%d KiB with what it carries) go through the gateway.", maxRelayText, maxRelayBytes>>10)
	}
	per := r.cfg.Limits.RelaysPerUserMinute
	if per <= 0 {
		return ""
	}
	if now.Sub(r.relaysPruned) > time.Minute {
		// A limiter back at its full burst is a new one's equal.
		for k, l := range r.relays {
			if l.TokensAt(now) >= float64(per) {
				delete(r.relays, k)
			}
		}
		r.relaysPruned = now
	}
	l := r.relays[bare]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(float64(per)/60), per)
		r.relays[bare] = l
	}
	if !l.AllowN(now, 1) {
		return fmt.Sprintf("Too many messages: at most %d a minute go to numbers on XMPP; wait a little and send it again.", per)
	}
	return ""
}

// withdrawRefused withdraws, in the store, the messages of a batch just
// stored that RefuseUnstored answered meanwhile, and returns the batch's
// lists without them.
func (r *Router) withdrawRefused(ctx context.Context, handed, accepted []*store.Outbound, ok []*pending) ([]*store.Outbound, []*store.Outbound, []*pending) {
	refused := make(map[*store.Outbound]bool)
	var ids []int64
	for _, p := range ok {
		if p.msg != nil && p.settled.Load() {
			refused[p.msg] = true
			ids = append(ids, p.msg.ID)
		}
	}
	if len(ids) == 0 {
		return handed, accepted, ok
	}
	if err := r.store.Withdraw(ctx, ids, "refused at shutdown: the store answered too late"); err != nil {
		r.log.Error().Err(err).Int("messages", len(ids)).
			Msg("withdrawing messages whose senders were told they were not stored failed; they are sent at the next start")
	}
	gone := func(m *store.Outbound) bool { return refused[m] }
	return slices.DeleteFunc(handed, gone), slices.DeleteFunc(accepted, gone), slices.DeleteFunc(ok, func(p *pending) bool { return p.msg != nil && refused[p.msg] })
}

// shortCodeWrote tells whether the short code p is to (p.dest) wrote to
// its sender, at num, within Limits.ShortCodeReply, and if so addresses
// p's SMS as that message came (the SMSC, its TON and NPI); if not, or if
// the store fails (the sender gets internal), the sender is told and it
// returns false. One indexed read per answer: answers to short codes are
// rare.
func (r *Router) shortCodeWrote(ctx context.Context, p *pending, num string, internal stanza.Error) bool {
	window := r.cfg.Limits.ShortCodeReply
	sc, err := r.store.ShortCodeWrote(ctx, p.from.Bare().String(), num, p.dest, time.Now().Add(-window))
	if errors.Is(err, store.ErrNotFound) {
		why := fmt.Sprintf("%s is a short code: it can only be answered within %s after it wrote to you, and it has not written to your number %s in that time.",
			p.dest, span(window), num)
		r.log.Info().Str("from", p.from.Bare().String()).Str("dest", p.dest).Msg("answer to a short code that did not write refused")
		r.refuse(ctx, []*pending{p}, "short_code", stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, why))
		return false
	}
	if err != nil {
		r.log.Error().Err(err).Str("dest", p.dest).Msg("looking up a short code's messages failed")
		r.refuse(ctx, []*pending{p}, "internal", internal)
		return false
	}
	p.msg.DestTON, p.msg.DestNPI, p.msg.SMSC = sc.TON, sc.NPI, sc.SMSC
	return true
}

// span writes d for people: "7 days", "1 hour", "90 minutes".
func span(d time.Duration) string {
	unit := func(n time.Duration, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d%(24*time.Hour) == 0:
		return unit(d/(24*time.Hour), "day")
	case d%time.Hour == 0:
		return unit(d/time.Hour, "hour")
	case d%time.Minute == 0:
		return unit(d/time.Minute, "minute")
	}
	return d.String()
}

// unreachable reports whether owner is known to have no available
// resource, and the sender wants SMS fallback.
func (r *Router) unreachable(owner string, st store.Settings, seen presenceSeen) bool {
	if st.FallbackAfter != 0 && !st.Fallback {
		return false // the sender never wants SMS for XMPP users
	}
	if r.cfg.FallbackAfter < 0 && st.FallbackAfter == 0 {
		return false // fallback off for everyone
	}
	j, err := jid.Parse(owner)
	if err != nil {
		return false
	}
	known, avail := r.available(j, seen)
	return known && !avail
}

// relay sends a message over XMPP to the owner of its destination number,
// from the sender's number JID: the form of it the owner last wrote to it
// in (forms), or else the international one. A failed send is left to the
// fallback timer.
func (r *Router) relay(ctx context.Context, p *pending, senderNumber string, forms map[store.Form]string) {
	owner := p.owner
	to, err := jid.Parse(owner)
	if err != nil {
		r.log.Error().Err(err).Str("owner", owner).Msg("stored owner JID does not parse")
		r.relayFailed(ctx, p)
		return
	}
	from, err := r.numberJID(cmp.Or(forms[store.Form{User: owner, Number: senderNumber}], senderNumber))
	if err != nil {
		r.log.Error().Err(err).Msg("sender number is not a localpart")
		r.relayFailed(ctx, p)
		return
	}
	err = r.xmpp.SendRelay(ctx, from, to, p.m.ID, p.m.Payload, p.msg != nil)
	ev := r.log.Debug()
	if err != nil {
		ev = r.log.Warn().Err(err)
	}
	ev = ev.Str("to", owner)
	if p.msg != nil {
		ev = ev.Int64("msg", p.msg.ID)
	}
	if err != nil {
		ev.Msg("relaying over XMPP failed")
		r.relayFailed(ctx, p)
		return
	}
	ev.Msg("relayed over XMPP")
}

// relayFailed settles a stored message that could not be relayed: one
// with an SMS fallback armed waits for it (the timer sends the SMS); one
// without (stored sent, its life thought over) fails, and its sender is
// told (the notice outlives a restart).
func (r *Router) relayFailed(ctx context.Context, p *pending) {
	if p.msg == nil || !p.msg.FallbackAt.IsZero() {
		return
	}
	failed, err := r.store.FailRelay(ctx, p.msg.ID, "it could not be handed to the recipient's server; send it again", "")
	if err != nil {
		r.log.Error().Err(err).Int64("msg", p.msg.ID).Msg("recording the failed relay failed")
		return
	}
	if failed {
		r.cfg.OnMessage(store.Out, store.RouteXMPP, "failed")
		r.Wake() // its notice is claimable
	}
}

// numberJID is the JID of a number at the component, such as
// +12015550123@sms.example.com.
func (r *Router) numberJID(number string) (jid.JID, error) {
	// WithLocal checks the localpart only: the domain was checked once.
	return r.cfg.Component.Domain().WithLocal(number)
}

// policyLines is how many policy refusals a minute are logged.
const policyLines = 10

// refused refuses one message for a policy reason: reason is the label for
// metrics, why the text for the sender.
func (r *Router) refused(ctx context.Context, p *pending, reason, why string) {
	what := "SMS refused by policy"
	if p.msg != nil && p.msg.PeerJID != "" {
		what = "message to a number on XMPP refused by policy"
	}
	r.policyLog.Info().Str("from", p.from.Bare().String()).Str("dest", p.dest).Str("why", why).Msg(what)
	r.refuse(ctx, []*pending{p}, reason, stanzaErr(stanza.Modify, stanza.PolicyViolation, why))
}

// refuse sends e to the senders of the messages, and counts them as refused
// for reason.
func (r *Router) refuse(ctx context.Context, ps []*pending, reason string, e stanza.Error) {
	for _, p := range ps {
		if p.resend != nil {
			r.resent.Delete(*p.resend) // sent again, it is tried again
		}
		if p.msg == nil {
			continue
		}
		r.cfg.OnRefused(reason)
		r.cfg.OnMessage(store.Out, routeOf(p.msg), "refused")
		if err := r.xmpp.SendError(ctx, p.to, p.from, p.msg.StanzaID, e); err != nil {
			r.log.Warn().Err(err).Str("to", p.from.String()).Msg("could not send error to sender")
		}
	}
}

// ErrNoRecipient means a number has no XMPP user bound to it.
var ErrNoRecipient = errors.New("router: no user has this number")

// Inbound stores a message from a phone for the user bound to in.Dest. It
// returns after the message is committed, or found a resend of one already
// stored (in.Duplicate; see store.AcceptInbound); ErrNoRecipient when nobody
// has the number. in.FragmentKey, when set, names the stored fragments it
// was assembled from, deleted in the same transaction.
func (r *Router) Inbound(ctx context.Context, in *store.Inbound) error {
	// The store finds the number's owner in the insert's transaction.
	if err := r.store.AcceptInbound(ctx, in); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrNoRecipient
		}
		return err
	}
	if in.Duplicate {
		r.cfg.OnMessage(store.In, store.RouteSMS, "duplicate")
		return nil
	}
	r.log.Debug().Int64("msg", in.ID).Msg("accepted from phone")
	r.cfg.OnMessage(store.In, store.RouteSMS, "accepted")
	if !in.Handed {
		r.Wake() // left to a claim
	}
	return nil
}

// routeOf is a message's route: over XMPP when it has a recipient JID.
func routeOf(m *store.Outbound) string {
	if m.PeerJID != "" {
		return store.RouteXMPP
	}
	return store.RouteSMS
}
