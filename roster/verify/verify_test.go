package verify

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/store/storetest"
)

type notes struct{ got []string }

func (n *notes) Notify(_ context.Context, to jid.JID, text string) error {
	n.got = append(n.got, to.String()+": "+text)
	return nil
}

// service returns a service on a fresh SQLite store with a clock the test moves.
func service(t *testing.T, cfg Config) (*Service, *store.Store, *time.Time) {
	t.Helper()
	st := storetest.SQLite(t)
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t))
	s := New(cfg, st)
	now := time.Now()
	s.now = func() time.Time { return now }
	return s, st, &now
}

// sentCode reads the code back from the queued SMS.
func sentCode(t *testing.T, st *store.Store) string {
	t.Helper()
	msgs, err := st.ClaimOutbound(context.Background(), "t", 100, time.Minute)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("no code SMS queued: %v", err)
	}
	m := msgs[len(msgs)-1]
	for i := 0; i+6 <= len(m.Body); i++ {
		if isDigits(m.Body[i : i+6]) {
			return m.Body[i : i+6]
		}
	}
	t.Fatalf("no code in %q", m.Body)
	return ""
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

var (
	alice = jid.MustParse("alice@example.com/phone")
	bob   = jid.MustParse("bob@example.com")
)

func kind(err error) Kind {
	var ve *Error
	if errors.As(err, &ve) {
		return ve.Kind
	}
	return -1
}

func TestCodeIsHashedAndExpires(t *testing.T) {
	s, st, now := service(t, Config{})
	ctx := context.Background()
	n, err := s.Start(ctx, alice, "+1 201 555 0142")
	if err != nil || n != "+12015550142" {
		t.Fatalf("Start = %q, %v", n, err)
	}
	code := sentCode(t, st)
	v, err := st.PendingVerification(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(v.CodeHash, []byte(code)) || len(v.CodeHash) != 32 || len(v.Salt) != 16 {
		t.Fatalf("code stored in the clear or badly hashed: %x", v.CodeHash)
	}
	*now = now.Add(10*time.Minute + time.Second)
	if _, err := s.Confirm(ctx, alice, code); kind(err) != NoPending {
		t.Fatalf("expired code: %v", err)
	}
	// The expired verification is gone: even the right code fails again,
	// and the number was never bound.
	if _, err := s.Confirm(ctx, alice, code); kind(err) != NoPending {
		t.Fatalf("after expiry: %v", err)
	}
	if _, err := s.Status(ctx, alice); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired code bound the number: %v", err)
	}
}

func TestConfirmMovesNumber(t *testing.T) {
	s, st, _ := service(t, Config{})
	n := &notes{}
	s.SetNotifier(n)
	ctx := context.Background()
	if _, err := st.Bind(ctx, "+12015550142", "bob@example.com", "operator"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, alice, "+12015550142"); err != nil {
		t.Fatal(err)
	}
	code := sentCode(t, st)
	if _, err := s.Confirm(ctx, alice, "12 34 56x"); kind(err) != WrongCode {
		t.Fatalf("junk code: %v", err)
	}
	got, err := s.Confirm(ctx, alice, code[:3]+" "+code[3:])
	if err != nil || got != "+12015550142" {
		t.Fatalf("Confirm = %q, %v", got, err)
	}
	b, err := s.Status(ctx, alice)
	if err != nil || b.Number != "+12015550142" || b.Method != "sms" {
		t.Fatalf("Status = %+v, %v", b, err)
	}
	// Asking again for one's own number, however written, sends no code.
	if _, err := s.Start(ctx, alice, "+1 (201) 555-0142"); kind(err) != Already || !strings.Contains(err.Error(), "already your number") {
		t.Fatalf("Start with one's own number: %v", err)
	}
	if msgs, err := st.ClaimOutbound(ctx, "t", 100, time.Minute); err != nil || len(msgs) != 0 {
		t.Fatalf("SMS queued for one's own number: %d, %v", len(msgs), err)
	}
	if len(n.got) != 1 || n.got[0][:len("bob@example.com")] != "bob@example.com" {
		t.Fatalf("notices = %v", n.got)
	}
	if num, err := s.Unregister(ctx, alice); err != nil || num != "+12015550142" {
		t.Fatalf("Unregister = %q, %v", num, err)
	}
	if num, err := s.Unregister(ctx, alice); err != nil || num != "" {
		t.Fatalf("second Unregister = %q, %v", num, err)
	}
}

