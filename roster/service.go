package roster

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/internal/failing"
	"switchboard/roster/addressbook"
	"switchboard/roster/number"
	"switchboard/store"
)

// Store is what the roster service needs from persistence. *store.Store satisfies it.
type Store interface {
	ImportContacts(ctx context.Context, owner string, contacts []store.Contact, replace bool, dailyLimit int, now time.Time) (store.ImportResult, error)
	ContactsOf(ctx context.Context, owner string) ([]store.Contact, error)
	ContactOf(ctx context.Context, owner, number string) (store.Contact, error)
	HoldersAmong(ctx context.Context, number string, owners []string) (map[string]bool, error)
	DropContacts(ctx context.Context, owner string) error
	DirtyContactsAfter(ctx context.Context, after string, limit int) ([]store.Contact, error)
	ContactsPushed(ctx context.Context, pushed []store.Contact) error
	OwnersOf(ctx context.Context, numbers []string) (map[string]string, error)
	NumberOf(ctx context.Context, jid string) (store.Binding, error)
}

// Config configures a Service. Zero values mean the defaults.
type Config struct {
	Component jid.JID
	// Group is the roster group of number JIDs. Default "Phone contacts".
	Group string
	// MaxContacts caps the numbers in one upload. Default 10,000.
	MaxContacts int
	// DailyLookups caps the numbers a user may look up for the first time
	// in 24 hours, against enumeration. Default 2,048.
	DailyLookups int
	// MaxBytes caps an uploaded file. Default 5 MiB.
	MaxBytes      int
	DefaultRegion string
	// Refuse says, in words for a user, why no SMS may go to a number
	// (E.164), or "" when it may: the router's limits. Numbers it refuses,
	// unless registered, are reported unreachable and shown unavailable.
	// It is called from several goroutines at once. Default: none refused.
	Refuse func(number string) string
	Logger zerolog.Logger
}

// Service imports address books and keeps rosters in step.
type Service struct {
	cfg    Config
	reads  failing.Log // failures to read the roster changes (a store that is down)
	store  Store
	pusher Pusher
	log    zerolog.Logger
	wake   chan struct{}
	now    func() time.Time
	next   string // the owner whose contacts the worker's next batch follows (see pushOnce)
}

// New returns a roster service; set its Pusher before Run.
func New(cfg Config, st Store) *Service {
	if cfg.Group == "" {
		cfg.Group = "Phone contacts"
	}
	if cfg.MaxContacts <= 0 {
		cfg.MaxContacts = 10_000
	}
	if cfg.DailyLookups <= 0 {
		cfg.DailyLookups = 2048
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 5 << 20
	}
	return &Service{cfg: cfg, store: st, log: cfg.Logger.With().Str("component", "roster").Logger(),
		wake: make(chan struct{}, 1), now: time.Now}
}

// SetPusher sets how rosters are changed.
func (s *Service) SetPusher(p Pusher) { s.pusher = p }

// Wake makes the worker look for roster items to push now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Error is a refusal to show the user.
type Error struct {
	Text   string
	Policy bool // a limit (policy-violation), not malformed input
}

func (e *Error) Error() string { return "roster: " + e.Text }

// Entry is one contact in a report.
type Entry struct {
	Name   string
	Number number.E164
	OnXMPP bool // the number belongs to a registered user
	// Mutual: registered, and its user has the uploader's number too; only
	// then does the number's presence say "on XMPP" (see presenceOf).
	Mutual bool
	// Unreachable says why nothing reaches the number: not on XMPP, and
	// the SMS limits forbid it (Config.Refuse). "" when it is reachable.
	Unreachable string
}

// Report says what an import did.
type Report struct {
	store.ImportResult
	Own      number.E164 // the uploader's own number; "" when they have none yet
	Format   addressbook.Format
	Entries  []Entry // the whole address book after the import, sorted by name
	Problems []addressbook.Problem
}

// OnXMPP counts the entries reachable over XMPP.
func (r *Report) OnXMPP() int {
	n := 0
	for _, e := range r.Entries {
		if e.OnXMPP {
			n++
		}
	}
	return n
}

