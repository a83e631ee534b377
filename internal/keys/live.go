package keys

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
)

// Live is a keyring file that a long-running process keeps using while an
// operator rotates, rewraps and destroys epochs with the CLI: it rereads
// the file when it changes (checked at most once per reloadEvery, and at
// once when asked for an epoch it does not hold). A file that cannot be
// read or unlocked is ignored and the last good keyring stays in use.
//
// Live has the read methods the archive needs; it is safe for concurrent use.
type Live struct {
	path string
	kek  []age.Identity

	cur atomic.Pointer[Keyring]

	mu      sync.Mutex // serializes reloads
	mod     time.Time
	size    int64
	checked time.Time
}

// reloadEvery bounds how often Current looks at the file.
const reloadEvery = time.Second

// NewLive returns a Live starting with k, the keyring read from path with
// the identities kek.
func NewLive(path string, k *Keyring, kek []age.Identity) *Live {
	l := &Live{path: path, kek: kek}
	l.cur.Store(k)
	if fi, err := os.Stat(path); err == nil {
		l.mod, l.size = fi.ModTime(), fi.Size()
	}
	l.checked = time.Now()
	return l
}

// Keyring returns the keyring in use, after looking for a change of the
// file if the last look is older than a second.
func (l *Live) Keyring() *Keyring {
	l.reload(false)
	return l.cur.Load()
}

// Current returns the epoch new recordings are wrapped to.
func (l *Live) Current() Epoch { return l.Keyring().Current() }

// Identity returns epoch id's identity, rereading the file once if the
// keyring in use does not hold it (an epoch created since).
func (l *Live) Identity(id int) (age.Identity, error) {
	ident, err := l.cur.Load().Identity(id)
	if errors.Is(err, ErrNoEpoch) {
		l.reload(true)
		return l.cur.Load().Identity(id)
	}
	return ident, err
}

// BlindIndex is Keyring.BlindIndex; the index key never changes.
func (l *Live) BlindIndex(kind, value string) []byte { return l.cur.Load().BlindIndex(kind, value) }

// reload rereads the file if it changed (force: whatever the time of the
// last look).
func (l *Live) reload(force bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !force && time.Since(l.checked) < reloadEvery {
		return
	}
	l.checked = time.Now()
	fi, err := os.Stat(l.path)
	if err != nil || (fi.ModTime().Equal(l.mod) && fi.Size() == l.size) {
		return
	}
	data, err := os.ReadFile(l.path)
	if err != nil {
		return
	}
	k, err := Unmarshal(data, l.kek...)
	if err != nil {
		return
	}
	l.cur.Store(k)
	l.mod, l.size = fi.ModTime(), fi.Size()
}
