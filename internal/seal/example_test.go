package seal_test

import (
	"bytes"
	"fmt"
	"log"

	"callvault/internal/seal"

	"filippo.io/age"
)

func Example() {
	// The archive epoch's key pair; in production the identity stays in the key store.
	epoch, err := age.GenerateHybridIdentity()
	if err != nil {
		log.Fatal(err)
	}
	const recordingID = "0123456789abcdef0123456789abcdef"

	// Capture: a fresh file key seals the audio; only its wrapped form is kept.
	key, err := seal.NewFileKey()
	if err != nil {
		log.Fatal(err)
	}
	var blob bytes.Buffer
	w, err := seal.NewWriter(&blob, key, recordingID)
	if err != nil {
		log.Fatal(err)
	}
	w.Write([]byte("hello, 1177"))
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	wrapped, err := seal.Wrap(key, epoch.Recipient())
	if err != nil {
		log.Fatal(err)
	}
	sealedPNR, err := key.SealField("patient.pnr", []byte("191212121212"))
	if err != nil {
		log.Fatal(err)
	}

	// Playback: unwrap, then decrypt just the range asked for.
	key, err = seal.Unwrap(wrapped, epoch)
	if err != nil {
		log.Fatal(err)
	}
	r, err := seal.NewReader(bytes.NewReader(blob.Bytes()), int64(blob.Len()), key, recordingID)
	if err != nil {
		log.Fatal(err)
	}
	p := make([]byte, 4)
	if _, err := r.ReadAt(p, 7); err != nil {
		log.Fatal(err)
	}
	pnr, err := key.OpenField("patient.pnr", sealedPNR)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(blob.Len(), seal.BlobSize(11), r.Size())
	fmt.Printf("%s %s %v\n", p, pnr, key)
	// Output:
	// 83 83 11
	// 1177 191212121212 seal.FileKey(redacted)
}