// Unreachable counts the entries nothing reaches (see Entry.Unreachable).
func (r *Report) Unreachable() int {
	n := 0
	for _, e := range r.Entries {
		if e.Unreachable != "" {
			n++
		}
	}
	return n
}

// NotMutual counts the entries reachable over XMPP whose users do not have
// the uploader's number: their presence says "SMS" until they do.
func (r *Report) NotMutual() int {
	n := 0
	for _, e := range r.Entries {
		if e.OnXMPP && !e.Mutual {
			n++
		}
	}
	return n
}

// BySMS counts the entries reached by SMS.
func (r *Report) BySMS() int { return len(r.Entries) - r.OnXMPP() - r.Unreachable() }

// region is the default region for a user's numbers: their own number's.
func (s *Service) region(ctx context.Context, owner jid.JID) string {
	if b, err := s.store.NumberOf(ctx, owner.Bare().String()); err == nil {
		if r := number.E164(b.Number).Region(); r != "" {
			return r
		}
	}
	return s.cfg.DefaultRegion
}

// Upload replaces owner's address book with the one in data (vCard, CSV or
// plain lines): new contacts are added, changed names updated, and
// contacts no longer there removed — from the book and the roster.
func (s *Service) Upload(ctx context.Context, owner jid.JID, data []byte) (*Report, error) {
	contacts, problems, format, err := addressbook.Parse(data, s.region(ctx, owner),
		addressbook.Limits{MaxBytes: s.cfg.MaxBytes, MaxContacts: s.cfg.MaxContacts})
	switch {
	case errors.Is(err, addressbook.ErrTooLarge):
		return nil, &Error{Policy: true, Text: fmt.Sprintf("The address book is larger than %d MiB.", s.cfg.MaxBytes>>20)}
	case errors.Is(err, addressbook.ErrTooMany):
		return nil, &Error{Policy: true, Text: fmt.Sprintf("The address book has more than %d numbers.", s.cfg.MaxContacts)}
	case err != nil:
		return nil, &Error{Text: "The address book could not be read: " + err.Error()}
	}
	if len(contacts) == 0 && len(problems) > 0 {
		rep := &Report{Format: format, Problems: problems}
		return rep, &Error{Text: "No phone number in the address book could be read."}
	}
	rep, err := s.apply(ctx, owner, contacts, true)
	if rep != nil {
		rep.Format, rep.Problems = format, problems
	}
	return rep, err
}

// Merge adds contacts to owner's address book (renaming known ones) and
// removes nothing: for XEP-0144 items and phone-book syncs.
func (s *Service) Merge(ctx context.Context, owner jid.JID, contacts []addressbook.Contact) (*Report, error) {
	if len(contacts) > s.cfg.MaxContacts {
		return nil, &Error{Policy: true, Text: fmt.Sprintf("At most %d numbers at once.", s.cfg.MaxContacts)}
	}
	return s.apply(ctx, owner, contacts, false)
}

