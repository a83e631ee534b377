package auditreport

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// WriteJSON writes the review as one indented JSON object.
func (r *ReviewReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("auditreport: writing review json: %w", err)
	}
	return nil
}

// WriteCSV writes one row per finding under a header row (RFC 4180,
// UTF-8, Swedish time). The event indexes are space-separated in one cell;
// the last five columns hold the finding's current mark, empty if it has
// none, and "marks" how many marks it has.
func (r *ReviewReport) WriteCSV(w io.Writer) error {
	cw := newCSV(w)
	_ = cw.Write([]string{"id", "rule", "user", "client_addr", "care_unit", "first", "last", "event_count", "patients", "events",
		"description_sv", "description_en", "marks", "reviewed_at", "reviewer", "review_outcome", "review_note", "self_review"})
	for i := range r.Findings {
		f := &r.Findings[i]
		row := []string{f.ID, f.Rule, f.User, f.ClientAddr, f.CareUnit, csvTimeOf(f.First), csvTimeOf(f.Last),
			strconv.Itoa(f.EventCount), strconv.Itoa(f.Patients), joinIndexes(f.Events), f.DescriptionSV, f.DescriptionEN,
			strconv.Itoa(len(f.Marks))}
		if m := f.LastMark(); m != nil {
			row = append(row, csvTimeOf(m.Time), m.Reviewer, m.Outcome, cellText(m.Note), strconv.FormatBool(m.SelfReview))
		} else {
			row = append(row, "", "", "", "", "")
		}
		_ = cw.Write(row)
	}
	return flushCSV(cw, "review")
}

// WriteText writes the review for a terminal, in Swedish and English.
// Strings from the log are printed with control characters escaped, and
// notes quoted, so that no log entry can drive the terminal.
func (r *ReviewReport) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	reviewed := 0
	for i := range r.Findings {
		if r.Findings[i].Reviewed() {
			reviewed++
		}
	}
	fmt.Fprintf(bw, "Logguppföljning / Log follow-up\n")
	fmt.Fprintf(bw, "Period: %s – %s (%s)\n", r.From.Format(csvTime), r.To.Format(csvTime), Zone)
	if r.MarksUntil.IsZero() {
		fmt.Fprintf(bw, "Granskningsmarkeringar till loggens slut / Review marks up to the end of the log\n")
	} else {
		fmt.Fprintf(bw, "Granskningsmarkeringar till / Review marks up to: %s\n", r.MarksUntil.Format(csvTime))
	}
	fmt.Fprintf(bw, "Regler / Rules:\n")
	for _, s := range r.Rules {
		fmt.Fprintf(bw, "  %s\n", s)
	}
	fmt.Fprintf(bw, "Granskade händelser / Events examined: %d\n", r.Examined)
	fmt.Fprintf(bw, "Fynd / Findings: %d, markerade / marked: %d\n", len(r.Findings), reviewed)
	for i := range r.Findings {
		f := &r.Findings[i]
		fmt.Fprintf(bw, "\n%s  %s\n", f.ID, f.Rule)
		who := "användare / user " + printable(f.User)
		if f.User == "" {
			who = "klientadress / client address " + printable(f.ClientAddr)
		}
		fmt.Fprintf(bw, "  %s", who)
		if f.CareUnit != "" {
			fmt.Fprintf(bw, ", vårdenhet / care unit %s", printable(f.CareUnit))
		}
		fmt.Fprintf(bw, "\n  %s – %s\n", f.First.Format(csvTime), f.Last.Format(csvTime))
		fmt.Fprintf(bw, "  %s\n  %s\n", f.DescriptionSV, f.DescriptionEN)
		fmt.Fprintf(bw, "  händelser / events (%d, %d patienter / patients): %s\n", f.EventCount, f.Patients, joinIndexes(f.Events))
		if len(f.Marks) == 0 {
			fmt.Fprintf(bw, "  ej granskad / not reviewed\n")
		}
		for _, m := range f.Marks {
			fmt.Fprintf(bw, "  granskad / reviewed %s av / by %s: %s", m.Time.Format(csvTime), printable(m.Reviewer), m.Outcome)
			if m.SelfReview {
				fmt.Fprintf(bw, " (egen granskning / self-review)")
			}
			if m.Note != "" {
				fmt.Fprintf(bw, " %s", strconv.Quote(m.Note))
			}
			fmt.Fprintln(bw)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("auditreport: writing review text: %w", err)
	}
	return nil
}

// joinIndexes formats log indexes space-separated.
func joinIndexes(idx []int64) string {
	var b []byte
	for i, n := range idx {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return string(b)
}

// printable returns s, or s quoted if it holds a character that is not
// printable (a control character could drive the terminal).
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
