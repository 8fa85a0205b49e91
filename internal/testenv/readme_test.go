package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// codeBlocks returns the fenced blocks of lang in the README's section
// under heading (up to the next "## " heading); it fails the test if there
// are none.
func codeBlocks(t *testing.T, readme, heading, lang string) []string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	section := readme[i+len(heading)+2:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var blocks []string
	for {
		j := strings.Index(section, "```"+lang+"\n")
		if j < 0 {
			break
		}
		section = section[j+len("```"+lang+"\n"):]
		k := strings.Index(section, "```")
		if k < 0 {
			t.Fatalf("a %s block under %q is not closed", lang, heading)
		}
		blocks = append(blocks, section[:k])
		section = section[k+3:]
	}
	if len(blocks) == 0 {
		t.Fatalf("no %s block under %q", lang, heading)
	}
	return blocks
}

// containsInOrder checks that every meaningful line of block appears, in order,
// in rendered (whitespace trimmed; comments with a "…" placeholder, which stand
// for what an operator's file already has, skipped).
func containsInOrder(t *testing.T, name, block, rendered string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(rendered, "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	at := 0
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || (strings.HasPrefix(l, "--") || strings.HasPrefix(l, "#")) && strings.Contains(l, "…") || strings.Contains(l, "a long random secret") || strings.HasPrefix(l, "port:") || strings.HasPrefix(l, "ip:") {
			continue
		}
		found := false
		for k := at; k < len(lines); k++ {
			if lines[k] == l {
				at, found = k+1, true
				break
			}
		}
		if !found {
			t.Errorf("%s: README line %q is not in the configuration the tests use (in this order)", name, l)
		}
	}
}

// TestREADMEServerSetups: every block of the README's Prosody and ejabberd
// sections is part of the configurations the integration tests run, so they
// cannot drift.
func TestREADMEServerSetups(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	prosody, err := RenderProsodyConfig(ProsodyConfig{Dir: t.TempDir(), Interface: "127.0.0.1", C2SPort: 5222, ComponentPort: 5347,
		Domain: "example.com", Component: "sms.example.com", Secret: "a long random secret", Privilege: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range codeBlocks(t, readme, "## Attaching to Prosody", "lua") {
		containsInOrder(t, "Prosody", block, string(prosody))
	}
	ejabberd, err := RenderEjabberdConfig(EjabberdConfig{Dir: t.TempDir(), Interface: "127.0.0.1", C2SPort: 5222, ComponentPort: 5347, HTTPPort: 5280,
		Domain: "example.com", Component: "sms.example.com", Secret: "a long random secret", Privilege: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range codeBlocks(t, readme, "## Attaching to ejabberd", "yaml") {
		containsInOrder(t, "ejabberd", block, string(ejabberd))
	}
}
