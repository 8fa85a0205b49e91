package component

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/roster/number"
	"switchboard/roster/verify"
	"switchboard/store"
	"switchboard/xep/adhoc"
	"switchboard/xep/dataform"
)

// Registrar is the phone identity service. *verify.Service satisfies it.
type Registrar interface {
	Mode() string
	Start(ctx context.Context, user jid.JID, phone string) (number.E164, error)
	Pending(ctx context.Context, user jid.JID) (number.E164, bool)
	Confirm(ctx context.Context, user jid.JID, code string) (number.E164, error)
	Unregister(ctx context.Context, user jid.JID) (number.E164, error)
	Status(ctx context.Context, user jid.JID) (store.Binding, error)
}

// Sessions keeps multi-stage command state where every instance sees it.
// *store.Store satisfies it.
type Sessions interface {
	PutCommandSession(ctx context.Context, cs store.CommandSession) error
	CommandSession(ctx context.Context, id, jid string) (store.CommandSession, error)
	DeleteCommandSession(ctx context.Context, id string) error
}

// Command nodes.
const (
	NodeRegister   = "jabber:iq:register"
	NodeUnregister = "unregister"
	NodeStatus     = "status"
)

const sessionTTL = 15 * time.Minute

type commandInfo struct {
	node, name string
}

// commandList lists the commands a user may run.
func (c *Component) commandList(from jid.JID) []commandInfo {
	var list []commandInfo
	if c.cfg.Registrar != nil {
		if c.cfg.Registrar.Mode() == "sms" {
			list = append(list, commandInfo{NodeRegister, "Register a phone number"})
		}
		list = append(list,
			commandInfo{NodeStatus, "Show my phone number"},
			commandInfo{NodeUnregister, "Unregister my phone number"},
		)
		if c.cfg.AddressBook != nil {
			list = append(list, commandInfo{NodeAddressBook, "Upload my address book"})
		}
		if c.cfg.Preferences != nil {
			list = append(list, commandInfo{NodeSettings, "Delivery settings"})
		}
	}
	if c.isAdmin(from) {
		list = append(list, adminCommands()...)
	}
	return list
}

func (c *Component) commandName(from jid.JID, node string) (string, bool) {
	for _, ci := range c.commandList(from) {
		if ci.node == node {
			return ci.name, true
		}
	}
	return "", false
}

// commandItems answers disco#items on the commands node.
func (c *Component) commandItems(from jid.JID, q element) xml.TokenReader {
	var items []xml.TokenReader
	for _, ci := range c.commandList(from) {
		items = append(items, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "item"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "jid"}, Value: c.cfg.JID.String()},
			{Name: xml.Name{Local: "node"}, Value: ci.node},
			{Name: xml.Name{Local: "name"}, Value: ci.name},
		}}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(items...), queryStart(nsDiscoItems, q))
}

// commandInfoReply answers disco#info on a command node.
func (c *Component) commandInfoReply(from jid.JID, node string, q element) (xml.TokenReader, bool) {
	name, ok := c.commandName(from, node)
	if !ok {
		return nil, false
	}
	return xmlstream.Wrap(xmlstream.MultiReader(
		info.Identity{Category: "automation", Type: "command-node", Name: name}.TokenReader(),
		info.Feature{Var: adhoc.NS}.TokenReader(),
		info.Feature{Var: dataform.NS}.TokenReader(),
	), queryStart(nsDiscoInfo, q)), true
}