func (s *Service) apply(ctx context.Context, owner jid.JID, contacts []addressbook.Contact, replace bool) (*Report, error) {
	bare := owner.Bare().String()
	names := itemNames(contacts)
	in := make([]store.Contact, 0, len(contacts))
	for i, c := range contacts {
		in = append(in, store.Contact{Owner: bare, Number: c.Number.String(), Name: names[i], Photo: c.Photo, PhotoType: c.PhotoType})
	}
	// Who is registered to each number, and what the SMS limits say of the
	// others, needs nothing the import writes: it is looked up beside the
	// import. (On PostgreSQL, of a 10,000-contact upload against 1,000,000
	// registrations the import's writes take about 110 ms, the lookup 40,
	// the limits 20.) A refused import wastes the lookup, and shows nothing
	// of it.
	nums := make([]string, len(in))
	incoming := make(map[string]bool, len(in))
	for i, c := range in {
		nums[i] = c.Number
		incoming[c.Number] = true
	}
	looked := make(chan lookup, 1)
	go func() { looked <- s.lookup(ctx, nums) }()
	res, err := s.store.ImportContacts(ctx, bare, in, replace, s.cfg.DailyLookups, s.now())
	l := <-looked
	var le *store.LookupLimitError
	if errors.As(err, &le) {
		return nil, &Error{Policy: true, Text: fmt.Sprintf(
			"This would look up %d new numbers, and %d of your %d for the last 24 hours are used. Try again later or upload fewer.",
			le.New, le.Used, le.Limit)}
	}
	if err != nil {
		return nil, err
	}
	if l.err != nil {
		return nil, l.err
	}
	s.Wake()
	book := res.Book
	res.Book = nil
	rep := &Report{ImportResult: res}
	// A merge keeps the contacts the upload left out: looked up now.
	var rest []string
	for _, c := range book {
		if !incoming[c.Number] {
			rest = append(rest, c.Number)
		}
	}
	if len(rest) > 0 {
		more := s.lookup(ctx, rest)
		if more.err != nil {
			return nil, more.err
		}
		maps.Copy(l.owners, more.owners)
		maps.Copy(l.refused, more.refused)
	}
	owners, refused := l.owners, l.refused
	own, holders := s.holders(ctx, bare, book, owners)
	rep.Own = number.E164(own)
	for _, c := range book {
		o := owners[c.Number]
		rep.Entries = append(rep.Entries, Entry{Name: c.Name, Number: number.E164(c.Number), OnXMPP: o != "",
			Mutual: holders[o] || o != "" && c.Number == own, Unreachable: refused[c.Number]})
	}
	s.log.Info().Str("owner", bare).Int("added", res.Added).Int("changed", res.Changed).Int("removed", res.Removed).
		Int("contacts", len(book)).Msg("address book imported")
	return rep, nil
}

// itemNames are the roster names of contacts: each one's name, told apart
// where one person has several numbers (a mobile and a work phone would
// be two items of the same name) by the number's label, or where labels
// do not tell them apart either, by its last four digits.
func itemNames(contacts []addressbook.Contact) []string {
	out := make([]string, len(contacts))
	count := make(map[string]int, len(contacts)) // name: numbers
	shared := false
	for i, c := range contacts {
		out[i] = c.Name
		if c.Name != "" {
			count[c.Name]++
			shared = shared || count[c.Name] > 1
		}
	}
	if !shared {
		return out
	}
	labels := make(map[[2]string]int) // (name, label): numbers, of names on several
	for _, c := range contacts {
		if count[c.Name] > 1 {
			labels[[2]string{c.Name, c.Label}]++
		}
	}
	for i, c := range contacts {
		if c.Name == "" || count[c.Name] < 2 {
			continue
		}
		if c.Label != "" && labels[[2]string{c.Name, c.Label}] == 1 {
			out[i] = c.Name + " (" + c.Label + ")"
			continue
		}
		d := c.Number.Digits()
		out[i] = c.Name + " (…" + d[max(0, len(d)-4):] + ")"
	}
	return out
}

// Forget deletes owner's address book and, through the worker, the roster
// items made from it.
func (s *Service) Forget(ctx context.Context, owner jid.JID) error {
	if err := s.store.DropContacts(ctx, owner.Bare().String()); err != nil {
		return err
	}
	s.Wake()
	return nil
}

// Relation is what a requester may learn about a number.
type Relation struct {
	InBook    bool   // the number is in the requester's address book
	Name      string // its name there
	OnXMPP    bool   // registered (only reported for numbers in the book)
	Mutual    bool   // registered, and its owner has the requester's number too
	Photo     []byte
	PhotoType string
}

