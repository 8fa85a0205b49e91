package addressbook

import (
	"strings"
	"unicode"
)

// readLines reads one contact a line: "Name, number", "Name; number",
// "Name<TAB>number", "number, Name", "Name number" or a number alone. Blank
// lines and lines starting with '#' are skipped.
func readLines(s string, b *book) {
	s = fromLegacy(s)
	n := 0
	for rest := s; rest != "" && !b.tooMany; {
		var l string
		l, rest, _ = strings.Cut(rest, "\n")
		n++
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, nums, ok := splitLine(l)
		if !ok {
			b.problem(n, l, name, ReasonNoNumber)
			continue
		}
		for _, num := range nums {
			b.number(n, num, name, "", nil, "")
		}
	}
}

// splitLine finds the numbers in a line, and takes the rest as the name:
// with separators, every field that looks like a number is one ("Ann; +1
// 201 555 0127; +1 201 555 0128" is Ann's two), none of them taken into
// the name.
func splitLine(l string) (name string, nums []string, ok bool) {
	sep, join := "", ""
	switch {
	case strings.Contains(l, "\t"):
		sep, join = "\t", " "
	case strings.Contains(l, ";"):
		sep, join = ";", "; "
	case strings.Contains(l, ","):
		sep, join = ",", ", "
	}
	if sep == "" {
		name, num, ok := splitWords(l)
		if !ok {
			return name, nil, false
		}
		return name, []string{num}, true
	}
	fields := strings.Split(l, sep)
	at := -1
	switch last := len(fields) - 1; {
	case numberish(fields[last]):
		at = last
	case numberish(fields[0]):
		at = 0
	default:
		for i, f := range fields {
			if numberish(f) {
				at = i
				break
			}
		}
		if at >= 0 {
			break
		}
		// Too short to look like a number, but meant as one ("Gina, 12"):
		// reported as an invalid number rather than as a missing one.
		for i, f := range fields {
			if f = strings.TrimSpace(f); strings.ContainsAny(f, "0123456789") && isPhoneWord(strings.ReplaceAll(f, " ", "")) {
				at = i
				break
			}
		}
	}
	var names []string
	for i, f := range fields {
		f = strings.TrimSpace(f)
		switch {
		case i == at:
			nums = append(nums, f)
		case f == "" || strings.Contains(f, "@"):
		case at >= 0 && numberish(f):
			nums = append(nums, f)
		default:
			names = append(names, f)
		}
	}
	name = strings.Join(names, join)
	if at < 0 {
		return name, nil, false
	}
	return name, nums, true
}

// splitWords reads "Name +1 201 555 0100", "+1 201 555 0100 Name" and a
// number alone, with or without an extension after it.
func splitWords(l string) (name, num string, ok bool) {
	words := strings.Fields(l)
	ext := 0 // words of a trailing extension: "x12", "ext 12"
	switch n := len(words); {
	case n >= 2 && isExtension(words[n-1]):
		ext = 1
	case n >= 3 && isExtensionWord(words[n-2]) && strings.Trim(words[n-1], "0123456789") == "":
		ext = 2
	}
	// The number at the end: the longest run of words made of digits and separators.
	end := len(words) - ext
	k := end
	for k > 0 && isPhoneWord(words[k-1]) {
		k--
	}
	if k == 0 && numberish(l) {
		return "", l, true
	}
	if k > 0 && k < end {
		if num = strings.Join(words[k:], " "); numberish(num) {
			return nameWords(words[:k]), num, true
		}
	}
	// The number at the start.
	k = 0
	for k < len(words) && isPhoneWord(words[k]) {
		k++
	}
	if k > 0 && k < len(words) {
		if num = strings.Join(words[:k], " "); numberish(num) {
			return nameWords(words[k:]), num, true
		}
	}
	return l, "", false
}

// nameWords joins the words of a name, without the punctuation that set it
// off from the number ("Dave: 555…", "555… - Dave").
func nameWords(words []string) string {
	return strings.Trim(strings.Join(words, " "), " :-–—=|")
}

func isExtensionWord(w string) bool {
	w = strings.ToLower(w)
	return w == "x" || w == "ext" || w == "ext." || w == "extn"
}

func isPhoneWord(w string) bool {
	for _, r := range w {
		if !unicode.IsDigit(r) && !isSeparator(r) && r != '+' && r != '＋' {
			return false
		}
	}
	return true
}
