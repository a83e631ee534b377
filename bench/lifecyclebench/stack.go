package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"callvault/internal/access"
	"callvault/internal/archive"
	"callvault/internal/audio"
	"callvault/internal/audit"
	"callvault/internal/catalog"
	"callvault/internal/keys"
	"callvault/internal/site"
)

// Synthetic identities: HSA-IDs of the test organisation SE9999990001, the
// capture system and nurse of the dev setup (cmd/callvault/dev.go).
const (
	provider = "SE9999990001-VG01"
	unit     = "SE9999990001-VE0A"
	nurseID  = "SE9999990001-N0A1"
	// testPatient is Skatteverket's published test personnummer.
	testPatient = "191212121212"
	// fictionNumber is in the PTS number range reserved for fiction.
	fictionNumber = "+46701740605"
)

var (
	capture = archive.Caller{
		Principal:  &access.Principal{HSAID: "SE9999990001-CAP1", CareProvider: provider, CareUnit: unit, Roles: []access.Role{access.RoleCapture}},
		ClientAddr: "bench", RequestID: "lifecyclebench",
	}
	// operator is the caller of Rewrap, as cmd/callvault's localOperator
	// makes it for the local `keys rewrap` subcommand.
	operator = archive.Caller{
		Principal:  &access.Principal{HSAID: "local-uid-" + strconv.Itoa(os.Getuid()), Roles: []access.Role{access.RoleAdmin}},
		ClientAddr: "local", RequestID: "lifecyclebench",
	}
)

// stack is an archive.Service wired as cmd/callvault's openStack wires it:
// a catalog, the audit log in the catalog's database file, a directory,
// and two filesystem sites behind a replicator. Keys is the keyring itself
// (openStack passes a keys.Live that follows the keyring file; Rewrap and
// Scrub use the same three methods of either).
type stack struct {
	dir     string
	catPath string
	kr      *keys.Keyring
	cat     *catalog.DB
	tcat    *timedCatalog
	dirDB   *access.Directory
	log     *audit.Log
	sites   []*site.FS
	rep     *site.Replicator
	svc     *archive.Service
}

