package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"callvault/bench/internal/paired"
	"callvault/bench/internal/synthpop"
	"callvault/internal/catalog"
	"callvault/internal/keys"
	"callvault/internal/sqldb"
)

// refQuery is the reference: ByPatient's index lookup alone, reading the
// IDs only, without ByPatient's other columns and its join of the staff.
const refQuery = `SELECT id FROM recordings WHERE care_provider = ? AND patient_index = ? ORDER BY started_at`

// searcher holds the open database handles the two methods use.
type searcher struct {
	kr  *keys.Keyring
	cat *catalog.DB
	db  *sqldb.DB
}

func openSearcher(ctx context.Context, dsnOrPath string, kr *keys.Keyring) (*searcher, error) {
	cat, err := catalog.Open(ctx, dsnOrPath)
	if err != nil {
		return nil, err
	}
	db, err := sqldb.Open(ctx, dsnOrPath, "searchbench")
	if err != nil {
		cat.Close()
		return nil, err
	}
	return &searcher{kr: kr, cat: cat, db: db}, nil
}

func (s *searcher) Close() {
	s.cat.Close()
	s.db.Close()
}

// method is one way of finding a patient's recordings; it returns the
// number found.
type method struct {
	name string
	run  func(ctx context.Context, s *searcher, index []byte) (int, error)
}

var methods = [2]method{
	{"reference", func(ctx context.Context, s *searcher, index []byte) (int, error) {
		rows, err := s.db.QueryContext(ctx, refQuery, provider, index)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return 0, err
			}
			ids = append(ids, id)
		}
		return len(ids), rows.Err()
	}},
	{"ByPatient", func(ctx context.Context, s *searcher, index []byte) (int, error) {
		recs, err := s.cat.ByPatient(ctx, provider, index, time.Time{}, time.Time{})
		return len(recs), err
	}},
}

// phase is one set of measurements.
type phase struct {
	name string
	desc string
	t    *paired.Timings
}

// patient is a patient to query and the number of recordings they have.
type patient struct {
	pnr  string
	want int
}

// timeOne runs method mi for p, checks the count and returns the time.
func (s *searcher) timeOne(ctx context.Context, mi int, p patient) (time.Duration, error) {
	index := s.kr.BlindIndex("patient", p.pnr)
	t0 := time.Now()
	n, err := methods[mi].run(ctx, s, index)
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", methods[mi].name, err)
	}
	if n != p.want {
		return 0, fmt.Errorf("%s found %d recordings of a patient with %d", methods[mi].name, n, p.want)
	}
	return d, nil
}

// over returns the paired.Func that runs method m on patient k of ps.
func (s *searcher) over(ps []patient) paired.Func {
	return func(ctx context.Context, k, m int) (time.Duration, int, error) {
		d, err := s.timeOne(ctx, m, ps[k])
		return d, ps[k].want, err
	}
}

// sampleBulk returns k distinct bulk patients that have at least one
// recording, chosen at random with rng, none of them in avoid.
func sampleBulk(pop *synthpop.Population, rng *rand.Rand, k int, avoid map[int]bool) []patient {
	pnrs, counts := pop.Sample(rng, k, avoid)
	out := make([]patient, len(pnrs))
	for i := range pnrs {
		out[i] = patient{pnr: pnrs[i], want: counts[i]}
	}
	return out
}
