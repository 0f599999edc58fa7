// Command check decodes logfmt from stdin with go-logfmt, the strict decoder that
// go-kit, Prometheus and Loki's `| logfmt` use, and fails (exit 1) on any decode
// error or on a value that is not valid UTF-8. For each record (line) it prints one
// line of space-separated KEY:VALUE pairs, both in hex, so tests/common/logfmt.rs can
// compare the decoded bytes exactly.
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"unicode/utf8"

	"github.com/go-logfmt/logfmt"
)

func main() {
	out := bufio.NewWriter(os.Stdout)
	dec := logfmt.NewDecoder(bufio.NewReader(os.Stdin))
	line := 0
	for dec.ScanRecord() {
		line++
		sep := ""
		for dec.ScanKeyval() {
			if !utf8.Valid(dec.Value()) {
				fmt.Fprintf(os.Stderr, "line %d: %s: value is not UTF-8\n", line, dec.Key())
				os.Exit(1)
			}
			fmt.Fprintf(out, "%s%s:%s", sep, hex.EncodeToString(dec.Key()), hex.EncodeToString(dec.Value()))
			sep = " "
		}
		fmt.Fprintln(out)
	}
	if err := dec.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
