package provider

import (
	"context"
	"errors"
	"fmt"
	"github.com/faas-criu/faas-criu/api"
	"io/fs"
	"os"
	"slices"

	"github.com/openfaas/faas-provider/types"
)

// MaxSecretBytes bounds a secret's value (as Kubernetes does).
const MaxSecretBytes = 1 << 20

func secretValue(s types.Secret) []byte {
	if len(s.RawValue) > 0 {
		return s.RawValue
	}
	return []byte(s.Value)
}

func (p *Provider) checkSecret(s *types.Secret) error {
	if err := api.ValidateSecretName(s.Name); err != nil {
		return err
	}
	ns, err := p.namespace(s.Namespace)
	if err != nil {
		return err
	}
	s.Namespace = ns
	if len(secretValue(*s)) > MaxSecretBytes {
		return errorf(api.ErrInvalid, "secret %q is larger than %d bytes", s.Name, MaxSecretBytes)
	}
	return nil
}

// ListSecrets returns the names of the secrets in a namespace (never their
// values).
func (p *Provider) ListSecrets(ctx context.Context, ns string) ([]types.Secret, error) {
	ns, err := p.namespace(ns)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(p.store.secretDir(ns))
	if errors.Is(err, fs.ErrNotExist) {
		return []types.Secret{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	out := []types.Secret{}
	for _, e := range entries {
		if e.Type().IsRegular() && api.ValidateSecretName(e.Name()) == nil {
			out = append(out, types.Secret{Name: e.Name(), Namespace: ns})
		}
	}
	return out, nil
}

// CreateSecret stores a new secret.
func (p *Provider) CreateSecret(ctx context.Context, s types.Secret) error {
	if err := p.checkSecret(&s); err != nil {
		return err
	}
	if err := os.MkdirAll(p.store.secretDir(s.Namespace), 0o700); err != nil {
		return fmt.Errorf("create secret %s: %w", s.Name, err)
	}
	path := p.store.secretPath(s.Namespace, s.Name)
	// Readable inside the function by any user; the directory keeps other
	// users of the host out.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if errors.Is(err, fs.ErrExist) {
		return errorf(api.ErrExists, "secret %q already exists in namespace %q: update it with PUT", s.Name, s.Namespace)
	}
	if err != nil {
		return fmt.Errorf("create secret %s: %w", s.Name, err)
	}
	if err := writeAndSync(f, secretValue(s)); err != nil {
		os.Remove(path)
		return fmt.Errorf("create secret %s: %w", s.Name, err)
	}
	return nil
}

// UpdateSecret replaces a secret's value in place, so that functions that
// mount it see the new value at once.
func (p *Provider) UpdateSecret(ctx context.Context, s types.Secret) error {
	if err := p.checkSecret(&s); err != nil {
		return err
	}
	path := p.store.secretPath(s.Namespace, s.Name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(api.ErrNotFound, "secret %q not found in namespace %q", s.Name, s.Namespace)
	}
	if err != nil {
		return fmt.Errorf("update secret %s: %w", s.Name, err)
	}
	if err := writeAndSync(f, secretValue(s)); err != nil {
		return fmt.Errorf("update secret %s: %w", s.Name, err)
	}
	return nil
}

// DeleteSecret removes a secret that no function uses.
func (p *Provider) DeleteSecret(ctx context.Context, ns, name string) error {
	if err := api.ValidateSecretName(name); err != nil {
		return err
	}
	ns, err := p.namespace(ns)
	if err != nil {
		return err
	}
	var users []string
	for _, fn := range p.functions() {
		fn.mu.Lock()
		if fn.key.Namespace == ns && slices.Contains(fn.rec.Deployment.Secrets, name) {
			users = append(users, fn.key.Name)
		}
		fn.mu.Unlock()
	}
	if len(users) > 0 {
		slices.Sort(users)
		return errorf(api.ErrExists, "secret %q is used by %v: remove it from them first", name, users)
	}
	err = os.Remove(p.store.secretPath(ns, name))
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(api.ErrNotFound, "secret %q not found in namespace %q", name, ns)
	}
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", name, err)
	}
	return nil
}

func writeAndSync(f *os.File, b []byte) error {
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
