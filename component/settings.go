package component

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xep/adhoc"
	"switchboard/xep/dataform"
)

// NodeSettings is the per-user settings command.
const NodeSettings = "settings"

// Preferences keeps users' routing settings. *store.Store satisfies it.
type Preferences interface {
	SettingsOf(ctx context.Context, jids []string) (map[string]store.Settings, error)
	SetSettings(ctx context.Context, jid string, s store.Settings) error
}

// userSettings returns a user's settings, or the gateway's defaults.
func (c *Component) userSettings(ctx context.Context, user string) (store.Settings, error) {
	def := store.Settings{Fallback: c.cfg.DefaultFallback > 0, FallbackAfter: c.cfg.DefaultFallback}
	if def.FallbackAfter <= 0 {
		def.FallbackAfter = 30 * time.Second
	}
	m, err := c.cfg.Preferences.SettingsOf(ctx, []string{user})
	if err != nil {
		return def, err
	}
	if s, ok := m[user]; ok {
		return s, nil
	}
	return def, nil
}

// cmdSettings shows the settings form, then stores what was submitted.
func (c *Component) cmdSettings(ctx context.Context, from jid.JID, req *adhoc.Command, sess *store.CommandSession) (*adhoc.Command, error) {
	user := from.Bare().String()
	cur, err := c.userSettings(ctx, user)
	if err != nil {
		return nil, err
	}
	// form shows fallback and after: the stored settings, or what the user
	// wrote when it is sent back to be corrected.
	stored := strconv.Itoa(int(cur.FallbackAfter / time.Second))
	form := func(fallback bool, after string) *dataform.Form {
		fb := "0"
		if fallback {
			fb = "1"
		}
		return &dataform.Form{
			Type:  dataform.TypeForm,
			Title: "Delivery settings",
			Instructions: []string{"Messages to numbers whose owners use XMPP go over XMPP. " +
				"If no delivery receipt comes back in time, the gateway can send them as SMS too."},
			Fields: []dataform.Field{
				{Var: "fallback", Type: dataform.Boolean, Label: "Send as SMS when XMPP delivery is not confirmed", Values: []string{fb}},
				dataform.Text(dataform.TextSingle, "fallback_after", "Wait for a receipt (seconds)", false, after),
			},
		}
	}
	if sess.Stage == 0 {
		sess.Stage = 1
		return executing(form(cur.Fallback, stored), true), nil
	}
	if req.Form == nil {
		return completed(adhoc.Info, "Nothing was changed."), nil
	}
	// Every bad field is named at once, so one resubmission can fix them all.
	next := cur
	var bad []adhoc.Note
	fallback, ok := req.Form.Boolean("fallback", cur.Fallback)
	if !ok {
		v, _ := req.Form.Get("fallback")
		bad = append(bad, adhoc.Note{Type: adhoc.Error,
			Text: fmt.Sprintf("Send as SMS: %q is not yes or no (1 or 0).", v)})
	}
	next.Fallback = fallback
	if v, ok := req.Form.Get("fallback_after"); ok && v != "" {
		secs, err := strconv.Atoi(strings.TrimSuffix(v, "s"))
		if err != nil || secs < 1 || secs > 86400 {
			bad = append(bad, adhoc.Note{Type: adhoc.Error,
				Text: fmt.Sprintf("Wait for a receipt: %q is not a number of seconds between 1 and 86400.", v)})
		}
		next.FallbackAfter = time.Duration(secs) * time.Second
	}
	if len(bad) > 0 {
		// Back with what was written, for the user to correct, not undo
		// (the box: the yes or no read, else the stored one, as Boolean
		// gives it).
		after := stored
		if v, ok := req.Form.Get("fallback_after"); ok {
			after = v
		}
		return executing(form(fallback, after), true, bad...), nil
	}
	if err := c.cfg.Preferences.SetSettings(ctx, user, next); err != nil {
		return nil, err
	}
	if next.Fallback {
		return completed(adhoc.Info, fmt.Sprintf("Saved: messages not confirmed over XMPP within %s go as SMS too.", next.FallbackAfter)), nil
	}
	return completed(adhoc.Info, "Saved: messages to XMPP users never go as SMS."), nil
}