// openStack opens (creating if needed) the stack whose files live in dir.
func openStack(ctx context.Context, dir string, kr *keys.Keyring) (_ *stack, err error) {
	st := &stack{dir: dir, catPath: filepath.Join(dir, "catalog.db"), kr: kr}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	if st.cat, err = catalog.Open(ctx, st.catPath); err != nil {
		return nil, err
	}
	st.tcat = &timedCatalog{DB: st.cat}
	if st.dirDB, err = access.OpenDirectory(ctx, filepath.Join(dir, "directory.db")); err != nil {
		return nil, err
	}
	if known, err := st.dirDB.UnitKnown(ctx, provider, unit); err != nil {
		return nil, err
	} else if !known {
		if err := st.dirDB.AddUnit(ctx, access.Unit{HSAID: unit, CareProvider: provider, Name: "Bench unit (synthetic)"}); err != nil {
			return nil, err
		}
	}
	if st.log, err = audit.Open(ctx, st.catPath, kr); err != nil {
		return nil, err
	}
	var stores []site.Store
	for _, name := range []string{"site-a", "site-b"} {
		f, err := site.NewFS(ctx, site.FSConfig{Name: name, Dir: filepath.Join(dir, name), Jurisdiction: "SE"})
		if err != nil {
			return nil, err
		}
		st.sites = append(st.sites, f)
		stores = append(stores, f)
	}
	if st.rep, err = site.NewReplicator(stores[0], stores[1], nil); err != nil {
		return nil, err
	}
	st.svc, err = archive.New(archive.Config{Catalog: st.tcat, Sites: st.rep, Keys: kr, Directory: st.dirDB, Audit: st.log})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Close closes what was opened.
func (st *stack) Close() {
	if st.log != nil {
		st.log.Close()
	}
	if st.dirDB != nil {
		st.dirDB.Close()
	}
	if st.cat != nil {
		st.cat.Close()
	}
}

// timedCatalog is the catalog with the time spent in the calls Rewrap makes
// added up, to split a rewrap's wall time into its serial phases. Per page
// Rewrap runs: Stale (read the page), rewrapPage (unwrap, wrap, Get the
// row, write the new recovery record; on the workers), UpdateWrapped (one
// transaction), the old recovery records' deletes (one row after another),
// then Progress. So the time from Stale's end to UpdateWrapped's start is
// rewrapPage, and from UpdateWrapped's end to the Progress call the
// deletes. It adds a few clock readings per page of 500 rows, and two per
// Get.
type timedCatalog struct {
	*catalog.DB
	mu                    sync.Mutex
	counts, stale, update time.Duration
	page, deletes         time.Duration
	get                   time.Duration // summed over the workers
	gets, pages           int
	staleEnd, updateEnd   time.Time
}

func (t *timedCatalog) reset() {
	t.mu.Lock()
	t.counts, t.stale, t.update, t.page, t.deletes, t.get, t.gets, t.pages = 0, 0, 0, 0, 0, 0, 0, 0
	t.staleEnd, t.updateEnd = time.Time{}, time.Time{}
	t.mu.Unlock()
}

func (t *timedCatalog) EpochCounts(ctx context.Context) (map[int]int, error) {
	t0 := time.Now()
	defer func() { t.mu.Lock(); t.counts += time.Since(t0); t.mu.Unlock() }()
	return t.DB.EpochCounts(ctx)
}

func (t *timedCatalog) Stale(ctx context.Context, current int, after string, limit int) ([]catalog.WrappedRef, error) {
	t0 := time.Now()
	defer func() { t.mu.Lock(); t.staleEnd = time.Now(); t.stale += t.staleEnd.Sub(t0); t.mu.Unlock() }()
	return t.DB.Stale(ctx, current, after, limit)
}

func (t *timedCatalog) Get(ctx context.Context, id string) (*catalog.Recording, error) {
	t0 := time.Now()
	defer func() { t.mu.Lock(); t.get += time.Since(t0); t.gets++; t.mu.Unlock() }()
	return t.DB.Get(ctx, id)
}

func (t *timedCatalog) UpdateWrapped(ctx context.Context, ws []catalog.Rewrapped) (int, error) {
	t0 := time.Now()
	t.mu.Lock()
	if !t.staleEnd.IsZero() {
		t.page += t0.Sub(t.staleEnd)
	}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.updateEnd = time.Now()
		t.update += t.updateEnd.Sub(t0)
		t.pages++
		t.mu.Unlock()
	}()
	return t.DB.UpdateWrapped(ctx, ws)
}

// progress is called from Rewrap's Progress callback: the deletes of the
// page's old recovery records have just ended.
func (t *timedCatalog) progress() {
	t.mu.Lock()
	if !t.updateEnd.IsZero() {
		t.deletes += time.Since(t.updateEnd)
	}
	t.mu.Unlock()
}

// sampleRate is the telephony rate of the synthetic calls.
const sampleRate = 8000

// callWAV returns synthetic call i of seconds: a 2-channel G.711 μ-law WAV
// at 8 kHz, channel 0 a tone of 300+7i Hz and channel 1 one of 500+11i Hz,
// each with seeded noise, so that no two files — and no two 4 KiB windows —
// are alike (the generator of bench/archivebench/calls.go, in memory).
func callWAV(i, seconds int) ([]byte, error) {
	frames := sampleRate * seconds
	r := rand.New(rand.NewPCG(uint64(i), 0x63616c6c7661756c))
	ch := [][]int16{
		toneWithNoise(300+7*float64(i), frames, r),
		toneWithNoise(500+11*float64(i), frames, r),
	}
	var buf bytes.Buffer
	buf.Grow(2*frames + 64)
	if err := audio.WriteWAV(&buf, audio.MuLaw, sampleRate, ch); err != nil {
		return nil, fmt.Errorf("synthetic call %d: %w", i, err)
	}
	return buf.Bytes(), nil
}

// toneWithNoise returns n samples of a freq Hz sine of amplitude 6000 plus
// uniform noise of ±1500, by a rotation recurrence.
func toneWithNoise(freq float64, n int, r *rand.Rand) []int16 {
	s := make([]int16, n)
	step := 2 * math.Pi * freq / sampleRate
	c, sn := math.Cos(step), math.Sin(step)
	x, y := 1.0, 0.0
	for i := range s {
		s[i] = int16(6000*y + float64(r.IntN(3001)-1500))
		x, y = x*c-y*sn, x*sn+y*c
	}
	return s
}
