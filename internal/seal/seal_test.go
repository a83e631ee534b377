package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

const (
	testID    = "0123456789abcdef0123456789abcdef"
	otherID   = "fedcba9876543210fedcba9876543210"
	callSize  = 3_600_000 // a 15-minute call at 32 kbit/s
	testChunk = 65552     // sealed chunk size, written out rather than taken from the code
)

// testKey returns the file key 00 01 … 1f used by tests and vectors.
func testKey() *FileKey {
	k := new(FileKey)
	for i := range k.k {
		k.k[i] = byte(i)
	}
	return k
}

// pattern returns n bytes with P[i] = i mod 251, the plaintext of the vectors.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

// sealBytes seals pt for id under key with the given salt.
func sealBytes(t testing.TB, key *FileKey, id string, pt []byte, salt [16]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newWriter(&buf, key, id, salt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pt); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func open(t testing.TB, blob []byte, key *FileKey, id string) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(blob), int64(len(blob)), key, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// outcome classifies opening and fully reading blob as in the vector files:
// "ok", "format", "auth open" or "auth read". Any other error fails the test,
// and so does an error that is both or neither of ErrFormat and ErrAuth.
func outcome(t testing.TB, blob []byte, key *FileKey, id string) string {
	t.Helper()
	classify := func(err error, when string) string {
		isFormat, isAuth := errors.Is(err, ErrFormat), errors.Is(err, ErrAuth)
		switch {
		case isFormat && !isAuth && when == "open":
			return "format"
		case isAuth && !isFormat:
			return "auth " + when
		}
		t.Fatalf("%s: unexpected error %v", when, err)
		return ""
	}
	r, err := NewReader(bytes.NewReader(blob), int64(len(blob)), key, id)
	if err != nil {
		return classify(err, "open")
	}
	p := make([]byte, r.Size())
	if n, err := r.ReadAt(p, 0); err != nil {
		if n > 0 && n%ChunkSize != 0 {
			t.Fatalf("read returned %d bytes, not whole authenticated chunks", n)
		}
		return classify(err, "read")
	}
	return "ok"
}

func TestConstants(t *testing.T) {
	if headerSize != 56 || sealedChunk != testChunk || ChunkSize != 65536 || magic != "CVSEAL1\n" {
		t.Fatalf("constants drifted from docs/format.md: header %d, sealed chunk %d", headerSize, sealedChunk)
	}
	if got := chunkNonce(0x0102030405060708, true); got != [12]byte{0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1} {
		t.Fatalf("nonce = %x", got)
	}
	if got := chunkNonce(1, false); got != [12]byte{10: 1} {
		t.Fatalf("nonce = %x", got)
	}
}

func TestBlobSize(t *testing.T) {
	// The examples in docs/format.md.
	for p, want := range map[int64]int64{0: 72, 1: 73, 65535: 65607, 65536: 65608, 65537: 65625, 196608: 196712, 3600000: 3600936} {
		if got := BlobSize(p); got != want {
			t.Errorf("BlobSize(%d) = %d, want %d", p, got, want)
		}
	}
	// Every blob size up to four chunks is possible exactly when some
	// plaintext size maps to it, and then decodes to that plaintext size.
	possible := map[int64]int64{}
	for p := int64(0); p <= 4*ChunkSize; p++ {
		possible[BlobSize(p)] = p
	}
	valid := 0
	for b := int64(0); b <= BlobSize(4*ChunkSize); b++ {
		p, chunks, err := plaintextSize(b)
		want, ok := possible[b]
		switch {
		case ok && (err != nil || p != want || chunks != max(1, (p+ChunkSize-1)/ChunkSize)):
			t.Fatalf("plaintextSize(%d) = %d, %d, %v; want %d", b, p, chunks, err, want)
		case !ok && !errors.Is(err, ErrFormat):
			t.Fatalf("plaintextSize(%d) = %d, %v; want ErrFormat", b, p, err)
		case ok:
			valid++
		}
	}
	if valid != 4*ChunkSize+1 {
		t.Fatalf("%d valid sizes", valid)
	}
	if _, _, err := plaintextSize(1<<63 - 1); !errors.Is(err, ErrFormat) {
		t.Errorf("max int64 blob: %v", err)
	}
	max := int64(maxChunks) * ChunkSize
	if got := BlobSize(max); got != headerSize+maxChunks*testChunk {
		t.Errorf("BlobSize(max) = %d", got)
	}
	if p, _, err := plaintextSize(BlobSize(max)); err != nil || p != max {
		t.Errorf("plaintextSize(BlobSize(max)) = %d, %v", p, err)
	}
	for _, p := range []int64{-1, max + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("BlobSize(%d) did not panic", p)
				}
			}()
			BlobSize(p)
		}()
	}
}

func TestRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 65535, 65536, 65537, 3 * 65536, callSize} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			key, err := NewFileKey()
			if err != nil {
				t.Fatal(err)
			}
			pt := make([]byte, size)
			rand.NewChaCha8([32]byte{1}).Read(pt)
			var buf bytes.Buffer
			w, err := NewWriter(&buf, key, testID)
			if err != nil {
				t.Fatal(err)
			}
			if buf.Len() != 56 {
				t.Fatalf("NewWriter wrote %d bytes, want the 56-byte header", buf.Len())
			}
			if n, err := w.Write(pt); n != size || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			blob := buf.Bytes()
			if int64(len(blob)) != BlobSize(int64(size)) {
				t.Fatalf("blob is %d bytes, BlobSize says %d", len(blob), BlobSize(int64(size)))
			}
			if !bytes.Equal(blob[:8], []byte("CVSEAL1\n")) || string(blob[24:56]) != testID {
				t.Fatalf("header %q", blob[:56])
			}
			r := open(t, blob, key, testID)
			if r.Size() != int64(size) {
				t.Fatalf("Size = %d", r.Size())
			}
			got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("plaintext differs (%d bytes, %v)", len(got), err)
			}
			if n, err := r.ReadAt(make([]byte, 1), int64(size)); n != 0 || err != io.EOF {
				t.Fatalf("ReadAt(Size) = %d, %v", n, err)
			}
		})
	}
}

func TestReadAtRanges(t *testing.T) {
	pt := pattern(callSize)
	r := open(t, sealBytes(t, testKey(), testID, pt, [16]byte{}), testKey(), testID)
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(off int64, n int) {
		t.Helper()
		p := make([]byte, n)
		got, err := r.ReadAt(p, off)
		want := max(0, min(int64(n), callSize-off))
		switch {
		case int64(got) != want:
			t.Fatalf("ReadAt(%d bytes at %d) = %d, want %d", n, off, got, want)
		case want < int64(n) && err != io.EOF, want == int64(n) && err != nil:
			t.Fatalf("ReadAt(%d bytes at %d): err %v", n, off, err)
		case off < callSize && !bytes.Equal(p[:got], pt[off:off+int64(got)]):
			t.Fatalf("ReadAt(%d bytes at %d): wrong bytes", n, off)
		}
	}
	for range 300 {
		check(rng.Int64N(callSize+10), rng.IntN(3*ChunkSize))
	}
	for _, c := range []struct {
		off int64
		n   int
	}{{0, 0}, {0, 1}, {65535, 2}, {65536, 65536}, {callSize - 1, 1}, {callSize - 1, 2}, {callSize, 0}, {callSize + 5, 3}, {0, callSize + 1}} {
		check(c.off, c.n)
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); err == nil {
		t.Fatal("negative offset accepted")
	}
}

// countingReaderAt records the ranges read from the blob.
type countingReaderAt struct {
	r     io.ReaderAt
	mu    sync.Mutex
	reads [][2]int64 // offset, length
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.reads = append(c.reads, [2]int64{off, int64(len(p))})
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

func (c *countingReaderAt) take() [][2]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reads
	c.reads = nil
	return r
}

