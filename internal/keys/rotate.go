package keys

import (
	"errors"
	"fmt"
	"time"

	"filippo.io/age"
)

// ErrCurrentEpoch is returned by DestroyEpoch for the current epoch, which
// new recordings are wrapped to.
var ErrCurrentEpoch = errors.New("keys: the current epoch cannot be destroyed")

// Rotate adds a new archive key epoch (the highest ID so far plus one) and
// makes it current: new recordings are wrapped to it. Older epochs stay, so
// recordings wrapped to them still open until they are rewrapped.
func (k *Keyring) Rotate(now time.Time) (Epoch, error) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		return Epoch{}, fmt.Errorf("keys: rotate: %w", err)
	}
	e := Epoch{ID: k.Current().ID + 1, Created: now.UTC(), Recipient: id.Recipient(), identity: id}
	k.epochs = append(k.epochs, e)
	return e, nil
}

// Epochs returns the epochs the keyring holds, oldest first; the last is
// current.
func (k *Keyring) Epochs() []Epoch { return append([]Epoch(nil), k.epochs...) }

// DestroyEpoch removes epoch id's private key from the keyring. The caller
// must first make sure nothing is wrapped to it any more (the catalog, and
// anything else that holds wrapped keys); afterwards nothing wrapped to it
// can be opened with this keyring. It refuses the current epoch and
// returns ErrNoEpoch for one the keyring does not hold.
func (k *Keyring) DestroyEpoch(id int) error {
	if id == k.Current().ID {
		return ErrCurrentEpoch
	}
	for i, e := range k.epochs {
		if e.ID == id {
			k.epochs = append(k.epochs[:i:i], k.epochs[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%w: %d", ErrNoEpoch, id)
}
