package seal

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Writer encrypts one recording into a blob, streaming: it holds at most one
// chunk of plaintext, and writes each sealed chunk to its destination as soon
// as it knows the chunk is not the last. A Writer is not safe for concurrent
// use.
type Writer struct {
	dst    io.Writer
	aead   cipher.AEAD
	header [headerSize]byte
	buf    []byte // pending plaintext, at most ChunkSize bytes; cap ChunkSize+tagSize
	next   int64  // index of the chunk buf will become
	err    error  // sticky; errClosed after a successful Close
}

var errClosed = errors.New("seal: writer is closed")

// NewWriter starts a blob for recordingID, which must be 32 lowercase hex
// characters, sealed under key. It writes the header to dst at once. The blob
// is complete, and can be opened, only after Close returns nil.
func NewWriter(dst io.Writer, key *FileKey, recordingID string) (*Writer, error) {
	var salt [saltSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, fmt.Errorf("seal: new writer: %w", err)
	}
	return newWriter(dst, key, recordingID, salt)
}

// newWriter is NewWriter with the salt given, for deterministic test vectors.
func newWriter(dst io.Writer, key *FileKey, recordingID string, salt [saltSize]byte) (*Writer, error) {
	if !checkRecordingID([]byte(recordingID)) {
		return nil, errors.New("seal: new writer: recording id is not 32 lowercase hex characters")
	}
	aead, err := key.deriveAEAD(salt[:], payloadInfo)
	if err != nil {
		return nil, fmt.Errorf("seal: new writer: %w", err)
	}
	w := &Writer{dst: dst, aead: aead, buf: make([]byte, 0, sealedChunk)}
	copy(w.header[:], magic)
	copy(w.header[len(magic):], salt[:])
	copy(w.header[len(magic)+saltSize:], recordingID)
	if _, err := dst.Write(w.header[:]); err != nil {
		return nil, fmt.Errorf("seal: write header: %w", err)
	}
	return w, nil
}

// Write encrypts p. A full chunk is sealed and written to the destination
// only once more data arrives, because the last chunk is sealed differently;
// so at most ChunkSize bytes are ever held. After an error every later call
// returns the same error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	total := len(p)
	for len(p) > 0 {
		if len(w.buf) == ChunkSize {
			if err := w.flush(false); err != nil {
				w.err = err
				return total - len(p), err
			}
		}
		n := copy(w.buf[len(w.buf):ChunkSize], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
	}
	return total, nil
}

// Close seals and writes the final chunk, which completes the blob. It does
// not close the destination. Write and Close return an error after Close.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.flush(true); err != nil {
		w.err = err
		return err
	}
	w.err = errClosed
	return nil
}

// flush seals buf in place as chunk w.next and writes it out.
func (w *Writer) flush(last bool) error {
	if w.next >= maxChunks {
		return errors.New("seal: write: blob would exceed the maximum size")
	}
	nonce := chunkNonce(w.next, last)
	sealed := w.aead.Seal(w.buf[:0], nonce[:], w.buf, w.header[:])
	w.next++
	w.buf = w.buf[:0]
	if _, err := w.dst.Write(sealed); err != nil {
		return fmt.Errorf("seal: write chunk: %w", err)
	}
	return nil
}
