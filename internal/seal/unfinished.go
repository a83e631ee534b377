package seal

import (
	"errors"
	"fmt"
	"io"
)

// ReadUnfinished recovers what a Writer wrote before it stopped without
// Close — a recorder killed mid-call. It reads the blob sequentially from
// src and writes to dst the plaintext of every chunk, in order, that opens
// as the non-final chunk of its position; a chunk that opens as the final
// one ends the blob (it was finished after all, and finished is true). A
// trailing chunk that opens as neither — torn by the crash — and anything
// after it are ignored, so at most the last chunk's data is lost.
//
// This is a recovery path for callvault's own spool files only: it accepts
// a blob cut at a chunk boundary, which NewReader rightly refuses, so the
// archive never serves a stored blob through it. A wrong key, recording ID
// or header is ErrAuth or ErrFormat, as with NewReader.
func ReadUnfinished(dst io.Writer, src io.Reader, key *FileKey, recordingID string) (n int64, finished bool, err error) {
	if !checkRecordingID([]byte(recordingID)) {
		return 0, false, errors.New("seal: read unfinished: recording id is not 32 lowercase hex characters")
	}
	if err := key.check(); err != nil {
		return 0, false, fmt.Errorf("seal: read unfinished: %w", err)
	}
	var header [headerSize]byte
	if _, err := io.ReadFull(src, header[:]); err != nil {
		return 0, false, fmt.Errorf("seal: read unfinished: header: %w", err)
	}
	if string(header[:len(magic)]) != magic {
		return 0, false, fmt.Errorf("seal: read unfinished: bad magic: %w", ErrFormat)
	}
	if string(header[len(magic)+saltSize:]) != recordingID {
		return 0, false, fmt.Errorf("seal: read unfinished: blob belongs to another recording: %w", ErrAuth)
	}
	aead, err := key.deriveAEAD(header[len(magic):len(magic)+saltSize], payloadInfo)
	if err != nil {
		return 0, false, fmt.Errorf("seal: read unfinished: %w", err)
	}
	buf := make([]byte, sealedChunk)
	for i := int64(0); ; i++ {
		m, rerr := io.ReadFull(src, buf)
		if rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF) && !errors.Is(rerr, io.EOF) {
			return n, false, fmt.Errorf("seal: read unfinished: chunk %d: %w", i, rerr)
		}
		if m < tagSize {
			return n, false, nil // nothing, or a torn tail
		}
		ct := buf[:m]
		var pt []byte
		last := false
		if m == sealedChunk {
			nonce := chunkNonce(i, false)
			pt, err = aead.Open(nil, nonce[:], ct, header[:])
		}
		if m < sealedChunk || err != nil {
			nonce := chunkNonce(i, true)
			if pt, err = aead.Open(nil, nonce[:], ct, header[:]); err == nil {
				last = true
			}
		}
		if err != nil {
			if i == 0 && m == sealedChunk {
				// A first full chunk that opens neither way: the key is
				// wrong rather than the tail torn.
				return 0, false, fmt.Errorf("seal: read unfinished: chunk 0: %w", ErrAuth)
			}
			return n, false, nil
		}
		w, werr := dst.Write(pt)
		n += int64(w)
		if werr != nil {
			return n, false, fmt.Errorf("seal: read unfinished: %w", werr)
		}
		if last {
			return n, true, nil
		}
		if m < sealedChunk {
			return n, false, nil
		}
	}
}
