// Package adhoc implements the wire format of XEP-0050: Ad-Hoc Commands, the
// server side: the <command/> request and response, notes, actions, and
// the errors with their specific conditions.
package adhoc

import (
	"encoding/xml"

	"switchboard/xep/dataform"
)

// NS is the ad-hoc commands namespace (also the disco node listing them).
const NS = "http://jabber.org/protocol/commands"

// Actions.
const (
	Execute  = "execute"
	Cancel   = "cancel"
	Next     = "next"
	Prev     = "prev"
	Complete = "complete"
)

// Statuses.
const (
	Executing = "executing"
	Completed = "completed"
	Canceled  = "canceled"
)

// Note types.
const (
	Info  = "info"
	Warn  = "warn"
	Error = "error"
)

// Command is the <command/> element, in requests and responses.
type Command struct {
	XMLName   xml.Name       `xml:"http://jabber.org/protocol/commands command"`
	Node      string         `xml:"node,attr"`
	SessionID string         `xml:"sessionid,attr,omitempty"`
	Action    string         `xml:"action,attr,omitempty"`
	Status    string         `xml:"status,attr,omitempty"`
	Actions   *Actions       `xml:"actions,omitempty"`
	Notes     []Note         `xml:"note,omitempty"`
	Form      *dataform.Form `xml:"jabber:x:data x,omitempty"`
}

// Actions lists what the requester may do next.
type Actions struct {
	Execute  string    `xml:"execute,attr,omitempty"`
	Prev     *struct{} `xml:"prev,omitempty"`
	Next     *struct{} `xml:"next,omitempty"`
	Complete *struct{} `xml:"complete,omitempty"`
}

// Note is a message to the requester.
type Note struct {
	Type string `xml:"type,attr,omitempty"`
	Text string `xml:",chardata"`
}

var present = &struct{}{}

// NextActions offers "next" (the default) when more stages follow, or
// "complete" when the submitted form ends the command.
func NextActions(final bool) *Actions {
	if final {
		return &Actions{Execute: Complete, Complete: present}
	}
	return &Actions{Execute: Next, Next: present}
}

// EffectiveAction is the request's action; an empty one means execute. A
// form sent back of type cancel (XEP-0004 §3.1: the user closed it, as some
// clients answer a command's form) is a cancel, whatever the action says.
func (c *Command) EffectiveAction() string {
	if c.Form != nil && c.Form.Type == dataform.TypeCancel {
		return Cancel
	}
	if c.Action == "" {
		return Execute
	}
	return c.Action
}

// Known tells whether action is one of the actions XEP-0050 defines; an
// empty one (execute) is.
func Known(action string) bool {
	switch action {
	case "", Execute, Cancel, Prev, Next, Complete:
		return true
	}
	return false
}

// Allows tells whether a request may take action at the stage a, the
// <actions/> of the last response, was offered at: execute (the default
// action) and cancel always, prev, next and complete when offered. A nil
// a offers none of them.
func (a *Actions) Allows(action string) bool {
	switch action {
	case "", Execute, Cancel:
		return true
	case Prev:
		return a != nil && a.Prev != nil
	case Next:
		return a != nil && a.Next != nil
	case Complete:
		return a != nil && a.Complete != nil
	}
	return false
}
