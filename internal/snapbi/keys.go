package snapbi

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// LoadPrivateKey reads an RSA private key from a PEM file, PKCS#1
// ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"). Errors name the file but
// never include its contents.
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("snapbi: private key file %s: %w", path, err)
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("snapbi: private key file %s: %w", path, err)
	}
	return k, nil
}

// LoadPublicKey reads an RSA public key from a PEM file: PKIX
// ("PUBLIC KEY"), PKCS#1 ("RSA PUBLIC KEY") or a certificate.
func LoadPublicKey(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("snapbi: public key file %s: %w", path, err)
	}
	k, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("snapbi: public key file %s: %w", path, err)
	}
	return k, nil
}

// ParsePrivateKey parses the first PEM block of b as an RSA private key.
func ParsePrivateKey(b []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("no PEM block found")
	}
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid PKCS#1 private key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid PKCS#8 private key: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("PKCS#8 key is %T, SNAP BI needs RSA", k)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a private key (want RSA PRIVATE KEY or PRIVATE KEY)", blk.Type)
}

// ParsePublicKey parses the first PEM block of b as an RSA public key.
func ParsePublicKey(b []byte) (*rsa.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("no PEM block found")
	}
	var k any
	var err error
	switch blk.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(blk.Bytes); err == nil {
			k = c.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key (want PUBLIC KEY)", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid %s: %w", blk.Type, err)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, SNAP BI needs RSA", k)
	}
	return rk, nil
}

// EncodePrivateKey renders k as a PKCS#8 PEM block.
func EncodePrivateKey(k *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodePublicKey renders k as a PKIX PEM block.
func EncodePublicKey(k *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// GenerateSandboxKeys makes the two 2048-bit key pairs a sandbox needs: the
// partner's (ours: the adapter signs with partner, the simulator verifies
// with &partner.PublicKey) and the wallet's (the simulator signs
// notifications with wallet, the adapter verifies with &wallet.PublicKey).
// They live only in memory; production keys come from LoadPrivateKey /
// LoadPublicKey.
func GenerateSandboxKeys() (partner, wallet *rsa.PrivateKey, err error) {
	if partner, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, nil, fmt.Errorf("snapbi: generate partner key: %w", err)
	}
	if wallet, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, nil, fmt.Errorf("snapbi: generate wallet key: %w", err)
	}
	return partner, wallet, nil
}
