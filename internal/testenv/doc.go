// Package testenv starts real servers on loopback for tests: Prosody, PostgreSQL and ejabberd.
//
// Every server runs in a throwaway directory under os.TempDir, listens on free ports on
// 127.0.0.1 only and is stopped by t.Cleanup. Debian's Prosody and PostgreSQL refuse to
// run as root; when the test binary runs as root they are started as the system users
// prosody and postgres (the directories are handed to those users), otherwise as the
// current user. Each server is a child of the test binary: cleanup shuts it down
// gracefully, and a parent-death signal stops it if the test binary itself is killed.
//
// A server whose binary is not installed makes the test skip, unless the environment
// variable SWITCHBOARD_REQUIRE_SERVERS is "1" (CI sets it): then the test fails.
//
// Login gives a minimal XMPP client (mellium.im/xmpp) that sends raw XML and collects
// every stanza it receives, for integration tests that drive Prosody like a user would.
//
// Logs is a zerolog output that a test reads back: each line decoded, in order or counted
// by its message.
//
// The Prosody configuration comes from one template, testdata/prosody/prosody.cfg.lua.tmpl,
// rendered by RenderProsodyConfig for tests and for scripts/demo.sh alike.
//
// ejabberd (Debian's 23.01, testdata/ejabberd/ejabberd.yml.tmpl) runs under `ejabberdctl
// foreground` as user ejabberd, with its own ejabberdctl configuration: Erlang distribution on
// a free port without epmd, and a parent-death signal for the Erlang VM. Accounts are created
// through its HTTP API. Cleanup kills it outright, since its data is thrown away; Stop and
// Restart stop it gracefully (about a second).
package testenv
