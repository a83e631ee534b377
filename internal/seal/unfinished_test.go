package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestReadUnfinished(t *testing.T) {
	key, err := NewFileKey()
	if err != nil {
		t.Fatal(err)
	}
	const id = "0123456789abcdef0123456789abcdef"
	plain := make([]byte, 3*ChunkSize+1000)
	for i := range plain {
		plain[i] = byte(i * 7)
	}
	var blob bytes.Buffer
	w, err := NewWriter(&blob, key, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	// The writer holds the last 1000 bytes; three full chunks are out.
	unfinished := bytes.Clone(blob.Bytes())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	finished := blob.Bytes()

	for _, tc := range []struct {
		name     string
		blob     []byte
		want     []byte
		finished bool
	}{
		{"unfinished at a chunk boundary", unfinished, plain[:3*ChunkSize], false},
		{"torn inside the third chunk", unfinished[:headerSize+2*sealedChunk+100], plain[:2*ChunkSize], false},
		{"header only", unfinished[:headerSize], nil, false},
		{"finished", finished, plain, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			n, fin, err := ReadUnfinished(&out, bytes.NewReader(tc.blob), key, id)
			if err != nil {
				t.Fatal(err)
			}
			if fin != tc.finished || n != int64(len(tc.want)) || !bytes.Equal(out.Bytes(), tc.want) {
				t.Errorf("got %d bytes finished=%v, want %d finished=%v", n, fin, len(tc.want), tc.finished)
			}
		})
	}

	other, _ := NewFileKey()
	if _, _, err := ReadUnfinished(&bytes.Buffer{}, bytes.NewReader(unfinished), other, id); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong key: %v, want ErrAuth", err)
	}
	if _, _, err := ReadUnfinished(&bytes.Buffer{}, bytes.NewReader(unfinished), key, "ffffffffffffffffffffffffffffffff"); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong id: %v, want ErrAuth", err)
	}
	// A chunk moved to another position does not open there.
	swapped := bytes.Clone(unfinished)
	copy(swapped[headerSize:], unfinished[headerSize+sealedChunk:headerSize+2*sealedChunk])
	copy(swapped[headerSize+sealedChunk:], unfinished[headerSize:headerSize+sealedChunk])
	if _, _, err := ReadUnfinished(&bytes.Buffer{}, bytes.NewReader(swapped), key, id); !errors.Is(err, ErrAuth) {
		t.Errorf("reordered chunks: %v, want ErrAuth", err)
	}
}
