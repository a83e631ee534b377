package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"io"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// The seal benchmarks process a 3.6 MB call; the raw AEAD benchmarks seal one
// 64 KiB chunk per op. Compare MB/s: docs/benchmarks.md reports the ratio.

func BenchmarkSealEncrypt(b *testing.B) {
	key, _ := NewFileKey()
	pt := pattern(callSize)
	b.SetBytes(callSize)
	for b.Loop() {
		w, err := NewWriter(io.Discard, key, testID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(pt); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealDecryptReaderAt opens the blob and reads it with sequential
// 64 KiB ReadAts, as an HTTP range response would.
func BenchmarkSealDecryptReaderAt(b *testing.B) {
	key, _ := NewFileKey()
	blob := sealBytes(b, key, testID, pattern(callSize), [16]byte{})
	src := &byteReaderAt{blob}
	p := make([]byte, ChunkSize)
	b.SetBytes(callSize)
	for b.Loop() {
		r, err := NewReader(src, int64(len(blob)), key, testID)
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < r.Size(); off += ChunkSize {
			if _, err := r.ReadAt(p, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkRawAESGCM(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCM(block)
	benchmarkAEAD(b, aead)
}

func BenchmarkRawChaCha20Poly1305(b *testing.B) {
	aead, _ := chacha20poly1305.New(make([]byte, 32))
	benchmarkAEAD(b, aead)
}

func benchmarkAEAD(b *testing.B, aead cipher.AEAD) {
	pt := pattern(ChunkSize)
	out := make([]byte, 0, ChunkSize+aead.Overhead())
	nonce := make([]byte, aead.NonceSize())
	b.SetBytes(ChunkSize)
	for b.Loop() {
		aead.Seal(out, nonce, pt, nil)
	}
}

// byteReaderAt is a plain in-memory io.ReaderAt, like a file in page cache.
type byteReaderAt struct{ b []byte }

func (r *byteReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := copy(p, r.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
