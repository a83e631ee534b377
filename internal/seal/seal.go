// Package seal implements callvault's encrypted recording container, specified
// in docs/format.md: a per-recording random file key, blobs of AES-256-GCM
// chunks with streaming encryption and seekable authenticated decryption, the
// file key wrapped to an age recipient, and fields of personal data sealed
// under the same file key so that destroying it shreds them all.
//
// There are no options: the algorithms, chunk size and labels are fixed by the
// format version.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
)

// ChunkSize is the number of plaintext bytes in every chunk of a blob but the
// last.
const ChunkSize = 64 << 10

// Constants of format version 1, quoted from docs/format.md.
const (
	magic          = "CVSEAL1\n"
	saltSize       = 16
	idSize         = 32
	headerSize     = 8 + saltSize + idSize // 56; 8 = len(magic)
	tagSize        = 16
	sealedChunk    = ChunkSize + tagSize // 65552
	nonceSize      = 12
	lastChunkFlag  = 0x01
	fileKeySize    = 32
	payloadInfo    = "callvault/seal/v1 payload"
	fieldInfo      = "callvault/seal/v1 field "
	fieldNonceSize = 12
)

// maxChunks keeps every blob's size representable as an int64, so that a
// reader can address it. The 88-bit nonce counter itself never comes close.
const maxChunks = (math.MaxInt64 - headerSize) / sealedChunk

// Errors a caller can branch on with errors.Is. Neither ever comes with
// plaintext, and both are permanent for the input that caused them.
var (
	// ErrFormat is returned when the input is not a callvault v1 blob, sealed
	// field or wrapped key: bad magic, malformed header, or a size that no
	// writer produces.
	ErrFormat = errors.New("not a valid callvault sealed object")

	// ErrAuth is returned when authentication fails: the input was tampered
	// with, truncated, extended or reordered, or the key or recording ID is
	// not the one it was sealed for.
	ErrAuth = errors.New("authentication failed")
)

// FileKey is a recording's 32-byte random file key. It never prints itself:
// String, GoString, every fmt verb and slog show "seal.FileKey(redacted)",
// for a FileKey and a *FileKey alike.
// The zero value is not a valid key and is refused; use NewFileKey or Unwrap.
type FileKey struct {
	k [fileKeySize]byte
}

// NewFileKey returns a fresh random file key from crypto/rand.
func NewFileKey() (*FileKey, error) {
	k := new(FileKey)
	if _, err := rand.Read(k.k[:]); err != nil {
		return nil, fmt.Errorf("seal: new file key: %w", err)
	}
	return k, nil
}

const redacted = "seal.FileKey(redacted)"

// String returns "seal.FileKey(redacted)".
func (FileKey) String() string { return redacted }

// GoString returns "seal.FileKey(redacted)".
func (FileKey) GoString() string { return redacted }

// Format writes "seal.FileKey(redacted)" whatever the verb and flags.
func (FileKey) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue makes slog print "seal.FileKey(redacted)".
func (FileKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// check rejects a nil key and the zero key, which only a FileKey{} literal
// (never NewFileKey or Unwrap) produces.
func (k *FileKey) check() error {
	if k == nil || k.k == [fileKeySize]byte{} {
		return errors.New("missing file key")
	}
	return nil
}

// deriveAEAD returns AES-256-GCM keyed with HKDF-SHA256(file key, salt, info).
func (k *FileKey) deriveAEAD(salt []byte, info string) (cipher.AEAD, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	sub, err := hkdf.Key(sha256.New, k.k[:], salt, info, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// chunkNonce returns the nonce of chunk i: an 11-byte big-endian counter, then
// the last-chunk flag. Each (payload key, nonce) pair seals exactly one chunk,
// because the payload key is unique to the blob (fresh salt) and the counter
// never repeats within it.
func chunkNonce(i int64, last bool) [nonceSize]byte {
	var n [nonceSize]byte
	binary.BigEndian.PutUint64(n[3:11], uint64(i))
	if last {
		n[11] = lastChunkFlag
	}
	return n
}

// checkRecordingID reports whether id is 32 lowercase hex characters.
func checkRecordingID(id []byte) bool {
	if len(id) != idSize {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// BlobSize returns the exact size of the blob that seals plaintextSize bytes.
// It panics if plaintextSize is negative or the blob would not fit an int64.
func BlobSize(plaintextSize int64) int64 {
	if plaintextSize < 0 || plaintextSize > maxChunks*ChunkSize {
		panic(fmt.Sprintf("seal: impossible plaintext size %d", plaintextSize))
	}
	chunks := max(1, (plaintextSize+ChunkSize-1)/ChunkSize)
	return headerSize + plaintextSize + chunks*tagSize
}

// plaintextSize inverts BlobSize: it returns the plaintext size and chunk
// count of a blob of blobSize bytes, or ErrFormat if no writer produces that
// size.
func plaintextSize(blobSize int64) (size, chunks int64, err error) {
	if blobSize < headerSize+tagSize {
		return 0, 0, ErrFormat
	}
	d := blobSize - headerSize
	chunks = (d-1)/sealedChunk + 1 // ceil without overflow
	last := d - (chunks-1)*sealedChunk
	if chunks > maxChunks || last < tagSize || last == tagSize && chunks > 1 {
		return 0, 0, ErrFormat
	}
	return d - chunks*tagSize, chunks, nil
}

// HeaderSize is the size of a blob's header (magic, salt, recording ID).
const HeaderSize = headerSize

// CheckHeader performs the keyless checks of docs/format.md, "Decryption",
// steps 1–4, on a blob of blobSize bytes whose first HeaderSize bytes are
// header: a possible size, the magic, a well-formed recording ID, and that ID
// equal to recordingID. It returns an error wrapping ErrFormat or ErrAuth
// like NewReader would; nil says nothing about the chunks, which only the
// file key can authenticate.
func CheckHeader(header []byte, blobSize int64, recordingID string) error {
	if _, _, err := plaintextSize(blobSize); err != nil {
		return fmt.Errorf("seal: check header: impossible blob size %d: %w", blobSize, err)
	}
	if len(header) < headerSize || string(header[:len(magic)]) != magic {
		return fmt.Errorf("seal: check header: bad magic: %w", ErrFormat)
	}
	id := header[len(magic)+saltSize : headerSize]
	if !checkRecordingID(id) {
		return fmt.Errorf("seal: check header: malformed recording id: %w", ErrFormat)
	}
	if string(id) != recordingID {
		return fmt.Errorf("seal: check header: blob belongs to another recording: %w", ErrAuth)
	}
	return nil
}