func TestRateLimits(t *testing.T) {
	s, st, now := service(t, Config{PerNumberDay: 3, PerJIDDay: 4, GlobalHour: 6})
	ctx := context.Background()
	start := func(user jid.JID, phone string) error {
		_, err := s.Start(ctx, user, phone)
		return err
	}
	if err := start(alice, "+12015550142"); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(100 * time.Second)
	err := start(bob, "+12015550142")
	var ve *Error
	if !errors.As(err, &ve) || ve.Kind != RateLimited || ve.RetryAfter <= 19*time.Second || ve.RetryAfter > 20*time.Second ||
		ve.Text != "A code was sent to +12015550142 1 minute ago; you can ask for another in 20 seconds." {
		t.Fatalf("resend too soon: %v", err)
	}
	// alice, whose code is still valid, is offered it instead (sending
	// nothing).
	if err := start(alice, "+12015550142"); !errors.As(err, &ve) || ve.Kind != CodeSent || ve.RetryAfter <= 0 || ve.RetryAfter > 2*time.Minute {
		t.Fatalf("alice asking again too soon: %v", err)
	}
	for range 2 {
		*now = now.Add(3 * time.Minute)
		if err := start(alice, "+12015550142"); err != nil {
			t.Fatal(err)
		}
	}
	*now = now.Add(3 * time.Minute)
	if err := start(alice, "+12015550142"); !errors.As(err, &ve) || ve.Kind != CodeSent || !strings.Contains(ve.Text, "tomorrow") {
		t.Fatalf("fourth code to one number today, the third still valid: %v", err)
	}
	*now = now.Add(10 * time.Minute) // the third has expired
	if err := start(alice, "+12015550142"); kind(err) != RateLimited {
		t.Fatalf("fourth code to one number today: %v", err)
	}
	// Per JID: alice has asked 3 times; one more to another number, then refused.
	if err := start(alice, "+12015550143"); err != nil {
		t.Fatal(err)
	}
	if err := start(alice, "+12015550144"); kind(err) != RateLimited {
		t.Fatalf("fifth code for one JID today: %v", err)
	}
	// Global: 4 sent within the hour? No: spread over 22 minutes, all 4 count.
	if err := start(bob, "+12015550145"); err != nil {
		t.Fatal(err)
	}
	if err := start(jid.MustParse("carol@example.com"), "+12015550146"); err != nil {
		t.Fatal(err)
	}
	if err := start(jid.MustParse("dave@example.com"), "+12015550147"); kind(err) != RateLimited {
		t.Fatalf("global ceiling: %v", err)
	}
	// A day later the number limit is lifted.
	*now = now.Add(25 * time.Hour)
	if err := start(jid.MustParse("erin@example.com"), "+12015550142"); err != nil {
		t.Fatalf("next day: %v", err)
	}
	_ = st
}

func TestTriesVoid(t *testing.T) {
	s, st, _ := service(t, Config{MaxTries: 2})
	ctx := context.Background()
	if _, err := s.Start(ctx, alice, "+12015550142"); err != nil {
		t.Fatal(err)
	}
	code := sentCode(t, st)
	bad := "000000"
	if code == bad {
		bad = "111111"
	}
	if _, err := s.Confirm(ctx, alice, bad); kind(err) != WrongCode {
		t.Fatalf("first wrong: %v", err)
	}
	_, err := s.Confirm(ctx, alice, bad)
	var ve *Error
	if !errors.As(err, &ve) || ve.Kind != NoPending || !strings.Contains(ve.Text, "void") || !strings.Contains(ve.Text, "in 2 minutes") {
		t.Fatalf("second wrong voids, saying when to ask again: %v", err)
	}
	if _, err := s.Confirm(ctx, alice, code); kind(err) != NoPending {
		t.Fatalf("right code after void: %v", err)
	}
}

// Asking again for the number whose code is still waiting, before a new
// code may go, offers that code (CodeSent, saying when a new one may be
// asked for) and sends nothing; the code still works. The resend limit
// itself is unchanged: another JID is refused, and after resend_after a
// new code goes.
func TestAskAgainOffersWaitingCode(t *testing.T) {
	s, st, now := service(t, Config{})
	ctx := context.Background()
	if _, err := s.Start(ctx, alice, "+12015550142"); err != nil {
		t.Fatal(err)
	}
	code := sentCode(t, st)
	*now = now.Add(30 * time.Second)
	_, err := s.Start(ctx, alice, "+1 201-555-0142") // written another way
	var ve *Error
	if !errors.As(err, &ve) || ve.Kind != CodeSent || ve.Number != "+12015550142" ||
		ve.RetryAfter <= 89*time.Second || ve.RetryAfter > 90*time.Second || !strings.Contains(ve.Text, "already sent") || !strings.Contains(ve.Text, "in 2 minutes") {
		t.Fatalf("asking again: %v", err)
	}
	if msgs, err := st.ClaimOutbound(ctx, "t", 10, time.Minute); err != nil || len(msgs) != 0 {
		t.Fatalf("%d more SMS queued (%v)", len(msgs), err)
	}
	// Another number is a new request, under its own limits.
	if _, err := s.Start(ctx, bob, "+12015550142"); kind(err) != RateLimited {
		t.Fatalf("bob asking for alice's waiting number: %v", err)
	}
	if got, err := s.Confirm(ctx, alice, code); err != nil || got != "+12015550142" {
		t.Fatalf("the waiting code = %q, %v", got, err)
	}
	// The number is alice's now: asking for it again sends nothing.
	if _, err := s.Start(ctx, alice, "+12015550142"); kind(err) != Already {
		t.Fatalf("asking again after the code was used: %v", err)
	}
	// Given up, it is a new request: with nothing waiting, the resend
	// limit refuses as before.
	if _, err := s.Unregister(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, alice, "+12015550142"); kind(err) != RateLimited {
		t.Fatalf("asking again after giving the number up: %v", err)
	}
	*now = now.Add(2 * time.Minute)
	if _, err := s.Start(ctx, alice, "+12015550142"); err != nil {
		t.Fatalf("after resend_after: %v", err)
	}
	sentCode(t, st)
}

