package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/roster/number"
	"switchboard/store"
)

func cmdNumbers(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("numbers", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (TOML)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: switchboard numbers -config FILE assign JID NUMBER   bind NUMBER to the user JID (releasing their old one)
       switchboard numbers -config FILE list                  every bound number
       switchboard numbers -config FILE release NUMBER        unbind NUMBER
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usageError{"numbers: want assign JID NUMBER, list, or release NUMBER"}
	}
	// Flags may also follow the subcommand: numbers assign -config F JID NUMBER.
	sub := rest[0]
	if err := parseFlags(fs, rest[1:]); err != nil {
		return err
	}
	rest = fs.Args()
	if !slices.Contains([]string{"assign", "release", "list"}, sub) {
		// Before the store is opened: a misspelt command creates no database.
		return usageError{fmt.Sprintf("numbers: unknown subcommand %q (want assign, list or release)", sub)}
	}
	cfg, err := loadConfig(*path, os.Environ())
	if err != nil {
		return err
	}
	// The arguments are checked before the store is opened too: a mistyped
	// number or JID creates no database and touches none.
	var (
		user jid.JID
		num  number.E164
	)
	switch sub {
	case "assign":
		if len(rest) != 2 {
			return usageError{"numbers assign: want JID NUMBER"}
		}
		j, err := jid.Parse(rest[0])
		if err != nil || j.Localpart() == "" {
			return usageError{fmt.Sprintf("numbers assign: %q is not a user JID", rest[0])}
		}
		// The gateway serves only these domains: their user could never use the
		// number, and its phones' messages would leave for that domain's server.
		if !slices.ContainsFunc(cfg.XMPP.Domains, func(d string) bool { return strings.EqualFold(d, j.Domainpart()) }) {
			return usageError{fmt.Sprintf("numbers assign: %s is not a user of xmpp.domains (%s), the only users the gateway serves",
				j.Bare(), strings.Join(cfg.XMPP.Domains, ", "))}
		}
		if num, err = number.Parse(rest[1], cfg.Phone.DefaultRegion); err != nil {
			return usageError{fmt.Sprintf("numbers assign: %v", err)}
		}
		user = j.Bare()
	case "release":
		if len(rest) != 1 {
			return usageError{"numbers release: want NUMBER"}
		}
		if num, err = number.Parse(rest[0], cfg.Phone.DefaultRegion); err != nil {
			return usageError{fmt.Sprintf("numbers release: %v", err)}
		}
	case "list":
		if len(rest) != 0 {
			return usageError{"numbers list: takes no arguments"}
		}
	}
	st, err := store.Open(ctx, cfg.Store.DSN)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "assign":
		// A user has one number: Bind releases the one they had.
		had, err := st.NumberOf(ctx, user.String())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// Bind marks the address books holding this number or the
		// user's old one: a running gateway pushes the change.
		prev, err := st.Bind(ctx, num.String(), user.String(), "operator")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is now bound to %s\n", num, user)
		if prev != "" {
			fmt.Fprintf(stdout, "(it was bound to %s before)\n", prev)
		}
		if had.Number != "" && had.Number != num.String() {
			fmt.Fprintf(stdout, "(%s's previous number %s is released)\n", user, had.Number)
		}
	case "release":
		j, err := st.Release(ctx, num.String())
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("numbers release: %s is not bound", num)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s released (was bound to %s)\n", num, j)
	case "list":
		bs, err := st.Bindings(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NUMBER\tJID\tMETHOD\tSINCE")
		for _, b := range bs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", b.Number, b.JID, b.Method, b.VerifiedAt.UTC().Format(time.RFC3339))
		}
		return w.Flush()
	default:
		panic("unreachable: checked above")
	}
	return nil
}