// handleCommand runs one stage of an ad-hoc command. It returns the
// <command/> to answer with, or a stanza error.
func (c *Component) handleCommand(ctx context.Context, from jid.JID, req *adhoc.Command) (*adhoc.Command, error) {
	if c.cfg.Registrar == nil || c.cfg.Sessions == nil {
		return nil, errText(stanza.Cancel, stanza.ItemNotFound, "This gateway offers no commands.")
	}
	if !c.router.Served(from) {
		return nil, errText(stanza.Cancel, stanza.Forbidden, "Only users of the XMPP domains this gateway serves may use its commands.")
	}
	if _, ok := c.commandName(from, req.Node); !ok {
		if req.Node == NodeRegister {
			return nil, errText(stanza.Cancel, stanza.NotAllowed, "This gateway does not verify numbers by SMS: its operator assigns them.")
		}
		return nil, errText(stanza.Cancel, stanza.ItemNotFound, fmt.Sprintf("There is no command %q.", req.Node))
	}
	action := req.EffectiveAction()
	if !adhoc.Known(action) {
		return nil, adhoc.Fail(adhoc.MalformedAction, fmt.Sprintf("%q is not an ad-hoc command action.", action))
	}
	user := from.Bare().String()
	var sess store.CommandSession
	if req.SessionID == "" {
		if action != adhoc.Execute {
			return nil, adhoc.Fail(adhoc.BadAction, "Start the command with execute.")
		}
		sess = store.CommandSession{ID: newSessionID(), JID: user, Node: req.Node}
	} else {
		var err error
		sess, err = c.cfg.Sessions.CommandSession(ctx, req.SessionID, user)
		if errors.Is(err, store.ErrNotFound) || (err == nil && sess.Node != req.Node) {
			// The store keeps no trace of a session once it has ended or
			// expired, so one that did cannot be told from one that never
			// was: bad-sessionid, not session-expired.
			return nil, adhoc.Fail(adhoc.BadSessionID, "There is no such command session (it may have expired); start the command again.")
		}
		if err != nil {
			return nil, err
		}
		if action == adhoc.Cancel {
			_ = c.cfg.Sessions.DeleteCommandSession(ctx, sess.ID)
			return &adhoc.Command{Node: req.Node, SessionID: sess.ID, Status: adhoc.Canceled}, nil
		}
		var offered *adhoc.Actions
		offered, sess.Data = unpackOffer(sess.Data)
		if !offered.Allows(action) {
			return nil, adhoc.Fail(adhoc.BadAction, fmt.Sprintf("This stage of the command does not offer %q.", action))
		}
	}
	var (
		resp *adhoc.Command
		err  error
	)
	switch req.Node {
	case NodeRegister:
		resp, err = c.cmdRegister(ctx, from, req, &sess)
	case NodeUnregister:
		resp, err = c.cmdUnregister(ctx, from, req, &sess)
	case NodeStatus:
		resp, err = c.cmdStatus(ctx, from)
	case NodeSettings:
		resp, err = c.cmdSettings(ctx, from, req, &sess)
	case NodeAddressBook:
		resp, err = c.cmdAddressBook(ctx, from, req, &sess)
	case NodeAdminStats, NodeAdminAssign, NodeAdminRelease, NodeAdminLookup, NodeAdminFailures:
		resp, err = c.cmdAdmin(ctx, from, req, &sess)
	}
	if err != nil {
		return nil, err
	}
	resp.Node, resp.SessionID = req.Node, sess.ID
	if resp.Status == adhoc.Executing {
		sess.ExpiresAt = time.Now().Add(sessionTTL)
		sess.Data = packOffer(resp.Actions, sess.Data)
		err = c.cfg.Sessions.PutCommandSession(ctx, sess)
	} else if req.SessionID != "" {
		err = c.cfg.Sessions.DeleteCommandSession(ctx, sess.ID)
	}
	return resp, err
}

// A stored session's Data starts with the actions its last response
// offered, so that the next request is held to them (XEP-0050 §4.6,
// bad-action): their names, then "|", then the command's own data. The
// store keeps no field of its own for them.
const offerEnd = "|"

// packOffer puts the actions a offers in front of data.
func packOffer(a *adhoc.Actions, data string) string {
	var names []string
	for _, name := range []string{adhoc.Prev, adhoc.Next, adhoc.Complete} {
		if a.Allows(name) {
			names = append(names, name)
		}
	}
	return strings.Join(names, " ") + offerEnd + data
}