// An empty code, or one of blanks, is not a guess: it says what is missing
// and counts no try.
func TestEmptyCodeCountsNoTry(t *testing.T) {
	s, st, _ := service(t, Config{MaxTries: 2})
	ctx := context.Background()
	if _, err := s.Confirm(ctx, alice, ""); kind(err) != NoPending {
		t.Fatalf("empty code with nothing waiting: %v", err)
	}
	if _, err := s.Start(ctx, alice, "+12015550142"); err != nil {
		t.Fatal(err)
	}
	code := sentCode(t, st)
	for _, empty := range []string{"", " ", "\t\n", " - "} {
		_, err := s.Confirm(ctx, alice, empty)
		var ve *Error
		if !errors.As(err, &ve) || ve.Kind != NoCode || ve.Text != "Enter the code from the SMS." {
			t.Fatalf("Confirm(%q) = %v", empty, err)
		}
	}
	bad := "000000"
	if code == bad {
		bad = "111111"
	}
	if _, err := s.Confirm(ctx, alice, bad); kind(err) != WrongCode {
		t.Fatalf("first wrong code after empty ones: %v", err)
	}
	if got, err := s.Confirm(ctx, alice, "\t"+code+"\n"); err != nil || got != "+12015550142" {
		t.Fatalf("right code = %q, %v", got, err)
	}
}

func TestDisabledAndBadNumber(t *testing.T) {
	s, _, _ := service(t, Config{Mode: "none"})
	if _, err := s.Start(context.Background(), alice, "+12015550142"); kind(err) != Disabled {
		t.Fatalf("mode none: %v", err)
	}
	s, _, _ = service(t, Config{})
	for _, in := range []string{"", "12", "+15555550123", "call me"} {
		if _, err := s.Start(context.Background(), alice, in); kind(err) != BadNumber {
			t.Errorf("Start(%q) = %v", in, err)
		}
	}
	// With a default region, national numbers are accepted.
	s, _, _ = service(t, Config{DefaultRegion: "US"})
	if n, err := s.Start(context.Background(), alice, "(201) 555-0142"); err != nil || n != "+12015550142" {
		t.Fatalf("national = %q, %v", n, err)
	}
}

// A number the operator's limits forbid SMS to gets no code, with the
// limit's words, and nothing is queued or counted against the user.
func TestForbiddenNumberGetsNoCode(t *testing.T) {
	refuse := func(n string) string {
		if strings.HasPrefix(n, "+1900") {
			return "SMS to +1900… numbers are blocked by this gateway."
		}
		return ""
	}
	s, st, _ := service(t, Config{Refuse: refuse, PerJIDDay: 1}) // the refusal must not use alice's one code
	_, err := s.Start(context.Background(), alice, "+19005550142")
	var ve *Error
	if !errors.As(err, &ve) || ve.Kind != Forbidden || !strings.Contains(ve.Text, "+1900") {
		t.Fatalf("Start(premium) = %v, want Forbidden naming the prefix", err)
	}
	if msgs, err := st.ClaimOutbound(context.Background(), "t", 10, time.Minute); err != nil || len(msgs) != 0 {
		t.Fatalf("%d SMS queued for a forbidden number (%v)", len(msgs), err)
	}
	if n, err := s.Start(context.Background(), alice, "+12015550142"); err != nil || n != "+12015550142" {
		t.Fatalf("Start(allowed) = %q, %v", n, err)
	}
	sentCode(t, st)
}

func TestCodesAreRandom(t *testing.T) {
	seen := make(map[string]bool)
	for range 200 {
		c, err := newCode()
		if err != nil || len(c) != 6 || !isDigits(c) {
			t.Fatalf("newCode = %q, %v", c, err)
		}
		seen[c] = true
	}
	if len(seen) < 190 {
		t.Fatalf("only %d distinct codes in 200", len(seen))
	}
}

// TestCodeSMSParts: the code SMS is stored with the parts Config.Parts
// gives for the number (they depend on the SMSCs that carry it).
func TestCodeSMSParts(t *testing.T) {
	var dest string
	s, st, _ := service(t, Config{Parts: func(number, text string) int {
		dest = number
		return 3
	}})
	if _, err := s.Start(context.Background(), alice, "+1 201 555 0142"); err != nil {
		t.Fatal(err)
	}
	msgs, err := st.ClaimOutbound(context.Background(), "t", 10, time.Minute)
	if err != nil || len(msgs) != 1 || msgs[0].Parts != 3 || dest != "+12015550142" {
		t.Fatalf("queued %+v for %s, %v", msgs, dest, err)
	}
}
