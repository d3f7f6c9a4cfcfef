package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/uuid"
)

// KeyFile is the name of the signing key ledgerd generates in its data
// directory when --signing-key is not given.
const KeyFile = "signing.key"

// Signer signs events with an Ed25519 key (eventlog.Signer).
type Signer struct {
	key ed25519.PrivateKey
	kid string
}

// Signature is an event's custom metadata as ledgerd writes it.
type Signature struct {
	KeyID string `json:"kid"` // KeyID of the public key
	Sig   string `json:"sig"` // standard base64 of the Ed25519 signature
}

// KeyID names a public key in signatures: the hex of the first 8 bytes of
// its SHA-256, enough to tell a handful of keys (replicas', rotated ones)
// apart, and no secret.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign returns the custom metadata of an event: {"kid":..., "sig":...}
// over its Link. Ed25519 is deterministic, so a retried append carries the
// same bytes.
func (s *Signer) Sign(stream string, id uuid.UUID, eventType string, data []byte) []byte {
	sig := ed25519.Sign(s.key, Link(nil, stream, id, eventType, data))
	b, _ := json.Marshal(Signature{KeyID: s.kid, Sig: base64.StdEncoding.EncodeToString(sig)})
	return b
}

// Public returns the public half of the key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// KeyID returns the id of the signer's key.
func (s *Signer) KeyID() string { return s.kid }

// NewSigner signs with key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, kid: KeyID(key.Public().(ed25519.PublicKey))}
}

// LoadSigner reads a PEM PKCS #8 Ed25519 private key (what `openssl genpkey
// -algorithm ed25519` writes) from file.
func LoadSigner(file string) (*Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s: not a PEM \"PRIVATE KEY\" block", file)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", file, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: a %T, not an Ed25519 key", file, k)
	}
	return NewSigner(key), nil
}

// LoadOrCreateSigner reads the key in dir's KeyFile, generating it first
// (mode 0600, written to a temporary file and renamed, so a crash leaves
// no half key) if there is none. The second result says whether it was
// created.
func LoadOrCreateSigner(dir string) (*Signer, bool, error) {
	file := filepath.Join(dir, KeyFile)
	s, err := LoadSigner(file)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	return NewSigner(key), true, nil
}

// PublicKeyPEM encodes a public key as a PEM "PUBLIC KEY" block (PKIX),
// what `ledgerctl audit public-key` prints and verify's --public-key reads.
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Keys are the public keys a verification accepts, by KeyID.
type Keys map[string]ed25519.PublicKey

// ParsePublicKeys reads every PEM "PUBLIC KEY" block of text: one file may
// hold the keys of several replicas, or of a key rotated.
func ParsePublicKeys(text []byte) (Keys, error) {
	keys := Keys{}
	for {
		var block *pem.Block
		block, text = pem.Decode(text)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key: a %T, not an Ed25519 key", k)
		}
		keys[KeyID(pub)] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("public key: no PEM \"PUBLIC KEY\" block")
	}
	return keys, nil
}

// Check verifies an event's signature: nil if one of keys signed its Link.
func (k Keys) Check(stream string, id uuid.UUID, eventType string, data, metadata []byte) error {
	return k.CheckLink(Link(nil, stream, id, eventType, data), metadata)
}

// CheckLink is Check given the event's Link, which a verification also
// adds to the chain: one hash of the data serves both.
func (k Keys) CheckLink(link, metadata []byte) error {
	if len(metadata) == 0 {
		return errors.New("not signed")
	}
	var sig Signature
	if err := json.Unmarshal(metadata, &sig); err != nil || sig.Sig == "" {
		return errors.New("its metadata is not a signature")
	}
	pub, ok := k[sig.KeyID]
	if !ok {
		return fmt.Errorf("signed with key %q, which is not among the public keys given", sig.KeyID)
	}
	raw, err := base64.StdEncoding.DecodeString(sig.Sig)
	if err != nil || !ed25519.Verify(pub, link, raw) {
		return fmt.Errorf("its signature (key %s) does not match its stream, id, type and data", sig.KeyID)
	}
	return nil
}