// unpackOffer splits what packOffer joined. Data written without the
// actions (by an older instance, during an upgrade) is taken whole, as
// offering next and complete.
func unpackOffer(raw string) (*adhoc.Actions, string) {
	names, data, ok := strings.Cut(raw, offerEnd)
	a := &adhoc.Actions{}
	for name := range strings.FieldsSeq(names) {
		switch name {
		case adhoc.Prev:
			a.Prev = &struct{}{}
		case adhoc.Next:
			a.Next = &struct{}{}
		case adhoc.Complete:
			a.Complete = &struct{}{}
		default:
			ok = false
		}
	}
	if !ok {
		return &adhoc.Actions{Next: &struct{}{}, Complete: &struct{}{}}, raw
	}
	return a, data
}

func completed(typ, text string) *adhoc.Command {
	return &adhoc.Command{Status: adhoc.Completed, Notes: []adhoc.Note{{Type: typ, Text: text}}}
}

func executing(form *dataform.Form, final bool, notes ...adhoc.Note) *adhoc.Command {
	return &adhoc.Command{Status: adhoc.Executing, Actions: adhoc.NextActions(final), Form: form, Notes: notes}
}

func phoneForm(current string) *dataform.Form {
	return &dataform.Form{
		Type:         dataform.TypeForm,
		Title:        "Register a phone number",
		Instructions: []string{"Enter your phone number in international form. A code will be sent to it by SMS."},
		Fields: []dataform.Field{
			dataform.Text(dataform.TextSingle, "phone", "Phone number", true, current),
		},
	}
}

func codeForm(n number.E164) *dataform.Form {
	return &dataform.Form{
		Type:         dataform.TypeForm,
		Title:        "Enter the code",
		Instructions: []string{fmt.Sprintf("A code was sent by SMS to %s. Enter it here.", n)},
		Fields: []dataform.Field{
			dataform.Text(dataform.TextSingle, "code", "Code", true),
		},
	}
}

// cmdRegister: stage 0 asks for the number, stage 1 sends the code and asks
// for it, stage 2 checks it.
func (c *Component) cmdRegister(ctx context.Context, from jid.JID, req *adhoc.Command, sess *store.CommandSession) (*adhoc.Command, error) {
	switch sess.Stage {
	case 0:
		// The number a code is waiting for, else the bound one: submitting
		// it again leads back to the code.
		cur, ok := c.cfg.Registrar.Pending(ctx, from)
		if !ok {
			if b, err := c.cfg.Registrar.Status(ctx, from); err == nil {
				cur = number.E164(b.Number)
			}
		}
		sess.Stage = 1
		return executing(phoneForm(cur.String()), false), nil
	case 1:
		phone := ""
		if req.Form != nil {
			phone, _ = req.Form.Get("phone")
		}
		n, err := c.cfg.Registrar.Start(ctx, from, phone)
		var ve *verify.Error
		if errors.As(err, &ve) && ve.Kind == verify.CodeSent {
			// The code already sent is still valid: ask for it.
			sess.Stage, sess.Data = 2, ve.Number.String()
			return executing(codeForm(ve.Number), true, adhoc.Note{Type: adhoc.Info, Text: ve.Text}), nil
		}
		if err != nil {
			note, err := refusal(err)
			if err != nil {
				return nil, err
			}
			return executing(phoneForm(phone), false, note), nil
		}
		sess.Stage, sess.Data = 2, n.String()
		return executing(codeForm(n), true), nil
	default:
		code := ""
		if req.Form != nil {
			code, _ = req.Form.Get("code")
		}
		n, err := c.cfg.Registrar.Confirm(ctx, from, code)
		if err != nil {
			note, err2 := refusal(err)
			if err2 != nil {
				return nil, err2
			}
			var ve *verify.Error
			if errors.As(err, &ve) && (ve.Kind == verify.WrongCode || ve.Kind == verify.NoCode) {
				return executing(codeForm(number.E164(sess.Data)), true, note), nil
			}
			return &adhoc.Command{Status: adhoc.Completed, Notes: []adhoc.Note{note}}, nil
		}
		return completed(adhoc.Info, fmt.Sprintf("Your number is now %s. Messages you send to phone numbers through %s leave from it, and texts to it reach you here.",
			n, c.cfg.JID)), nil
	}
}

