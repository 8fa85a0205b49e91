// Package verify proves that an XMPP user owns a phone number: a one-time
// code goes to the number by SMS, and the user repeats it. Codes are six
// random digits, stored only as salted HMAC-SHA-256 hashes, compared in
// constant time, expire, and are voided after too many wrong tries. Sending
// is rate limited per number, per JID and overall; every counter lives in
// the store, so several instances share the limits.
package verify

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/roster/number"
	"switchboard/smsgw/coding"
	"switchboard/store"
)

// Store is what verification needs from persistence. *store.Store satisfies it.
type Store interface {
	CodeSends(ctx context.Context, number, jid string, windowStart, globalStart time.Time) (store.SendCounts, error)
	StartVerification(ctx context.Context, v store.Verification, sms *store.Outbound) error
	PendingVerification(ctx context.Context, jid string) (store.Verification, error)
	CheckVerification(ctx context.Context, jid string, at time.Time, maxTries int, check func(store.Verification) bool) (bool, store.Verification, string, error)
	NumberOf(ctx context.Context, jid string) (store.Binding, error)
	Release(ctx context.Context, number string) (string, error)
}

// Notifier tells a user something in a chat message from the gateway.
type Notifier interface {
	Notify(ctx context.Context, to jid.JID, text string) error
}

// Config configures a Service. Zero values mean the defaults.
type Config struct {
	// Mode is "sms" (users verify by code; the default) or "none" (only
	// operators bind numbers).
	Mode string
	// Sender is the SMS sender of codes: an E.164 number or an
	// alphanumeric sender ID of at most 11 characters. Default "Switchboard".
	Sender string
	// Text is the SMS text; "{code}" is replaced by the code. Default
	// "Your Switchboard code is {code}. It expires in 10 minutes."
	Text string
	// CodeTTL is how long a code is valid. Default 10 minutes.
	CodeTTL time.Duration
	// MaxTries is how many wrong codes void a code. Default 5.
	MaxTries int
	// Resend is the least time between two codes to one number. Default 2 minutes.
	Resend time.Duration
	// PerNumberDay and PerJIDDay cap codes per number and per JID in 24 hours.
	// Defaults 5 and 10.
	PerNumberDay, PerJIDDay int
	// GlobalHour caps codes sent by everyone in an hour. Default 500.
	GlobalHour int
	// DefaultRegion is for numbers written without a country code.
	DefaultRegion string
	// Refuse, if set, says why no SMS may go to number (E.164), in words
	// for the user, or "" to let it go: the operator's country and prefix
	// limits, which a code must obey like any SMS (a code to a premium-rate
	// number is the classic SMS-pumping fraud).
	Refuse func(number string) string
	// Parts, if set, says how many SMS parts text to number (E.164) takes,
	// which depends on the SMSCs that carry it (smsgw.Gateway.Parts).
	// Default coding.Count's, as on SMSCs whose data coding 0 is GSM 03.38.
	Parts  func(number, text string) int
	Logger zerolog.Logger
	// WakeSMS is called after a code SMS was queued.
	WakeSMS func()
	// OnBind is called after a number was verified and bound to user;
	// OnUnbind after a user's number was removed.
	OnBind   func(ctx context.Context, user jid.JID, number string)
	OnUnbind func(ctx context.Context, user jid.JID, number string)
}

// Service runs verifications.
type Service struct {
	cfg    Config
	store  Store
	notify Notifier
	log    zerolog.Logger
	now    func() time.Time
}

// New returns a verification service. notify may be nil until SetNotifier.
func New(cfg Config, st Store) *Service {
	if cfg.Mode == "" {
		cfg.Mode = "sms"
	}
	if cfg.Sender == "" {
		cfg.Sender = "Switchboard"
	}
	if cfg.Text == "" {
		cfg.Text = "Your Switchboard code is {code}. It expires in 10 minutes."
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = 10 * time.Minute
	}
	if cfg.MaxTries <= 0 {
		cfg.MaxTries = 5
	}
	if cfg.Resend <= 0 {
		cfg.Resend = 2 * time.Minute
	}
	if cfg.PerNumberDay <= 0 {
		cfg.PerNumberDay = 5
	}
	if cfg.PerJIDDay <= 0 {
		cfg.PerJIDDay = 10
	}
	if cfg.GlobalHour <= 0 {
		cfg.GlobalHour = 500
	}
	if cfg.WakeSMS == nil {
		cfg.WakeSMS = func() {}
	}
	if cfg.Parts == nil {
		cfg.Parts = coding.Parts
	}
	if cfg.OnBind == nil {
		cfg.OnBind = func(context.Context, jid.JID, string) {}
	}
	if cfg.OnUnbind == nil {
		cfg.OnUnbind = func(context.Context, jid.JID, string) {}
	}
	return &Service{cfg: cfg, store: st, log: cfg.Logger.With().Str("component", "verify").Logger(), now: time.Now}
}

// SetNotifier sets how previous owners of a number are told it moved.
func (s *Service) SetNotifier(n Notifier) { s.notify = n }

// Mode is "sms" or "none".
func (s *Service) Mode() string { return s.cfg.Mode }