// Relation tells what requester may know of number: registration is
// revealed only for numbers in the requester's own address book, so nobody
// can scan the numbering plan.
func (s *Service) Relation(ctx context.Context, requester jid.JID, num string) (Relation, error) {
	var r Relation
	bare := requester.Bare().String()
	c, err := s.store.ContactOf(ctx, bare, num)
	if errors.Is(err, store.ErrNotFound) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	r.InBook, r.Name, r.Photo, r.PhotoType = true, c.Name, c.Photo, c.PhotoType
	owners, err := s.store.OwnersOf(ctx, []string{num})
	if err != nil {
		return r, err
	}
	owner := owners[num]
	if owner == "" {
		return r, nil
	}
	r.OnXMPP = true
	own, err := s.store.NumberOf(ctx, bare)
	if err != nil {
		return r, nil
	}
	if _, err := s.store.ContactOf(ctx, owner, own.Number); err == nil {
		r.Mutual = true
	}
	return r, nil
}

// Sync answers a Quicksy phone-book sync: the numbers of the list that are
// on XMPP, with their JIDs, and a version over them. The numbers are merged
// into the user's address book (so the lookup limits apply).
func (s *Service) Sync(ctx context.Context, owner jid.JID, numbers []string) (ver string, onXMPP []Entry, err error) {
	var contacts []addressbook.Contact
	seen := make(map[number.E164]bool)
	region := s.region(ctx, owner)
	for _, raw := range numbers {
		n, err := number.Parse(raw, region)
		if err != nil || seen[n] {
			continue
		}
		seen[n] = true
		contacts = append(contacts, addressbook.Contact{Number: n})
	}
	if len(contacts) > 0 {
		// Names come from the address book, if any: a sync keeps them.
		book, err := s.store.ContactsOf(ctx, owner.Bare().String())
		if err != nil {
			return "", nil, err
		}
		names := make(map[string]string, len(book))
		for _, c := range book {
			names[c.Number] = c.Name
		}
		for i := range contacts {
			contacts[i].Name = names[contacts[i].Number.String()]
		}
		if _, err := s.Merge(ctx, owner, contacts); err != nil {
			return "", nil, err
		}
	}
	nums := make([]string, 0, len(contacts))
	for _, c := range contacts {
		nums = append(nums, c.Number.String())
	}
	owners, err := s.store.OwnersOf(ctx, nums)
	if err != nil {
		return "", nil, err
	}
	for _, n := range nums {
		if owners[n] != "" {
			onXMPP = append(onXMPP, Entry{Number: number.E164(n), OnXMPP: true})
		}
	}
	sort.Slice(onXMPP, func(i, j int) bool { return onXMPP[i].Number < onXMPP[j].Number })
	h := sha1.New()
	for _, e := range onXMPP {
		fmt.Fprintf(h, "%s\x00%s\x00", e.Number, e.Number.JID(s.cfg.Component))
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), onXMPP, nil
}

const (
	pushBatch = 500
	pushPoll  = 2 * time.Second
)

// Run pushes roster changes until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if s.pusher == nil {
		return errors.New("roster: no pusher set")
	}
	t := time.NewTicker(pushPoll)
	defer t.Stop()
	for {
		for s.pushOnce(ctx) {
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-t.C:
		}
	}
}

