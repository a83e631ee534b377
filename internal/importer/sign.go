package importer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"callvault/internal/access"
)

// sigBlock is the PEM type of a report signature.
const sigBlock = "CALLVAULT MIGRATION REPORT SIGNATURE"

// Signer signs migration reports with the importer's certificate key.
type Signer interface {
	crypto.Signer
	Chain() [][]byte  // the certificate chain, leaf first (DER)
	Identity() string // the HSA-ID of the leaf
}

type certSigner struct {
	crypto.Signer
	chain [][]byte
	hsaID string
}

func (s *certSigner) Chain() [][]byte  { return s.chain }
func (s *certSigner) Identity() string { return s.hsaID }

// NewSigner makes a Signer of a TLS certificate (as tls.LoadX509KeyPair
// returns it) whose leaf carries an HSA-ID.
func NewSigner(cert tls.Certificate) (Signer, error) {
	if len(cert.Certificate) == 0 {
		return nil, errors.New("importer: signer: no certificate")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("importer: signer: %w", err)
	}
	id, err := access.HSAIDFromCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("importer: signer: %w", err)
	}
	s, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("importer: signer: the key cannot sign")
	}
	return &certSigner{Signer: s, chain: cert.Certificate, hsaID: id}, nil
}

// SignReport returns the signature file of report: the signature block,
// then the signer's certificates (docs/import.md).
func SignReport(report []byte, s Signer) ([]byte, error) {
	var sig []byte
	var err error
	switch s.Public().(type) {
	case ed25519.PublicKey:
		sig, err = s.Sign(rand.Reader, report, crypto.Hash(0))
	case *ecdsa.PublicKey, *rsa.PublicKey:
		d := sha256.Sum256(report)
		sig, err = s.Sign(rand.Reader, d[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("importer: sign: unsupported key type %T", s.Public())
	}
	if err != nil {
		return nil, fmt.Errorf("importer: sign: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: sigBlock, Bytes: sig})
	for _, c := range s.Chain() {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	return out, nil
}

// CheckReport verifies the report at path: its signature file (path +
// ".sig") chains to roots and signs the report's exact bytes, and the
// recordings list beside it has the digest the report states. It returns
// the report and the signer's certificate.
func CheckReport(path string, roots *x509.CertPool) (*Report, *x509.Certificate, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	sigFile, err := os.ReadFile(path + ".sig")
	if err != nil {
		return nil, nil, err
	}
	var sig []byte
	var certs []*x509.Certificate
	for rest := sigFile; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case sigBlock:
			if sig != nil {
				return nil, nil, errors.New("importer: report signature: two signature blocks")
			}
			sig = b.Bytes
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("importer: report signature: %w", err)
			}
			certs = append(certs, c)
		}
	}
	if sig == nil || len(certs) == 0 {
		return nil, nil, errors.New("importer: report signature: no signature or no certificate")
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, nil, fmt.Errorf("importer: report signer: %w", err)
	}
	d := sha256.Sum256(body)
	good := false
	switch pub := leaf.PublicKey.(type) {
	case ed25519.PublicKey:
		good = ed25519.Verify(pub, body, sig)
	case *ecdsa.PublicKey:
		good = ecdsa.VerifyASN1(pub, d[:], sig)
	case *rsa.PublicKey:
		good = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
	}
	if !good {
		return nil, nil, errors.New("importer: report signature does not verify: the report was changed or signed by another key")
	}
	var rep Report
	if err := json.Unmarshal(body, &rep); err != nil || rep.Format != ReportFormat {
		return nil, nil, errors.New("importer: not a migration report")
	}
	if rep.RecordingsFile != filepath.Base(rep.RecordingsFile) {
		return nil, nil, errors.New("importer: report names a recordings file outside its directory")
	}
	list, err := os.ReadFile(filepath.Join(filepath.Dir(path), rep.RecordingsFile))
	if err != nil {
		return nil, nil, err
	}
	if ls := sha256.Sum256(list); hex.EncodeToString(ls[:]) != rep.RecordingsSHA256 {
		return nil, nil, errors.New("importer: the recordings list does not match the report's digest")
	}
	return &rep, leaf, nil
}
