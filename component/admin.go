package component

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/roster/number"
	"switchboard/store"
	"switchboard/xep/adhoc"
	"switchboard/xep/dataform"
)

// Admin command nodes, offered only to [xmpp] admins.
const (
	NodeAdminStats    = "admin-stats"
	NodeAdminAssign   = "admin-assign"
	NodeAdminRelease  = "admin-release"
	NodeAdminLookup   = "admin-lookup"
	NodeAdminFailures = "admin-failures"
)

// Admin is what operators' commands need. *store.Store satisfies it.
type Admin interface {
	Counts(ctx context.Context) (map[string]int, error)
	Bind(ctx context.Context, number, jid, method string) (string, error)
	Release(ctx context.Context, number string) (string, error)
	OwnerOf(ctx context.Context, number string) (store.Binding, error)
	RecentFailures(ctx context.Context, limit int) ([]store.Failure, error)
}

func (c *Component) isAdmin(from jid.JID) bool {
	return c.cfg.Admin != nil && slices.ContainsFunc(c.cfg.Admins, func(a jid.JID) bool { return a.Equal(from.Bare()) })
}

func adminCommands() []commandInfo {
	return []commandInfo{
		{NodeAdminStats, "Admin: statistics"},
		{NodeAdminAssign, "Admin: assign a number"},
		{NodeAdminRelease, "Admin: release a number"},
		{NodeAdminLookup, "Admin: look up a number"},
		{NodeAdminFailures, "Admin: recent failures"},
	}
}

// cmdAdmin runs an operator's command.
func (c *Component) cmdAdmin(ctx context.Context, from jid.JID, req *adhoc.Command, sess *store.CommandSession) (*adhoc.Command, error) {
	region := c.cfg.DefaultRegion
	numberField := dataform.Text(dataform.TextSingle, "number", "Phone number", true)
	ask := func(title string, fields ...dataform.Field) *adhoc.Command {
		sess.Stage = 1
		return executing(&dataform.Form{Type: dataform.TypeForm, Title: title, Fields: fields}, true)
	}
	get := func(v string) string {
		if req.Form == nil {
			return ""
		}
		s, _ := req.Form.Get(v)
		return s
	}
	switch req.Node {
	case NodeAdminStats:
		counts, err := c.cfg.Admin.Counts(ctx)
		if err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		fmt.Fprintf(&b, "XMPP connected: %v; stanzas read: %d.\nMessages by direction/state:", c.Connected(), c.stanzas.Load())
		for _, k := range keys {
			fmt.Fprintf(&b, "\n  %s: %d", k, counts[k])
		}
		return completed(adhoc.Info, b.String()), nil
	case NodeAdminFailures:
		fs, err := c.cfg.Admin.RecentFailures(ctx, 20)
		if err != nil {
			return nil, err
		}
		if len(fs) == 0 {
			return completed(adhoc.Info, "No failed messages."), nil
		}
		var b strings.Builder
		fmt.Fprintf(&b, "The %d most recent failures:", len(fs))
		for _, f := range fs {
			fmt.Fprintf(&b, "\n%s  #%d %s %s ↔ %s: %s", f.At.UTC().Format(time.DateTime), f.ID, f.Direction, f.UserJID, f.Peer, f.Error)
		}
		return completed(adhoc.Info, b.String()), nil
	case NodeAdminAssign:
		if sess.Stage == 0 {
			return ask("Assign a number", dataform.Text(dataform.JIDSingle, "jid", "User", true), numberField), nil
		}
		j, err := jid.Parse(get("jid"))
		if err != nil || j.Localpart() == "" {
			return completed(adhoc.Error, fmt.Sprintf("%q is not a user's JID.", get("jid"))), nil
		}
		if !c.router.Served(j) {
			// They could never use it, and phones' messages to it would leave for their server.
			return completed(adhoc.Error, fmt.Sprintf("%s is not a user of a domain this gateway serves.", j.Bare())), nil
		}
		n, err := number.Parse(get("number"), region)
		if err != nil {
			return completed(adhoc.Error, fmt.Sprintf("%q is not a phone number.", get("number"))), nil
		}
		prev, err := c.cfg.Admin.Bind(ctx, n.String(), j.Bare().String(), "operator")
		if err != nil {
			return nil, err
		}
		c.log.Info().Str("admin", from.Bare().String()).Str("number", n.String()).Str("jid", j.Bare().String()).Msg("number assigned by admin")
		text := fmt.Sprintf("%s is now bound to %s.", n, j.Bare())
		if prev != "" {
			text += fmt.Sprintf(" It was bound to %s before.", prev)
		}
		return completed(adhoc.Info, text), nil
	case NodeAdminRelease, NodeAdminLookup:
		if sess.Stage == 0 {
			title := "Release a number"
			if req.Node == NodeAdminLookup {
				title = "Look up a number"
			}
			return ask(title, numberField), nil
		}
		n, err := number.Parse(get("number"), region)
		if err != nil {
			return completed(adhoc.Error, fmt.Sprintf("%q is not a phone number.", get("number"))), nil
		}
		if req.Node == NodeAdminLookup {
			b, err := c.cfg.Admin.OwnerOf(ctx, n.String())
			if errors.Is(err, store.ErrNotFound) {
				return completed(adhoc.Info, fmt.Sprintf("%s is not bound to anyone.", n)), nil
			}
			if err != nil {
				return nil, err
			}
			return completed(adhoc.Info, fmt.Sprintf("%s is bound to %s (%s, since %s).", n, b.JID, b.Method,
				b.VerifiedAt.UTC().Format(time.DateTime))), nil
		}
		j, err := c.cfg.Admin.Release(ctx, n.String())
		if errors.Is(err, store.ErrNotFound) {
			return completed(adhoc.Info, fmt.Sprintf("%s is not bound to anyone.", n)), nil
		}
		if err != nil {
			return nil, err
		}
		c.log.Info().Str("admin", from.Bare().String()).Str("number", n.String()).Msg("number released by admin")
		return completed(adhoc.Info, fmt.Sprintf("%s released (it was bound to %s).", n, j)), nil
	}
	return nil, errText("cancel", "item-not-found", "No such command.")
}