func TestReadAtTouchesOnlyNeededChunks(t *testing.T) {
	pt := pattern(callSize)
	blob := sealBytes(t, testKey(), testID, pt, [16]byte{})
	src := &countingReaderAt{r: bytes.NewReader(blob)}
	r, err := NewReader(src, int64(len(blob)), testKey(), testID)
	if err != nil {
		t.Fatal(err)
	}
	chunk := func(i int64) [2]int64 {
		return [2]int64{56 + i*testChunk, min(testChunk, int64(len(blob))-56-i*testChunk)}
	}
	expect := func(what string, want ...[2]int64) {
		t.Helper()
		if got := src.take(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s read %v, want %v", what, got, want)
		}
	}
	expect("open", [2]int64{0, 56}, chunk(54)) // header and final chunk (54 = 3600000/65536)

	read := func(off int64, n int) {
		t.Helper()
		p := make([]byte, n)
		if got, err := r.ReadAt(p, off); got != n || err != nil || !bytes.Equal(p, pt[off:off+int64(n)]) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, got, err)
		}
	}
	read(1_800_000, 1)
	expect("1 byte at 1800000", chunk(27))
	read(1_800_001, 100)
	expect("cached chunk")
	read(27*ChunkSize-10, 20)
	expect("range across a boundary", chunk(26), chunk(27))
	read(callSize-1, 1)
	expect("final chunk again", chunk(54))
	read(0, 3*ChunkSize)
	expect("three chunks", chunk(0), chunk(1), chunk(2))
}

