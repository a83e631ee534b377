package cvclient

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"
)

// Metadata makes upload metadata from the dev setup's
// sample-metadata.json: the sample's care unit, synthetic patient and
// staff, with a new call_id per upload and fixed start and end times.
// It is immutable after Load and safe for concurrent use.
type Metadata struct {
	sample  map[string]any
	started time.Time
	seconds int
}

// LoadMetadata reads devDir/sample-metadata.json. Every call made from it
// started two hours before now (to the second) and lasted seconds.
func LoadMetadata(devDir string, seconds int) (*Metadata, error) {
	raw, err := os.ReadFile(filepath.Join(devDir, "sample-metadata.json"))
	if err != nil {
		return nil, err
	}
	m := &Metadata{started: time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second), seconds: seconds}
	if err := json.Unmarshal(raw, &m.sample); err != nil {
		return nil, fmt.Errorf("sample metadata: %w", err)
	}
	return m, nil
}

// EndedAt is the end of every call, from which callvault counts the
// retention period.
func (m *Metadata) EndedAt() time.Time {
	return m.started.Add(time.Duration(m.seconds) * time.Second)
}

// For returns the metadata JSON of the call callID.
func (m *Metadata) For(callID string) ([]byte, error) {
	md := maps.Clone(m.sample)
	md["call_id"] = callID
	md["started_at"] = m.started.Format(time.RFC3339)
	md["ended_at"] = m.EndedAt().Format(time.RFC3339)
	return json.Marshal(md)
}
