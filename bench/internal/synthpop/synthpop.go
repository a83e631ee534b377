// Package synthpop assigns synthetic patients to the rows of a benchmark
// (recordings, audit events): three measured test patients with about 10,
// 100 and 1,000 rows, a tenth of the rows without a patient, and the rest
// spread by a hash over bulk patients, so that a patient's rows lie
// scattered over the table. No personal data: the test patients are
// Skatteverket's published test personnummer, the bulk ones "99" + 10
// digits, which is not a personnummer.
package synthpop

import (
	"fmt"
	"math/rand/v2"
)

// Tracked is a measured test patient: a Skatteverket test personnummer
// that owns every Stride-th row from Offset on.
type Tracked struct {
	PNR    string
	Want   int // rows aimed for
	Stride int
	Offset int
	Count  int // rows it owns
}

// Population assigns each of N rows a patient: one of the Tracked test
// patients, none (one row in ten), or one of Bulk bulk patients, chosen
// by a hash of the row number.
type Population struct {
	N       int
	Bulk    int
	Tracked []*Tracked
	Counts  []uint16 // Counts[b]: rows of bulk patient b
	seed    uint64
}

// NoPatient is the bulk number Of returns for a row without a patient.
const NoPatient = -1

// New assigns n rows to bulk bulk patients and the test patients, by a
// hash seeded with seed, and counts every patient's rows.
func New(n, bulk int, seed uint64) *Population {
	p := &Population{N: n, Bulk: bulk, Counts: make([]uint16, bulk), seed: seed}
	for _, t := range []struct {
		pnr  string
		want int
		off  int
	}{
		{"201701102384", 10, 345_678},
		{"198001019804", 100, 56_789},
		{"191212121212", 1000, 1_234},
	} {
		stride := max(1, n/t.want)
		p.Tracked = append(p.Tracked, &Tracked{PNR: t.pnr, Want: t.want, Stride: stride, Offset: t.off % stride})
	}
	for i := range n {
		if t, b := p.Of(i); t != nil {
			t.Count++
		} else if b != NoPatient {
			p.Counts[b]++
		}
	}
	return p
}

// Of returns row i's patient: a tracked one, else bulk patient b (or
// NoPatient).
func (p *Population) Of(i int) (t *Tracked, b int) {
	for _, t := range p.Tracked {
		if i%t.Stride == t.Offset {
			return t, 0
		}
	}
	h := Splitmix64(uint64(i) ^ p.seed)
	if h%10 == 0 {
		return nil, NoPatient
	}
	return nil, int((h / 10) % uint64(p.Bulk))
}

// PNR returns row i's patient number, or "" for none.
func (p *Population) PNR(i int) string {
	t, b := p.Of(i)
	switch {
	case t != nil:
		return t.PNR
	case b == NoPatient:
		return ""
	}
	return BulkPNR(b)
}

// Without returns the number of rows without a patient.
func (p *Population) Without() int {
	n := p.N
	for _, c := range p.Counts {
		n -= int(c)
	}
	for _, t := range p.Tracked {
		n -= t.Count
	}
	return n
}

// Sample returns k distinct bulk patients with at least one row, chosen
// with rng, none of them in avoid (which it extends), as numbers and row
// counts.
func (p *Population) Sample(rng *rand.Rand, k int, avoid map[int]bool) (pnrs []string, counts []int) {
	for len(pnrs) < k {
		b := rng.IntN(p.Bulk)
		if p.Counts[b] == 0 || avoid[b] {
			continue
		}
		avoid[b] = true
		pnrs = append(pnrs, BulkPNR(b))
		counts = append(counts, int(p.Counts[b]))
	}
	return pnrs, counts
}

// BulkPNR is bulk patient b's number: "99" + 10 digits, which is not a
// personnummer (a twelve-digit one starts with its century, 18, 19 or 20).
func BulkPNR(b int) string { return fmt.Sprintf("99%010d", b) }

// Splitmix64 is a small, good mixing function.
func Splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