func TestConcurrentReadAt(t *testing.T) {
	pt := pattern(callSize)
	r := open(t, sealBytes(t, testKey(), testID, pt, [16]byte{}), testKey(), testID)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			p := make([]byte, 2*ChunkSize)
			for range 50 {
				off, n := rng.Int64N(callSize-int64(len(p))), rng.IntN(len(p))
				if got, err := r.ReadAt(p[:n], off); got != n || err != nil || !bytes.Equal(p[:n], pt[off:off+int64(n)]) {
					t.Errorf("ReadAt(%d bytes at %d) = %d, %v", n, off, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestTamper(t *testing.T) {
	key := testKey()
	pt := pattern(3*ChunkSize + 100) // three full chunks and a final chunk of 100 bytes
	blob := sealBytes(t, key, testID, pt, [16]byte{9})
	final := 56 + 3*testChunk
	if outcome(t, blob, key, testID) != "ok" {
		t.Fatal("genuine blob does not open")
	}
	try := func(name string, b []byte, want string) {
		t.Helper()
		if got := outcome(t, b, key, testID); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	chunk := func(i int) []byte { return blob[56+i*testChunk : min(len(blob), 56+(i+1)*testChunk)] }

	for k := range 4 {
		want := "auth open" // a full chunk sealed as non-final is now last
		if k == 0 {
			want = "format" // header only
		}
		try(fmt.Sprintf("cut after %d chunks", k), blob[:56+k*testChunk], want)
		for m, want := range map[int]string{1: "format", 15: "format", 16: "format", 17: "auth open", 1000: "auth open", testChunk - 1: "auth open"} {
			if k == 0 && m == 16 {
				want = "auth open" // a possible size: an empty only chunk
			}
			try(fmt.Sprintf("cut %d bytes into chunk %d", m, k), blob[:56+k*testChunk+m], want)
		}
	}
	try("final chunk one byte short", blob[:len(blob)-1], "auth open")
	try("final chunk dropped", blob[:final], "auth open")
	try("chunks 0 and 1 swapped", cat(blob[:56], chunk(1), chunk(0), blob[56+2*testChunk:]), "auth read")
	try("chunk 1 duplicated over 2", cat(blob[:56], chunk(0), chunk(1), chunk(1), chunk(3)), "auth read")
	try("final chunk appended again", cat(blob, chunk(3)), "auth open")
	try("full chunk appended", cat(blob, chunk(0)), "auth open")
	try("one byte appended", cat(blob, []byte{0}), "auth open")
	try("other recording's header", cat(sealBytes(t, key, otherID, nil, [16]byte{9})[:56], blob[56:]), "auth open")

	full := sealBytes(t, key, testID, pattern(2*ChunkSize), [16]byte{9})
	for n, want := range map[int]string{1: "format", 15: "format", 16: "format", 17: "auth open", testChunk: "auth open"} {
		if got := outcome(t, cat(full, make([]byte, n)), key, testID); got != want {
			t.Errorf("%d bytes appended after a full final chunk: %s, want %s", n, got, want)
		}
	}

	// Every bit of the header, and sampled bits of every chunk.
	bits := []int{}
	for i := range 56 * 8 {
		bits = append(bits, i)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for c := range 4 {
		start, end := (56+c*testChunk)*8, min(len(blob), 56+(c+1)*testChunk)*8
		bits = append(bits, start, start+7, end-1, end-16*8, rng.IntN(end-start)+start, rng.IntN(end-start)+start)
	}
	for _, bit := range bits {
		b := bytes.Clone(blob)
		b[bit/8] ^= 1 << (bit % 8)
		var want string
		switch i := bit / 8; {
		case i < 8:
			want = "format" // magic
		case i < 24:
			want = "auth open" // salt
		case i < 56 && !isLowerHex(b[i]):
			want = "format" // recording ID no longer hex
		case i < final:
			want = "auth read" // recording ID mismatch is found at open; non-final chunks at read
			if i < 56 {
				want = "auth open"
			}
		default:
			want = "auth open" // final chunk
		}
		try(fmt.Sprintf("bit %d flipped", bit), b, want)
	}

	if got := outcome(t, blob, key, otherID); got != "auth open" {
		t.Errorf("other recording ID: %s", got)
	}
	other, _ := NewFileKey()
	if got := outcome(t, blob, other, testID); got != "auth open" {
		t.Errorf("other key: %s", got)
	}
	empty := sealBytes(t, key, testID, nil, [16]byte{})
	if got := outcome(t, empty, other, testID); got != "auth open" {
		t.Errorf("empty blob, other key: %s", got)
	}

	// A failed chunk releases nothing, and does not disturb other chunks.
	swapped := cat(blob[:56], chunk(1), chunk(0), blob[56+2*testChunk:])
	r := open(t, swapped, key, testID)
	p := make([]byte, 2*ChunkSize)
	if n, err := r.ReadAt(p, 10); n != 0 || !errors.Is(err, ErrAuth) {
		t.Errorf("read of swapped chunk = %d, %v", n, err)
	}
	if n, err := r.ReadAt(p, 2*ChunkSize); n != len(p)-ChunkSize+100 || err != io.EOF || !bytes.Equal(p[:n], pt[2*ChunkSize:]) {
		t.Errorf("read of intact chunks = %d, %v", n, err)
	}
	src := &countingReaderAt{r: bytes.NewReader(blob[:len(blob)-5])}
	if _, err := NewReader(src, int64(len(blob)), key, testID); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("source shorter than its size: %v", err)
	}
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// writeLog records the size of every Write to it.
type writeLog struct {
	sizes []int
	total int
}

func (l *writeLog) Write(p []byte) (int, error) {
	l.sizes = append(l.sizes, len(p))
	l.total += len(p)
	return len(p), nil
}

func TestWriterStreams(t *testing.T) {
	pt := pattern(callSize)
	var blobs [][]byte
	for _, step := range []int{1, 1 << 20} {
		var buf bytes.Buffer
		log := &writeLog{}
		w, err := NewWriter(io.MultiWriter(&buf, log), testKey(), testID)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(pt); off += step {
			p := pt[off:min(off+step, len(pt))]
			if n, err := w.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			// Exactly the chunks before the one holding the last byte written
			// are out: at most one chunk of plaintext is held.
			written := off + len(p)
			if want := 56 + (written-1)/ChunkSize*testChunk; log.total != want {
				t.Fatalf("step %d: after %d bytes, %d bytes out, want %d", step, written, log.total, want)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want := []int{56}
		for range 54 {
			want = append(want, testChunk)
		}
		want = append(want, callSize-54*ChunkSize+16)
		if fmt.Sprint(log.sizes) != fmt.Sprint(want) {
			t.Fatalf("step %d: writes %v, want %v", step, log.sizes, want)
		}
		r := open(t, buf.Bytes(), testKey(), testID)
		if got, _ := io.ReadAll(io.NewSectionReader(r, 0, r.Size())); !bytes.Equal(got, pt) {
			t.Fatalf("step %d: plaintext differs", step)
		}
		blobs = append(blobs, buf.Bytes())
	}
	if bytes.Equal(blobs[0][8:24], blobs[1][8:24]) {
		t.Fatal("two blobs share a salt")
	}
	// With the same salt, how the plaintext was cut into writes leaves no trace.
	var buf bytes.Buffer
	w, _ := newWriter(&buf, testKey(), testID, [16]byte(blobs[0][8:24]))
	for i := range pt {
		w.Write(pt[i : i+1])
	}
	w.Close()
	if !bytes.Equal(buf.Bytes(), blobs[0]) || !bytes.Equal(sealBytes(t, testKey(), testID, pt, [16]byte(blobs[0][8:24])), blobs[0]) {
		t.Fatal("same key, salt and plaintext gave different blobs")
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after < len(p) {
		return 0, errors.New("disk full")
	}
	f.after -= len(p)
	return len(p), nil
}

func TestWriterErrors(t *testing.T) {
	for _, id := range []string{"", "0123456789ABCDEF0123456789ABCDEF", testID[:31], testID + "0", "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcde\n"} {
		if _, err := NewWriter(io.Discard, testKey(), id); err == nil {
			t.Errorf("NewWriter accepted recording ID %q", id)
		}
		if _, err := NewReader(bytes.NewReader(nil), 72, testKey(), id); err == nil || errors.Is(err, ErrFormat) || errors.Is(err, ErrAuth) {
			t.Errorf("NewReader with recording ID %q: %v", id, err)
		}
	}
	for _, k := range []*FileKey{nil, {}} {
		if _, err := NewWriter(io.Discard, k, testID); err == nil {
			t.Errorf("NewWriter accepted key %#v", k)
		}
		if _, err := NewReader(bytes.NewReader(nil), 72, k, testID); err == nil {
			t.Errorf("NewReader accepted key %#v", k)
		}
		if _, err := k.SealField("x", nil); err == nil {
			t.Errorf("SealField accepted key %#v", k)
		}
		if _, err := Wrap(k, testRecipient(t)); err == nil {
			t.Errorf("Wrap accepted key %#v", k)
		}
	}
	if _, err := NewWriter(&failWriter{after: 55}, testKey(), testID); err == nil {
		t.Error("header write error lost")
	}

	w, _ := NewWriter(&failWriter{after: 56 + testChunk}, testKey(), testID)
	if n, err := w.Write(make([]byte, 3*ChunkSize)); n != 2*ChunkSize || err == nil {
		t.Errorf("Write with failing destination = %d, %v", n, err)
	}
	if _, err := w.Write([]byte{1}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("error not sticky: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a write error succeeded")
	}

	w, _ = NewWriter(io.Discard, testKey(), testID)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if _, err := w.Write([]byte{1}); err == nil {
		t.Error("Write after Close succeeded")
	}

	// The chunk counter refuses to go past the largest addressable blob.
	w, _ = NewWriter(io.Discard, testKey(), testID)
	w.next = maxChunks - 1
	if _, err := w.Write(make([]byte, ChunkSize+1)); err != nil {
		t.Fatalf("last possible chunk: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Error("chunk counter went past maxChunks")
	}
}

func TestFileKeyRedacted(t *testing.T) {
	k := testKey()
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("m", "key", k, "value", *k)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("m", "key", k)
	out := []string{k.String(), k.GoString(), logs.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%08b"} {
		out = append(out, fmt.Sprintf(verb, k), fmt.Sprintf(verb, *k), fmt.Sprintf(verb, []any{k}))
	}
	out = append(out, fmt.Sprint(k), fmt.Sprintln(*k))
	for _, s := range out {
		if !strings.Contains(s, "seal.FileKey(redacted)") {
			t.Errorf("not redacted: %q", s)
		}
		for _, leak := range []string{"0001020304", "000102030405060708", "[0 1 2 3", "\x00\x01\x02\x03"} {
			if strings.Contains(s, leak) {
				t.Errorf("key bytes leaked: %q", s)
			}
		}
	}
}

func TestField(t *testing.T) {
	k := testKey()
	pnr := []byte("191212121212")
	sealed, err := k.SealField("patient.pnr", pnr)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 12+len(pnr)+16 || bytes.Contains(sealed, pnr) {
		t.Fatalf("sealed field is %d bytes", len(sealed))
	}
	if got, err := k.OpenField("patient.pnr", sealed); err != nil || !bytes.Equal(got, pnr) {
		t.Fatalf("OpenField = %q, %v", got, err)
	}
	again, _ := k.SealField("patient.pnr", pnr)
	if bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal")
	}
	if _, err := k.OpenField("caller.number", sealed); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong label: %v", err)
	}
	other, _ := NewFileKey()
	if _, err := other.OpenField("patient.pnr", sealed); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong key: %v", err)
	}
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 0x80
		if _, err := k.OpenField("patient.pnr", b); !errors.Is(err, ErrAuth) {
			t.Errorf("byte %d flipped: %v", i, err)
		}
	}
	for _, n := range []int{0, 27} {
		if _, err := k.OpenField("patient.pnr", sealed[:n]); !errors.Is(err, ErrFormat) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	if e, _ := k.SealField("x", nil); len(e) != 28 {
		t.Errorf("empty field sealed to %d bytes", len(e))
	} else if got, err := k.OpenField("x", e); err != nil || len(got) != 0 {
		t.Errorf("empty field: %q, %v", got, err)
	}
	if _, err := k.SealField("", pnr); err == nil {
		t.Error("empty label accepted")
	}
	if _, err := k.OpenField("", sealed); err == nil {
		t.Error("empty label accepted")
	}
}

func TestCheckHeader(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	key, err := NewFileKey()
	if err != nil {
		t.Fatal(err)
	}
	var blob bytes.Buffer
	w, err := NewWriter(&blob, key, id)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte{7}, 70000))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := blob.Bytes()
	if err := CheckHeader(b[:HeaderSize], int64(len(b)), id); err != nil {
		t.Fatalf("good blob: %v", err)
	}
	flip := func(i int) []byte { h := bytes.Clone(b[:HeaderSize]); h[i] ^= 1; return h }
	for _, c := range []struct {
		name   string
		header []byte
		size   int64
		id     string
		want   error
	}{
		{"impossible size", b[:HeaderSize], HeaderSize + sealedChunk + 10, id, ErrFormat},
		{"bad magic", flip(0), int64(len(b)), id, ErrFormat},
		{"malformed id", flip(HeaderSize - 1), int64(len(b)), id, ErrFormat},
		{"another recording", b[:HeaderSize], int64(len(b)), "f123456789abcdef0123456789abcdef", ErrAuth},
		{"short header", b[:10], int64(len(b)), id, ErrFormat},
	} {
		if err := CheckHeader(c.header, c.size, c.id); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A flipped salt bit is not visible without the key.
	if err := CheckHeader(flip(10), int64(len(b)), id); err != nil {
		t.Errorf("salt flip: %v (the keyless check cannot see it)", err)
	}
}
