package seal

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary blobs to NewReader and ReadAt. They must never
// panic, must fail only with ErrFormat or ErrAuth, and whatever they accept
// in full must be exactly the blob the writer produces for that plaintext and
// salt: no plaintext comes out of a blob that was not sealed under the key.
// The multi-chunk seeds are large; fuzz with -fuzzminimizetime=1s to keep
// the engine from stalling on minimizing them.
func FuzzReader(f *testing.F) {
	key := testKey()
	for _, size := range []int{0, 1, 100, ChunkSize + 1} {
		blob := sealBytes(f, key, testID, pattern(size), [16]byte{byte(size)})
		f.Add(blob, int64(0))
		f.Add(blob, int64(size/2))
		f.Add(blob[:len(blob)-1], int64(0))
		f.Add(append(bytes.Clone(blob), 0), int64(1))
	}
	f.Add([]byte("CVSEAL1\n"), int64(0))
	f.Add(make([]byte, 72), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, off int64) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)), key, testID)
		if err != nil {
			if errors.Is(err, ErrFormat) == errors.Is(err, ErrAuth) {
				t.Fatalf("open failed with %v, want exactly one of ErrFormat and ErrAuth", err)
			}
			return
		}
		if r.Size() > int64(len(data)) {
			t.Fatalf("plaintext size %d > blob size %d", r.Size(), len(data))
		}
		pt := make([]byte, r.Size())
		n, err := r.ReadAt(pt, 0)
		if err != nil {
			if !errors.Is(err, ErrAuth) || n%ChunkSize != 0 {
				t.Fatalf("read failed after %d bytes with %v", n, err)
			}
			return
		}
		if want := sealBytes(t, key, testID, pt, [16]byte(data[8:24])); !bytes.Equal(want, data) {
			t.Fatal("accepted a blob that the writer did not produce")
		}
		p := make([]byte, 1000)
		n, err = r.ReadAt(p, off)
		switch {
		case off < 0:
			if err == nil {
				t.Fatal("negative offset accepted")
			}
		case off >= r.Size():
			if n != 0 || err != io.EOF {
				t.Fatalf("ReadAt past the end = %d, %v", n, err)
			}
		case !bytes.Equal(p[:n], pt[off:off+int64(n)]) || int64(n) != min(1000, r.Size()-off):
			t.Fatalf("ReadAt(%d) = %d bytes, %v, inconsistent with the full read", off, n, err)
		}
	})
}