// Error is a refusal to show the user: what went wrong, in plain words.
type Error struct {
	Kind       Kind
	Text       string
	RetryAfter time.Duration // for RateLimited and CodeSent: when a new code may be asked for
	Number     number.E164   // for CodeSent: the number the waiting code went to
}

func (e *Error) Error() string { return "verify: " + e.Text }

// Kind classifies refusals, so each front end picks its own error condition.
type Kind int

// Kinds of refusal.
const (
	BadNumber   Kind = iota // the number does not parse
	RateLimited             // too many codes; RetryAfter says when to try
	NoPending               // no code was requested, or it expired or was voided
	WrongCode               // the code does not match; tries remain or not (see Text)
	Disabled                // verification is off: operators assign numbers
	Forbidden               // no SMS may go to the number (the operator's limits)
	CodeSent                // no new code yet, but the user's code to that number is still valid: ask for it
	NoCode                  // the code given is empty; no try is counted
	Already                 // the number is the user's already: no code is sent
)

func refuse(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Text: fmt.Sprintf(format, args...)}
}

// Start normalises phone, checks the rate limits, and sends a code to it.
// It returns the number the code went to. When the limits refuse a new
// code but user's code to that number is still valid, the refusal is
// CodeSent, naming the number: the front end asks for that code.
func (s *Service) Start(ctx context.Context, user jid.JID, phone string) (number.E164, error) {
	if s.cfg.Mode != "sms" {
		return "", refuse(Disabled, "This gateway does not verify numbers by SMS: its operator assigns them.")
	}
	bare := user.Bare().String()
	region := s.cfg.DefaultRegion
	cur, err := s.store.NumberOf(ctx, bare)
	if err == nil {
		if r := number.E164(cur.Number).Region(); r != "" {
			region = r
		}
	}
	n, err := number.Parse(phone, region)
	if err != nil {
		return "", refuse(BadNumber, "%q is not a phone number: write it in international form, such as +12015550123.", strings.TrimSpace(phone))
	}
	if cur.Number == n.String() {
		// A code would prove nothing new, and cost an SMS.
		return "", refuse(Already, "%s is already your number: no code was sent. To change it, enter another number.", n)
	}
	if s.cfg.Refuse != nil {
		if why := s.cfg.Refuse(n.String()); why != "" {
			return "", &Error{Kind: Forbidden, Text: why}
		}
	}
	now := s.now()
	if limited, err := s.limit(ctx, n, bare, now); err != nil {
		return "", err
	} else if limited != nil {
		// Asking again for the number whose code is still waiting (the user
		// closed the dialog, say) must not lock them out of that code.
		if v, err := s.store.PendingVerification(ctx, bare); err == nil && v.Number == n.String() && now.Before(v.ExpiresAt) {
			return "", &Error{Kind: CodeSent, RetryAfter: limited.RetryAfter, Number: n,
				Text: fmt.Sprintf("A code was already sent to %s: enter it. You can ask for a new one %s.", n, after(limited.RetryAfter))}
		}
		return "", limited
	}
	code, err := newCode()
	if err != nil {
		return "", err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	text := strings.ReplaceAll(s.cfg.Text, "{code}", code)
	sms := &store.Outbound{
		SenderJID:    user.String(),
		SenderNumber: s.cfg.Sender,
		Dest:         n.String(),
		Body:         text,
		Parts:        s.cfg.Parts(n.String(), text),
		ExpiresAt:    now.Add(s.cfg.CodeTTL),
	}
	v := store.Verification{JID: bare, Number: n.String(), CodeHash: hash(salt, code), Salt: salt, ExpiresAt: now.Add(s.cfg.CodeTTL), CreatedAt: now}
	if err := s.store.StartVerification(ctx, v, sms); err != nil {
		return "", err
	}
	s.log.Info().Str("jid", bare).Str("number", n.String()).Msg("verification code sent")
	s.cfg.WakeSMS()
	return n, nil
}

// limit returns the rate limit that keeps another code from going to n
// for user (bare) now, or nil.
func (s *Service) limit(ctx context.Context, n number.E164, bare string, now time.Time) (*Error, error) {
	c, err := s.store.CodeSends(ctx, n.String(), bare, now.Add(-24*time.Hour), now.Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	switch {
	case !c.NumberLast.IsZero() && now.Sub(c.NumberLast) < s.cfg.Resend:
		wait := s.cfg.Resend - now.Sub(c.NumberLast)
		return &Error{Kind: RateLimited, RetryAfter: wait,
			Text: fmt.Sprintf("A code was sent to %s %s ago; you can ask for another %s.", n, roundDown(now.Sub(c.NumberLast)), after(wait))}, nil
	case c.NumberWindow >= s.cfg.PerNumberDay:
		return &Error{Kind: RateLimited, RetryAfter: 24 * time.Hour,
			Text: fmt.Sprintf("Too many codes were sent to %s today; try again tomorrow.", n)}, nil
	case c.JIDWindow >= s.cfg.PerJIDDay:
		return &Error{Kind: RateLimited, RetryAfter: 24 * time.Hour,
			Text: "You have asked for too many codes today; try again tomorrow."}, nil
	case c.Global >= s.cfg.GlobalHour:
		return &Error{Kind: RateLimited, RetryAfter: time.Hour,
			Text: "The gateway is sending too many codes right now; try again in an hour."}, nil
	}
	return nil, nil
}

// Pending returns the number awaiting a code from user, if any.
func (s *Service) Pending(ctx context.Context, user jid.JID) (number.E164, bool) {
	v, err := s.store.PendingVerification(ctx, user.Bare().String())
	if err != nil || s.now().After(v.ExpiresAt) {
		return "", false
	}
	return number.E164(v.Number), true
}

// Confirm checks code; on success the number is bound to user, replacing
// any older binding, and the previous owner (if another JID) is told.
func (s *Service) Confirm(ctx context.Context, user jid.JID, code string) (number.E164, error) {
	if s.cfg.Mode != "sms" {
		return "", refuse(Disabled, "This gateway does not verify numbers by SMS: its operator assigns them.")
	}
	code = strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		if unicode.IsSpace(r) || r == '-' {
			return -1
		}
		return 'x' // anything else can never match
	}, code)
	bare := user.Bare().String()
	now := s.now()
	if code == "" {
		// Nothing typed is not a guess: say what is missing, count no try.
		if v, err := s.store.PendingVerification(ctx, bare); err != nil || now.After(v.ExpiresAt) {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return "", err
			}
			return "", refuse(NoPending, "No code is waiting for you: ask for a new one.")
		}
		return "", refuse(NoCode, "Enter the code from the SMS.")
	}
	ok, v, previous, err := s.store.CheckVerification(ctx, bare, now, s.cfg.MaxTries, func(v store.Verification) bool {
		return len(code) == 6 && hmac.Equal(hash(v.Salt, code), v.CodeHash)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", refuse(NoPending, "No code is waiting for you: ask for a new one.")
	case err != nil:
		return "", err
	case !ok && now.After(v.ExpiresAt):
		return "", refuse(NoPending, "The code has expired: ask for a new one.")
	case !ok && v.Tries >= s.cfg.MaxTries:
		s.log.Warn().Str("jid", bare).Str("number", v.Number).Msg("verification voided after too many wrong codes")
		limited, err := s.limit(ctx, number.E164(v.Number), bare, now)
		if err != nil {
			return "", err
		}
		if limited != nil {
			return "", refuse(NoPending, "Too many wrong codes: this code is void. You can ask for a new one %s.", after(limited.RetryAfter))
		}
		return "", refuse(NoPending, "Too many wrong codes: this code is void. Ask for a new one.")
	case !ok:
		left := s.cfg.MaxTries - v.Tries
		return "", refuse(WrongCode, "That code is not right; %d %s left.", left, plural(left, "try", "tries"))
	}
	n := number.E164(v.Number)
	s.log.Info().Str("jid", bare).Str("number", v.Number).Str("previous", previous).Msg("number verified")
	s.cfg.OnBind(ctx, user.Bare(), v.Number)
	if previous != "" && s.notify != nil {
		pj, err := jid.Parse(previous)
		if err == nil {
			msg := fmt.Sprintf("Your number %s was verified by another account and is no longer yours on this gateway: to send SMS again, register a number.", n)
			if err := s.notify.Notify(ctx, pj, msg); err != nil {
				s.log.Warn().Err(err).Str("jid", previous).Msg("could not tell the previous owner")
			}
		}
	}
	return n, nil
}

