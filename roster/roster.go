// Package roster turns users' address books into rosters: it imports
// contacts (from the formats package addressbook reads, XEP-0144 items or a
// Quicksy phone-book sync), matches their numbers against registrations,
// and keeps each user's roster items for number JIDs in step — through
// XEP-0356 privileged roster access where the server grants it, or as
// XEP-0144 suggestions where it does not. Only items this component created
// are ever changed: an item the user made for a number before it came in
// an address book stays the user's.
package roster

import (
	"context"

	"mellium.im/xmpp/jid"
)

// Item is a roster item for a number JID.
type Item struct {
	JID    jid.JID
	Name   string
	Group  string
	Remove bool
	// Changed: the item was pushed before, so the roster has it (a
	// rename); else it is new there.
	Changed bool
}

// Pusher changes users' rosters and tells them about contacts' presence.
// The component satisfies it.
type Pusher interface {
	// PushRoster sets or removes items in owner's roster. Of the new items
	// (neither Changed nor Remove) it returns those the roster already had
	// as the user made them, which it left as they are (see
	// Contact.UserItem in package store); nil where it cannot read the
	// roster.
	PushRoster(ctx context.Context, owner jid.JID, items []Item) (users []jid.JID, err error)
	// ContactPresence sends presence from a number JID to owner:
	// available with status, or unavailable.
	ContactPresence(ctx context.Context, from, owner jid.JID, available bool, status string) error
}