// pushOnce pushes one batch; it reports whether there may be more. Each
// batch goes on after the last owner of the one before (s.next), and
// starts again from the first owner when there are no more: owners are
// served in turn, up to pushBatch contacts each, so that one who keeps
// uploading books holds back nobody else's.
func (s *Service) pushOnce(ctx context.Context) bool {
	after := s.next
	dirty, err := s.store.DirtyContactsAfter(ctx, after, pushBatch)
	if err == nil && len(dirty) == 0 && after != "" {
		after = ""
		dirty, err = s.store.DirtyContactsAfter(ctx, after, pushBatch)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.reads.Fail(s.log, err, "reading roster changes failed; retrying (the store?)")
		}
		return false
	}
	s.reads.OK(s.log, "reading roster changes works again")
	if len(dirty) == 0 {
		s.next = ""
		return false
	}
	s.next = dirty[len(dirty)-1].Owner
	nums := make([]string, 0, len(dirty))
	for _, c := range dirty {
		nums = append(nums, c.Number)
	}
	slices.Sort(nums)
	owners, err := s.store.OwnersOf(ctx, slices.Compact(nums))
	if err != nil {
		s.log.Error().Err(err).Msg("matching numbers failed")
		return false
	}
	var done []store.Contact
	sent := make(map[[2]string]bool) // (number JID, to) presences sent this round
	for i := 0; i < len(dirty); {
		j := i
		for j < len(dirty) && dirty[j].Owner == dirty[i].Owner {
			j++
		}
		group := dirty[i:j]
		i = j
		owner, err := jid.Parse(group[0].Owner)
		if err != nil {
			done = append(done, group...)
			continue
		}
		var items []Item
		for _, c := range group {
			if !c.ItemPushed() && !c.UserItem {
				items = append(items, Item{JID: number.E164(c.Number).JID(s.cfg.Component), Name: c.Name, Group: s.cfg.Group, Remove: c.Deleted,
					Changed: c.ItemChanged()})
			}
		}
		if len(items) > 0 {
			users, err := s.pusher.PushRoster(ctx, owner, items)
			if err != nil {
				s.log.Warn().Err(err).Str("owner", group[0].Owner).Msg("roster push failed; will retry")
				continue
			}
			markUsers(group, users)
		}
		s.pushPresence(ctx, owner, group, owners, sent)
		done = append(done, group...)
	}
	if len(done) == 0 {
		return false
	}
	if err := s.store.ContactsPushed(ctx, done); err != nil {
		s.log.Error().Err(err).Msg("recording roster pushes failed")
		return false
	}
	// Owners before after may have changes waiting too.
	return len(dirty) == pushBatch || after != ""
}

// markUsers marks the contacts of group whose roster items are users' own
// (see store.Contact.UserItem): users are their JIDs.
func markUsers(group []store.Contact, users []jid.JID) {
	if len(users) == 0 {
		return
	}
	nums := make(map[string]bool, len(users))
	for _, u := range users {
		nums[u.Localpart()] = true
	}
	for i := range group {
		if !group[i].Deleted && nums[group[i].Number] {
			group[i].UserItem = true
		}
	}
}

// holders returns viewer's own number ("" if none) and, of the users
// registered to the numbers of book (owners maps numbers to them), those
// whose address books hold it: viewer and they are mutual contacts.
func (s *Service) holders(ctx context.Context, viewer string, book []store.Contact, owners map[string]string) (own string, holders map[string]bool) {
	if b, err := s.store.NumberOf(ctx, viewer); err == nil {
		own = b.Number
	}
	if own == "" {
		return "", nil
	}
	var others []string
	for _, c := range book {
		if o := owners[c.Number]; o != "" && o != viewer {
			others = append(others, o)
		}
	}
	if len(others) == 0 {
		return own, nil
	}
	holders, err := s.store.HoldersAmong(ctx, own, others)
	if err != nil {
		s.log.Warn().Err(err).Msg("reading who holds a number failed")
	}
	return own, holders
}

// Presence statuses of number JIDs (see the README's presence rules).
const (
	StatusXMPP = "on XMPP"
	StatusSMS  = "SMS"
	// StatusNoNumber: the viewer has no number on the gateway, so no
	// message of theirs gets through to any number.
	StatusNoNumber = "register a number of your own to write"
)

