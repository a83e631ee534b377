package seal

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Reader decrypts a blob with random access. NewReader authenticates the final
// chunk, so Size is trustworthy; ReadAt reads and authenticates only the
// chunks its range covers, and never returns bytes of a chunk that failed
// authentication. Its methods are safe for concurrent use.
type Reader struct {
	src      io.ReaderAt
	aead     cipher.AEAD
	header   [headerSize]byte
	blobSize int64
	size     int64 // plaintext size
	chunks   int64

	mu       sync.Mutex
	cached   int64              // index of the chunk in cache; guarded by mu
	cache    *[sealedChunk]byte // plaintext of chunk cached in cache[:cacheLen]; guarded by mu
	cacheLen int                // guarded by mu
	spare    *[sealedChunk]byte // a free buffer, or nil; guarded by mu
}

var _ io.ReaderAt = (*Reader)(nil)

// NewReader opens the blob of blobSize bytes in src, sealed under key for
// recordingID. It reads the header and the final chunk, and fails with an
// error wrapping ErrFormat if the blob is not a possible callvault v1 blob, or
// ErrAuth if it is not authentic for key and recordingID (see docs/format.md
// for the checks and their order). If src holds fewer than blobSize bytes the
// error wraps io.ErrUnexpectedEOF.
func NewReader(src io.ReaderAt, blobSize int64, key *FileKey, recordingID string) (*Reader, error) {
	if !checkRecordingID([]byte(recordingID)) {
		return nil, errors.New("seal: open: recording id is not 32 lowercase hex characters")
	}
	if err := key.check(); err != nil {
		return nil, fmt.Errorf("seal: open: %w", err)
	}
	size, chunks, err := plaintextSize(blobSize)
	if err != nil {
		return nil, fmt.Errorf("seal: open: impossible blob size %d: %w", blobSize, err)
	}
	r := &Reader{src: src, blobSize: blobSize, size: size, chunks: chunks, cached: -1}
	if err := readFullAt(src, r.header[:], 0); err != nil {
		return nil, fmt.Errorf("seal: open: read header: %w", err)
	}
	if string(r.header[:len(magic)]) != magic {
		return nil, fmt.Errorf("seal: open: bad magic: %w", ErrFormat)
	}
	id := r.header[len(magic)+saltSize:]
	if !checkRecordingID(id) {
		return nil, fmt.Errorf("seal: open: malformed recording id in header: %w", ErrFormat)
	}
	if string(id) != recordingID {
		return nil, fmt.Errorf("seal: open: blob belongs to another recording: %w", ErrAuth)
	}
	if r.aead, err = key.deriveAEAD(r.header[len(magic):len(magic)+saltSize], payloadInfo); err != nil {
		return nil, fmt.Errorf("seal: open: %w", err)
	}
	buf := new([sealedChunk]byte)
	pt, err := r.openChunk(buf, chunks-1)
	if err != nil {
		return nil, fmt.Errorf("seal: open: final chunk: %w", err)
	}
	r.cached, r.cache, r.cacheLen = chunks-1, buf, len(pt)
	return r, nil
}

// Size returns the plaintext size, authenticated by NewReader.
func (r *Reader) Size() int64 { return r.size }

// ReadAt reads len(p) plaintext bytes starting at off, following the
// io.ReaderAt contract: it returns io.EOF when fewer than len(p) bytes remain,
// including at or after Size. A chunk that fails authentication stops the
// read with an error wrapping ErrAuth; the n bytes already copied to p come
// from earlier chunks and are authentic.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("seal: read: negative offset")
	}
	n := 0
	for n < len(p) && off < r.size {
		c, err := r.readChunk(p[n:], off/ChunkSize, int(off%ChunkSize))
		if err != nil {
			return n, fmt.Errorf("seal: read: %w", err)
		}
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readChunk copies plaintext of chunk i, from byte within on, into dst. The
// cached chunk is copied under mu; any other chunk is read and opened in a
// buffer this call owns, outside the lock, and then becomes the cache.
func (r *Reader) readChunk(dst []byte, i int64, within int) (int, error) {
	r.mu.Lock()
	if r.cached == i {
		n := copy(dst, r.cache[within:r.cacheLen])
		r.mu.Unlock()
		return n, nil
	}
	buf := r.spare
	r.spare = nil
	r.mu.Unlock()
	if buf == nil {
		buf = new([sealedChunk]byte)
	}

	pt, err := r.openChunk(buf, i)
	n := 0
	if err == nil {
		n = copy(dst, pt[within:])
	}

	r.mu.Lock()
	if err == nil {
		buf, r.cache = r.cache, buf
		r.cached, r.cacheLen = i, len(pt)
	}
	if r.spare == nil {
		r.spare = buf
	}
	r.mu.Unlock()
	return n, err
}

// openChunk reads chunk i into buf and opens it in place.
func (r *Reader) openChunk(buf *[sealedChunk]byte, i int64) ([]byte, error) {
	off := int64(headerSize) + i*sealedChunk
	ct := buf[:min(sealedChunk, r.blobSize-off)]
	if err := readFullAt(r.src, ct, off); err != nil {
		return nil, fmt.Errorf("chunk %d: %w", i, err)
	}
	nonce := chunkNonce(i, i == r.chunks-1)
	pt, err := r.aead.Open(ct[:0], nonce[:], ct, r.header[:])
	if err != nil {
		return nil, fmt.Errorf("chunk %d: %w", i, ErrAuth)
	}
	return pt, nil
}

// readFullAt fills p from src at off. A source that ends early is reported as
// io.ErrUnexpectedEOF, since the caller asked only for bytes the blob size
// promised.
func readFullAt(src io.ReaderAt, p []byte, off int64) error {
	n, err := src.ReadAt(p, off)
	switch {
	case n == len(p):
		return nil // io.ReaderAt may return io.EOF with the last bytes
	case err == nil || errors.Is(err, io.EOF):
		return io.ErrUnexpectedEOF
	}
	return err
}