func (c *Component) cmdUnregister(ctx context.Context, from jid.JID, req *adhoc.Command, sess *store.CommandSession) (*adhoc.Command, error) {
	b, err := c.cfg.Registrar.Status(ctx, from)
	if errors.Is(err, store.ErrNotFound) {
		return completed(adhoc.Info, "You have no phone number on this gateway."), nil
	}
	if err != nil {
		return nil, err
	}
	if sess.Stage == 0 {
		sess.Stage = 1
		return executing(&dataform.Form{
			Type:  dataform.TypeForm,
			Title: "Unregister " + b.Number,
			Instructions: []string{fmt.Sprintf("Remove %s from your account? You will no longer send or receive SMS as this number, "+
				"and the address book you uploaded is deleted too (its contacts leave your roster).", b.Number)},
			// Not ticked: leaving the form as it is changes nothing.
			Fields: []dataform.Field{{Var: "confirm", Type: dataform.Boolean, Label: "Yes, remove it", Values: []string{"0"}}},
		}, true), nil
	}
	if req.Form == nil || !req.Form.Bool("confirm", false) {
		return completed(adhoc.Info, "Nothing was changed."), nil
	}
	n, err := c.cfg.Registrar.Unregister(ctx, from)
	if err != nil {
		return nil, err
	}
	return completed(adhoc.Info, fmt.Sprintf("%s is no longer your number on this gateway, and the address book you uploaded is deleted "+
		"(its contacts leave your roster). To use the gateway again, register a number.", n)), nil
}

func (c *Component) cmdStatus(ctx context.Context, from jid.JID) (*adhoc.Command, error) {
	b, err := c.cfg.Registrar.Status(ctx, from)
	if errors.Is(err, store.ErrNotFound) {
		if n, ok := c.cfg.Registrar.Pending(ctx, from); ok {
			return completed(adhoc.Info, fmt.Sprintf("You have no phone number yet; a code was sent to %s and is waiting for you.", n)), nil
		}
		return completed(adhoc.Info, "You have no phone number on this gateway."), nil
	}
	if err != nil {
		return nil, err
	}
	how := "assigned by the operator"
	if b.Method == "sms" {
		how = "verified by SMS"
	}
	return completed(adhoc.Info, fmt.Sprintf("Your number is %s, %s on %s.", b.Number, how, b.VerifiedAt.UTC().Format("2006-01-02 15:04 MST"))), nil
}

// refusal turns a verification refusal into a note; other errors pass through.
func refusal(err error) (adhoc.Note, error) {
	var ve *verify.Error
	if errors.As(err, &ve) {
		return adhoc.Note{Type: adhoc.Error, Text: ve.Text}, nil
	}
	return adhoc.Note{}, err
}

func newSessionID() string { return randHex(12) }

// randHex is n random bytes in hex.
func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// decode unmarshals an IQ payload element into v.
func (e element) decode(v any) error {
	// tokenSlice only reslices, so e.toks is left as it was.
	return xml.NewTokenDecoder(&tokenSlice{toks: e.toks}).Decode(v)
}

// marshalTokens renders v as tokens for the stream, without the xmlns
// attributes encoding/xml puts on them (the stream writer adds its own).
func marshalTokens(v any) (xml.TokenReader, error) {
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return payloadTokens(b), nil
}

type tokenSlice struct {
	toks []xml.Token
}

func (r *tokenSlice) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	t := r.toks[0]
	r.toks = r.toks[1:]
	return t, nil
}

// Close drops what is left (an answer read by sendIQ's caller).
func (r *tokenSlice) Close() error { r.toks = nil; return nil }