// Unregister removes user's binding. It returns the number that was bound,
// or "" if there was none.
func (s *Service) Unregister(ctx context.Context, user jid.JID) (number.E164, error) {
	b, err := s.store.NumberOf(ctx, user.Bare().String())
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if _, err := s.store.Release(ctx, b.Number); err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	s.log.Info().Str("jid", user.Bare().String()).Str("number", b.Number).Msg("number unregistered")
	s.cfg.OnUnbind(ctx, user.Bare(), b.Number)
	return number.E164(b.Number), nil
}

// Status returns user's binding, or store.ErrNotFound.
func (s *Service) Status(ctx context.Context, user jid.JID) (store.Binding, error) {
	return s.store.NumberOf(ctx, user.Bare().String())
}

var million = big.NewInt(1_000_000)

func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, million)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

func hash(salt []byte, code string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(code))
	return m.Sum(nil)
}

// after says when a wait of d ends: "in 2 minutes", "tomorrow".
func after(d time.Duration) string {
	if d >= 24*time.Hour {
		return "tomorrow"
	}
	return "in " + roundUp(d)
}

func roundUp(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", int((d+time.Second-1)/time.Second))
	}
	m := int((d + time.Minute - 1) / time.Minute)
	return fmt.Sprintf("%d %s", m, plural(m, "minute", "minutes"))
}

// roundDown is d, a time gone by, in whole seconds or minutes.
func roundDown(d time.Duration) string {
	if d < time.Minute {
		s := int(d / time.Second)
		return fmt.Sprintf("%d %s", s, plural(s, "second", "seconds"))
	}
	m := int(d / time.Minute)
	return fmt.Sprintf("%d %s", m, plural(m, "minute", "minutes"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