// pushPresence sends the presence of the number JIDs in group, contacts of
// one owner just pushed, to that owner; owners maps their numbers to the
// users they are registered to.
//
// Whether two users have each other's numbers (mutual: "on XMPP") changes
// for both of them when either's book or registration does, so the owner's
// own number JID is also shown again to the users registered to numbers in
// group who hold it: one lookup for the group, and one presence for each of
// them.
//
// A presence already in sent (this round of the worker: both sides of a
// mutual pair may be marked, as a rebind marks the number and the user's
// book) is not sent twice.
func (s *Service) pushPresence(ctx context.Context, owner jid.JID, group []store.Contact, owners map[string]string, sent map[[2]string]bool) {
	send := func(num string, to jid.JID, avail bool, status string) {
		from := number.E164(num).JID(s.cfg.Component)
		key := [2]string{from.String(), to.String()}
		if sent[key] {
			return
		}
		sent[key] = true
		_ = s.pusher.ContactPresence(ctx, from, to, avail, status)
	}
	own, holders := s.holders(ctx, group[0].Owner, group, owners)
	for _, c := range group {
		o := owners[c.Number]
		if !c.Deleted {
			mutual := holders[o] || o != "" && c.Number == own // own number in own book
			status, avail := s.presenceOf(c.Number, o != "", mutual)
			if own == "" {
				status, avail = StatusNoNumber, false
			}
			send(c.Number, owner, avail, status)
		} else if own == "" {
			// Gone with the user's number (unregistered): where the item
			// stays (a server that takes suggestions only, a removal the
			// client missed), it shows that nothing gets through.
			send(c.Number, owner, false, StatusNoNumber)
		}
		if holders[o] {
			// o has own and is registered to c.Number: mutual while owner has it.
			other, err := jid.Parse(o)
			if err != nil {
				continue
			}
			status, avail := s.presenceOf(own, true, !c.Deleted)
			send(own, other, avail, status)
		}
	}
}

// presenceOf is the presence of a number JID to a viewer with a number of
// their own: a registered number whose owner and the viewer have each
// other's numbers (mutual) is "on XMPP"; any other registered number (a
// message to it is relayed over XMPP) and every number SMS may go to says
// "SMS". Those are available, since a message to them gets through; a
// number the SMS limits forbid, not registered, is unavailable, and its
// status says why. To a viewer with no number every number JID is
// unavailable (StatusNoNumber): the router refuses their messages.
func (s *Service) presenceOf(num string, registered, mutual bool) (string, bool) {
	switch {
	case mutual:
		return StatusXMPP, true
	case registered:
		return StatusSMS, true
	}
	if why := s.forbidden(num); why != "" {
		return why, false
	}
	return StatusSMS, true
}

// refused says, for each of nums that nobody has, why no SMS may go to it
// (absent where it may). The check reads each number's region
// from libphonenumber's patterns, microseconds a number, so a book's
// thousands are spread over the CPUs, as addressbook.Parse spreads them.
func (s *Service) refused(nums []string, owners map[string]string) map[string]string {
	out := make(map[string]string)
	if s.cfg.Refuse == nil {
		return out
	}
	why := make([]string, len(nums))
	number.Each(len(nums), 256, func(i int) {
		if owners[nums[i]] == "" {
			why[i] = s.forbidden(nums[i])
		}
	})
	for i, w := range why {
		if w != "" {
			out[nums[i]] = w
		}
	}
	return out
}

// lookup is who is registered to numbers, and why no SMS may go to the
// others (see refused).
type lookup struct {
	owners  map[string]string // number: the bare JID registered to it
	refused map[string]string // number: why no SMS may go to it
	err     error
}

func (s *Service) lookup(ctx context.Context, nums []string) lookup {
	owners, err := s.store.OwnersOf(ctx, nums)
	if err != nil {
		return lookup{err: err}
	}
	return lookup{owners: owners, refused: s.refused(nums, owners)}
}

// forbidden says why no SMS may go to num, or "". A panic in the number
// library leaves it "" (the router decides again before any SMS), logged.
func (s *Service) forbidden(num string) (why string) {
	if s.cfg.Refuse == nil {
		return ""
	}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Str("number", num).Interface("panic", v).Msg("checking a number against the SMS limits panicked")
		}
	}()
	return s.cfg.Refuse(num)
}

// PresenceFor answers a presence probe from requester for a number JID.
func (s *Service) PresenceFor(ctx context.Context, requester jid.JID, num string) (status string, available bool) {
	if _, err := s.store.NumberOf(ctx, requester.Bare().String()); errors.Is(err, store.ErrNotFound) {
		return StatusNoNumber, false
	}
	rel, err := s.Relation(ctx, requester, num)
	if err != nil {
		return StatusSMS, true
	}
	// Registration is told only for numbers in the requester's book.
	return s.presenceOf(num, rel.InBook && rel.OnXMPP, rel.Mutual)
}
