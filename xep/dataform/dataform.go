// Package dataform implements the parts of XEP-0004: Data Forms that
// Switchboard's commands and registration use: building forms with
// instructions and typed fields, and reading submitted values.
package dataform

import (
	"encoding/xml"
	"strings"
)

// NS is the data forms namespace.
const NS = "jabber:x:data"

// Form types.
const (
	TypeForm   = "form"
	TypeSubmit = "submit"
	TypeCancel = "cancel"
	TypeResult = "result"
)

// Field types used here.
const (
	Hidden      = "hidden"
	Fixed       = "fixed"
	TextSingle  = "text-single"
	TextMulti   = "text-multi"
	TextPrivate = "text-private"
	Boolean     = "boolean"
	ListSingle  = "list-single"
	JIDSingle   = "jid-single"
)

// Form is a data form (<x xmlns='jabber:x:data'/>).
type Form struct {
	XMLName      xml.Name `xml:"jabber:x:data x"`
	Type         string   `xml:"type,attr"`
	Title        string   `xml:"title,omitempty"`
	Instructions []string `xml:"instructions,omitempty"`
	Fields       []Field  `xml:"field"`
	// Reported and Items carry tabular results.
	Reported *Reported `xml:"reported,omitempty"`
	Items    []Item    `xml:"item,omitempty"`
}

// Field is one form field.
type Field struct {
	Var      string    `xml:"var,attr,omitempty"`
	Type     string    `xml:"type,attr,omitempty"`
	Label    string    `xml:"label,attr,omitempty"`
	Desc     string    `xml:"desc,omitempty"`
	Required *struct{} `xml:"required,omitempty"`
	Values   []string  `xml:"value"`
	Options  []Option  `xml:"option,omitempty"`
}

// Option is a choice of a list field.
type Option struct {
	Label string `xml:"label,attr,omitempty"`
	Value string `xml:"value"`
}

// Reported names the columns of a result table.
type Reported struct {
	Fields []Field `xml:"field"`
}

// Item is one row of a result table.
type Item struct {
	Fields []Field `xml:"field"`
}

// Required marks a field as required.
var Required = &struct{}{}

// Get returns the first value of field v, trimmed, and whether the field was present.
func (f *Form) Get(v string) (string, bool) {
	for _, fl := range f.Fields {
		if fl.Var == v {
			if len(fl.Values) == 0 {
				return "", true
			}
			return strings.TrimSpace(fl.Values[0]), true
		}
	}
	return "", false
}

// Values returns all values of field v (a text-multi field's lines).
func (f *Form) Values(v string) []string {
	for _, fl := range f.Fields {
		if fl.Var == v {
			return fl.Values
		}
	}
	return nil
}

// Bool reads a boolean field ("1"/"true", "0"/"false"); def when absent,
// empty or another value (see Boolean to tell that apart).
func (f *Form) Bool(v string, def bool) bool {
	val, _ := f.Boolean(v, def)
	return val
}

// Boolean reads a boolean field, and says whether its value is one
// XEP-0004 allows ("0", "1", "false", "true", or none); when not, val is
// def.
func (f *Form) Boolean(v string, def bool) (val, ok bool) {
	s, _ := f.Get(v)
	switch s {
	case "":
		return def, true
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return def, false
}

// FormType returns the FORM_TYPE hidden field's value.
func (f *Form) FormType() string {
	s, _ := f.Get("FORM_TYPE")
	return s
}

// Text makes a text field.
func Text(typ, v, label string, required bool, value ...string) Field {
	fl := Field{Var: v, Type: typ, Label: label, Values: value}
	if required {
		fl.Required = Required
	}
	return fl
}

// Note makes a fixed field showing text.
func Note(text string) Field { return Field{Type: Fixed, Values: []string{text}} }
