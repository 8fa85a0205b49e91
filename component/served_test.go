package component

import (
	"context"

	"mellium.im/xmpp/jid"

	"switchboard/router"
)

// Served accepts every JID but those of forbidden.example.
func (r *fakeRouter) Served(j jid.JID) bool { return j.Domainpart() != "forbidden.example" }

func (fuzzRouter) Served(jid.JID) bool { return true }

func (r *fakeRouter) Receipt(context.Context, router.Message, string, bool) bool    { return false }
func (r *fakeRouter) Bounce(context.Context, jid.JID, jid.JID, string, []byte) bool { return false }
func (fuzzRouter) Receipt(context.Context, router.Message, string, bool) bool       { return false }
func (fuzzRouter) Bounce(context.Context, jid.JID, jid.JID, string, []byte) bool    { return false }
