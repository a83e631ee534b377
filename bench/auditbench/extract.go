package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"callvault/internal/audit"
	"callvault/internal/auditreport"
)

// extract makes the full patient log extract (auditreport.Extract over the
// log, staff shown, no name lookup) and returns its number of entries.
func extract(ctx context.Context, l *audit.Log, patient string) (int, error) {
	x, err := auditreport.Extract(ctx, l, patient, auditreport.ExtractOptions{
		ShowStaff: true, Now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		return 0, err
	}
	return len(x.Entries), nil
}

// patientQuery is ForPatient's query (internal/audit/log.go), run alone as
// the reference.
const patientQuery = `SELECT entry FROM audit_log WHERE patient_index = ? ORDER BY idx`

// method is one way of reading a patient's events.
type method struct {
	name string
	run  func(ctx context.Context, patient string) (int, error)
}

// readMethods returns the reference (the indexed query alone, rows read into
// memory, nothing decoded), Log.ForPatient (decoding and decrypting every
// event), and auditreport.Extract.
func (b *bench) readMethods(l *audit.Log, raw *sql.DB) []method {
	ms := []method{
		{"raw indexed query", func(ctx context.Context, patient string) (int, error) {
			rows, err := raw.QueryContext(ctx, patientQuery, b.kr.BlindIndex("patient", patient))
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var e []byte
				if err := rows.Scan(&e); err != nil {
					return 0, err
				}
				n++
			}
			return n, rows.Err()
		}},
		{"Log.ForPatient", func(ctx context.Context, patient string) (int, error) {
			n := 0
			err := l.ForPatient(ctx, patient, func(e *audit.Event) error {
				if e.Patient != patient {
					return fmt.Errorf("event %d is about another patient", e.Index)
				}
				n++
				return nil
			})
			return n, err
		}},
	}
	ms = append(ms, method{"auditreport.Extract", func(ctx context.Context, patient string) (int, error) {
		return extract(ctx, l, patient)
	}})
	return ms
}

// latencies are one patient class's timings, per method.
type latencies struct {
	class   string
	events  []int             // events per patient (the raw query's row count)
	entries int               // entries in one extract (auditreport), if measured
	times   [][]time.Duration // [method][sample]
}

// measureExtracts times every method on the tracked patients (reps times
// each, the methods' order rotating) and on bulkN distinct bulk patients
// (once each; auditreport.Extract refuses their numbers, which are not
// personnummer, so only the query and ForPatient).
func (b *bench) measureExtracts(ctx context.Context, l *audit.Log, raw *sql.DB, reps, bulkN int) ([]method, []latencies, error) {
	ms := b.readMethods(l, raw)
	var out []latencies
	for _, t := range b.pop.tracked {
		lt := latencies{class: t.pnr, times: make([][]time.Duration, len(ms))}
		for r := range reps {
			for j := range ms {
				mi := (r + j) % len(ms)
				t0 := time.Now()
				n, err := ms[mi].run(ctx, t.pnr)
				d := time.Since(t0)
				if err != nil {
					return nil, nil, fmt.Errorf("%s of %s: %w", ms[mi].name, t.class, err)
				}
				lt.times[mi] = append(lt.times[mi], d)
				switch {
				case mi == 0 && r == 0:
					lt.events = append(lt.events, n)
					t.written = int64(n)
				case mi == 2:
					lt.entries = n
				case mi == 1 && int64(n) != t.written:
					return nil, nil, fmt.Errorf("%s: ForPatient gave %d events, the query %d rows", t.class, n, t.written)
				}
			}
		}
		out = append(out, lt)
	}
	if bulkN > 0 {
		bm := ms[:2]
		lt := latencies{class: fmt.Sprintf("%d distinct bulk patients, each once", bulkN), times: make([][]time.Duration, len(bm))}
		for i := range bulkN {
			id := int64(splitmix64(b.pop.seed^0xe47^uint64(i)) % uint64(b.pop.bulk))
			p := bulkPnr(id)
			var counts [2]int
			for j := range bm {
				mi := (i + j) % len(bm)
				t0 := time.Now()
				n, err := bm[mi].run(ctx, p)
				d := time.Since(t0)
				if err != nil {
					return nil, nil, fmt.Errorf("%s of a bulk patient: %w", bm[mi].name, err)
				}
				lt.times[mi] = append(lt.times[mi], d)
				counts[mi] = n
			}
			if counts[0] != counts[1] {
				return nil, nil, fmt.Errorf("bulk patient: ForPatient gave %d events, the query %d rows", counts[1], counts[0])
			}
			lt.events = append(lt.events, counts[0])
		}
		out = append(out, lt)
	}
	return ms, out, nil
}

// queryPlan returns SQLite's plan for the patient query.
func queryPlan(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+patientQuery, []byte{1})
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return "", err
		}
		steps = append(steps, detail)
	}
	return strings.Join(steps, "; "), rows.Err()
}
