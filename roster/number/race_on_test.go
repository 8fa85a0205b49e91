//go:build race

package number

// raceEnabled: the race detector slows libphonenumber's regular expressions
// about tenfold; the comparison tests then check a sample of their inputs.
const raceEnabled = true
